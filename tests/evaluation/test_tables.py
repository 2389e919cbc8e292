"""The paper's Tables II-IX, whole, with our rows: every number as the paper prints it, our cells traceable."""

import re
from pathlib import Path

import pytest

from evaluation.benchmarks import BENCHMARKS, BenchmarkResult
from evaluation.tables import PAPER_TABLES, render_table, render_tables, table_rows

PAPER = Path(__file__).resolve().parents[2].parent / "shared" / "paper" / "EarthGPT.txt"


def _paper_blocks():
    lines = PAPER.read_text(encoding="utf-8").splitlines()
    starts = sorted((i, m.group(1)) for i, line in enumerate(lines) if (m := re.match(r"^\s*TABLE ([IVX]+)\s*$", line)))
    ends = [i for i, _ in starts[1:]] + [len(lines)]
    return {number: [line.strip() for line in lines[i:end]] for (i, number), end in zip(starts, ends, strict=True)}


@pytest.mark.skipif(not PAPER.exists(), reason="the paper's text is not beside the repository")
@pytest.mark.parametrize("number", list(PAPER_TABLES))
def test_every_row_is_the_papers_number_for_number(number):
    block = _paper_blocks()[number]
    table = PAPER_TABLES[number]
    printed = [line for line in block if re.search(r"\[\d+\] .*\d\.\d+$", line) or line.startswith("EarthGPT(Ours)")]
    ours = [row for _, rows in table.groups for row in rows]
    assert len(ours) == len(printed)  # no row left out
    for row in ours:
        method = "EarthGPT(Ours)" if row.method == "EarthGPT (paper)" else row.method
        expected = " ".join(filter(None, (method, row.venue, *(f"{v:.{table.decimals}f}" for v in row.values))))
        assert sum(line == expected or line.startswith(expected + " ") for line in printed) == 1, expected


def test_the_earthgpt_rows_agree_with_the_benchmark_registry():
    for table in PAPER_TABLES.values():
        (earthgpt,) = [row for _, rows in table.groups for row in rows if row.method == "EarthGPT (paper)"]
        for column, value in zip(table.columns, earthgpt.values, strict=True):
            assert BENCHMARKS[column.benchmark].paper[column.metric] == value


def _result(name, metrics, baseline, failures=None):
    return BenchmarkResult(name, 52, metrics, baseline, notes={"baseline": "the mean training box"},
                           answers=52, parse_failures=failures or {})


def test_our_row_is_marked_traceable_and_the_baseline_below_it():
    results = {"dior_rsvg": _result("dior_rsvg", {"Pr@0.5": 40.0, "Pr@0.6": 30.0, "Pr@0.7": 20.0, "Pr@0.8": 10.0,
                                                  "Pr@0.9": 5.0, "mIoU": 33.333, "cIoU": 41.8181},
                                    {"Pr@0.5": 1.0, "Pr@0.6": 0.0, "Pr@0.7": 0.0, "Pr@0.8": 0.0, "Pr@0.9": 0.0,
                                     "mIoU": 6.5, "cIoU": 7.25}, {"no box": 10})}
    text = render_table("VII", results, {"dior_rsvg": "eval/dior_rsvg.json"})
    lines = text.splitlines()
    ours = lines.index("| **EarthGPT, this pipeline** | ours | **40.00** | **30.00** | **20.00** | **10.00** | "
                       "**5.00** | **33.33** | **41.82** | eval/dior_rsvg.json |")
    assert lines[ours + 1] == ("| *image-blind baseline* | ours | 1.00 | 0.00 | 0.00 | 0.00 | 0.00 | 6.50 | 7.25 | "
                               "eval/dior_rsvg.json |")
    assert lines[ours - 1] == "| EarthGPT (paper) |  | 76.65 | 71.93 | 66.52 | 56.53 | 37.63 | 69.34 | 81.54 | paper |"
    assert "| MGVLF [14] | TGRS 2023 | 76.78 | 72.68 | 66.74 | 56.42 | 35.07 | 68.04 | 78.41 | paper |" in lines
    assert "| *Specialist models* |" in text and "parse failures 19.2 % of 52 answers (no box 10)" in text


def test_all_eight_tables_render_and_say_which_did_not_run():
    results = [_result("crsvqa", {"OA": 52.9}, {"OA": 55.9}),
               _result("mar20_hbb", {"AP@40": 12.5, "AP@50": 10.0}, {"AP@40": 0.5, "AP@50": 0.1}),
               _result("nwpu_captions", {"BLEU1": 80.0, "BLEU4": 70.0}, {"BLEU1": 20.0, "BLEU4": 10.0})]
    text = render_tables(results)
    assert [m.group(1) for m in re.finditer(r"^## Table ([IVX]+):", text, re.M)] == list(PAPER_TABLES)
    assert "| **EarthGPT, this pipeline (direct)** | ours | **12.50** | **10.00** | mar20_hbb.json |" in text
    assert ("| **EarthGPT, this pipeline (count-then-detect)** | ours | **not run** | **not run** | "
            "mar20_hbb_count_then_detect: not run |") in text
    assert "| **EarthGPT, this pipeline** | ours | **52.90** | crsvqa.json |" in text
    assert "10 % of the images, chosen by a hash" in render_table("V", {})  # beside Table V, always
    assert "**n/a**" in render_table("IV", {r.benchmark: r for r in results})  # SPICE: never computed


def test_rows_for_mlflow_tables_carry_kind_and_source():
    rows = table_rows("III", {"clrs": _result("clrs", {"Top-1": 61.0}, {"Top-1": 4.0})})
    assert [r["kind"] for r in rows] == ["paper"] * 4 + ["ours", "baseline"]
    assert rows[4] == {"kind": "ours", "group": "ours", "method": "EarthGPT, this pipeline", "venue": "",
                       "CLRS": 61.0, "NaSC-TG2": None, "source": "clrs.json, nasc_tg2: not run"}
    assert rows[0]["CLRS"] == 51.76 and rows[0]["source"] == "paper"


def test_the_held_out_wording_row_sits_below_the_training_wording_and_above_the_baseline():
    results = {"nwpu_resisc45": _result("nwpu_resisc45", {"Top-1": 97.5}, {"Top-1": 10.8}),
               "nwpu_resisc45_reworded": _result("nwpu_resisc45_reworded", {"Top-1": 41.25}, {"Top-1": 10.8})}
    lines = render_table("II", results).splitlines()
    ours = lines.index("| **EarthGPT, this pipeline** | ours | **97.50** | nwpu_resisc45.json |")
    assert lines[ours + 1] == ("| **EarthGPT, this pipeline (held-out wording)** | ours | **41.25** | "
                               "nwpu_resisc45_reworded.json |")
    assert lines[ours + 2] == "| *image-blind baseline* | ours | 10.80 | nwpu_resisc45.json |"
    assert "| **EarthGPT, this pipeline (held-out wording)** |" not in render_table("III", {})  # none for CLRS
