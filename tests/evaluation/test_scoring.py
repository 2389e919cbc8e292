"""`earthgpt benchmarks`, `earthgpt predict` and `earthgpt score`: the same numbers as run_benchmark, and a
clear one-line error (exit status 2) for every kind of bad input."""

import json

import pytest

from evaluation.benchmarks import BENCHMARKS, load_benchmark_data, question_ids, run_benchmark
from evaluation.predict import predict_benchmark
from evaluation.predictions import prediction_lines, read_predictions
from models.io import load_model
from pipelines.cli import main


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_benchmarks_lists_names_tables_sources_splits_and_metrics(capsys):
    status, out, _ = _run(capsys, "benchmarks")
    assert status == 0 and all(name in out for name in BENCHMARKS)
    status, out, _ = _run(capsys, "benchmarks", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["dior_rsvg"] == {"name": "dior_rsvg", "table": "VII", "source": "dior_rsvg", "split": "test",
                                 "task": "grounding", "setting": "supervised", "prompting": "-",
                                 "metrics": ["Pr@0.5", "Pr@0.6", "Pr@0.7", "Pr@0.8", "Pr@0.9", "mIoU", "cIoU"]}
    assert rows["mar20_obb_count_then_detect"]["prompting"] == "count_then_detect"


@pytest.mark.parametrize("name", ["dior_rsvg", "mar20_hbb", "mar20_obb", "mar20_hbb_count_then_detect",
                                  "rsvqa_hr_phili"])
def test_score_prints_the_numbers_run_benchmark_gives_for_the_same_answers(name, converted, crafted, capsys, tmp_path):
    benchmark = BENCHMARKS[name]
    data = load_benchmark_data(benchmark, str(converted))
    answers = crafted(benchmark, data.records)
    pred = tmp_path / "pred.jsonl"
    pred.write_text(prediction_lines(answers.values()))
    source = converted / benchmark.source
    train = [str(p) for split in json.loads((source / "manifest.json").read_text())["train_splits"] or ["train"]
             if (p := source / f"{split}-00000.jsonl").exists()]
    status, out, err = _run(capsys, "score", name, "--references", str(source / f"{benchmark.split}-00000.jsonl"),
                            "--predictions", str(pred), *(["--train", *train] if train else []))
    assert status == 0, err
    expected = run_benchmark(benchmark, None, None, str(converted), predictions=answers).to_dict()
    assert json.loads(out) == json.loads(json.dumps(expected))


def test_predict_writes_every_answer_the_benchmarks_need_and_resumes(converted, model_dir, capsys, tmp_path):
    ref = converted / "mar20" / "test-00000.jsonl"
    pred = tmp_path / "pred.jsonl"
    argv = ["predict", "--model", str(model_dir), "--references", str(ref), "--out", str(pred), "--batch-size", "4",
            "--max-new-tokens", "6", "--quiet"]
    status, _, err = _run(capsys, *argv)
    assert status == 0, err
    written = read_predictions(str(pred))
    data = {n: load_benchmark_data(BENCHMARKS[n], str(converted)) for n in BENCHMARKS if n.startswith("mar20")}
    assert set(written) == {i for n, d in data.items() for i in question_ids(BENCHMARKS[n], d.records)}
    # the answers run_benchmark generates with the same model and settings
    model, tokenizer = load_model(model_dir)
    hbb = data["mar20_hbb"]
    direct = {p.id: p for p in predict_benchmark(BENCHMARKS["mar20_hbb"], model, tokenizer, hbb.image_root,
                                                 hbb.records, batch_size=4, max_new_tokens=6)}
    assert {i: written[i] for i in direct} == direct
    # interrupted: half the lines kept and the next one cut short; a second run completes the same file
    lines = pred.read_text().splitlines(keepends=True)
    pred.write_text("".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:10])
    status, _, err = _run(capsys, *argv)
    assert status == 0 and f"{len(lines) - len(lines) // 2} answers written, {len(lines) // 2} kept" in err
    assert read_predictions(str(pred)) == written


def test_predictions_written_with_a_byte_order_mark_and_crlf_read_the_same(tmp_path):
    rows = [{"id": "a#0", "answer": "forest"}, {"id": "b#0", "answer": "río"}]
    plain, windows = tmp_path / "plain.jsonl", tmp_path / "windows.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in rows))
    windows.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows).encode())
    assert read_predictions(str(windows)) == read_predictions(str(plain))
    assert [p.answer for p in read_predictions(str(windows)).values()] == ["forest", "río"]


@pytest.mark.parametrize(("lines", "message"), [
    (lambda rows: rows[1:], "questions have no prediction"),
    (lambda rows: [*rows, {"id": "mar20/test/nope/detection_obb#0", "answer": ""}], "match no question"),
    (lambda rows: [*rows, rows[0]], "duplicate id"),
    (lambda rows: [*rows, "not json"], "not JSON"),
    (lambda rows: [*rows, [1, 2]], "not a JSON object"),
    (lambda rows: [{"id": rows[0]["id"]}, *rows[1:]], "\"answer\" must be a string"),
    (lambda rows: [{**rows[0], "box_scores": ["high"]}, *rows[1:]], "box_scores"),
    (lambda rows: [{**rows[0], "score": 1}, *rows[1:]], "unknown field"),
])
def test_bad_predictions_are_a_one_line_error_with_exit_status_2(lines, message, converted, crafted, capsys, tmp_path):
    benchmark = BENCHMARKS["mar20_obb"]
    data = load_benchmark_data(benchmark, str(converted))
    rows = [p.to_json() for p in crafted(benchmark, data.records).values()]
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in lines(rows)))
    status, out, err = _run(capsys, "score", "mar20_obb", "--references",
                            str(converted / "mar20" / "test-00000.jsonl"), "--predictions", str(pred))
    assert status == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err and "Traceback" not in err


def test_bad_references_and_names_are_one_line_errors_too(converted, crafted, capsys, tmp_path):
    pred = tmp_path / "pred.jsonl"
    pred.write_text("")
    ref = str(converted / "mar20" / "test-00000.jsonl")
    records = [json.loads(line) for line in (converted / "mar20" / "test-00000.jsonl").open()]
    answers = tmp_path / "answers.jsonl"
    answers.write_text(prediction_lines(crafted(BENCHMARKS["mar20_hbb"], records).values()))
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join(json.dumps({**r, "target": {"labels": []}}) + "\n" for r in records))
    for argv, message in (
            (["score", "mar20_hbb", "--references", str(broken), "--predictions", str(answers)],
             "target is not as converted records hold it (KeyError: 'boxes_norm')"),
            (["score", "mar21", "--references", ref, "--predictions", str(pred)], "unknown benchmark 'mar21'"),
            (["score", "mar20_hbb", "--references", str(tmp_path / "no.jsonl"), "--predictions", str(pred)],
             "no such file"),
            (["score", "dior_rsvg", "--references", ref, "--predictions", str(pred)], "no grounding questions"),
            (["predict", "--model", "m", "--references", ref, "--out", str(pred), "--benchmark", "dior_rsvg"],
             "no benchmark has questions")):
        status, out, err = _run(capsys, *argv)
        assert status == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
