import dataclasses
import hashlib
from pathlib import Path

import pytest

from mmrs.synthetic.corpus import DATASETS
from pipelines.cli import main


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_sample_data_writes_the_requested_dataset(tmp_path, capsys):
    assert main(["sample-data", "--out", str(tmp_path), "--only", "nasc_tg2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "nasc_tg2" in out and "25 images" in out
    assert (tmp_path / "NaSC-TG2").is_dir()


def test_unknown_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["sample-data", "--out", str(tmp_path), "--only", "imagenet"]) == 2
    assert "unknown dataset(s): imagenet" in capsys.readouterr().err


def test_scale_must_be_positive(tmp_path):
    with pytest.raises(SystemExit):
        main(["sample-data", "--out", str(tmp_path), "--scale", "0"])


def test_whole_corpus_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    """Every dataset of the corpus, twice with seed 0 (serial and 2 workers) and once with seed 1."""
    for run, seed, workers in (("a", 0, 1), ("b", 0, 2), ("c", 1, 2)):
        assert main(["sample-data", "--out", str(tmp_path / run), "--seed", str(seed), "--workers", str(workers),
                     "--quiet"]) == 0
    a, b, c = (_tree_digest(tmp_path / run) for run in "abc")
    assert a == b
    assert {name.split("/")[0] for name in a} == {spec.folder for spec in DATASETS.values()}
    changed = sum(1 for name in a if c.get(name) != a[name])
    assert changed > 0.9 * len(a)


def test_scale_grows_the_corpus_linearly(tmp_path, capsys):
    main(["sample-data", "--out", str(tmp_path / "x1"), "--only", "nasc_tg2", "rsicd", "--quiet"])
    main(["sample-data", "--out", str(tmp_path / "x3"), "--only", "nasc_tg2", "rsicd", "--scale", "3", "--quiet"])
    totals = [line for line in capsys.readouterr().out.splitlines() if "annotation records" in line]
    images = [int(line.split()[0]) for line in totals]
    assert images[1] == 3 * images[0]


def _saved_tiny_model(folder: Path) -> Path:
    import torch

    from models.config import tiny
    from models.earthgpt import EarthGPT
    from models.io import save_model
    from models.tokenization import train_bpe_tokenizer

    torch.manual_seed(0)
    tokenizer = train_bpe_tokenizer(["There are three planes near the runway."] * 10, vocab_size=300)
    config = tiny()  # the LLM's vocabulary is the tokenizer's, as in training: every generated id decodes to text
    config = dataclasses.replace(config, llm=dataclasses.replace(config.llm, vocab_size=len(tokenizer)))
    return save_model(EarthGPT(config), tokenizer, folder)


def test_chat_one_shot_and_multi_turn(tmp_path, capsys, monkeypatch):
    import io

    from mmrs.synthetic.corpus import generate_dataset

    model = _saved_tiny_model(tmp_path / "model")
    generate_dataset("air_sarship_2", tmp_path / "data")  # a 16-bit single-channel SAR TIFF
    image = next((tmp_path / "data" / "AIR-SARShip-2.0" / "AIR-SARShip-2.0-data").glob("*.tiff"))
    assert main(["chat", "--model", str(model), "--image", str(image), "--prompt", "How many ships?",
                 "--max-new-tokens", "5"]) == 0
    one_shot = capsys.readouterr().out.strip()
    monkeypatch.setattr("sys.stdin", io.StringIO("How many ships?\nAnd planes?\n\n"))
    assert main(["chat", "--model", str(model), "--image", str(image), "--max-new-tokens", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0] == one_shot


def test_chat_missing_model_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["chat", "--model", str(tmp_path / "none"), "--image", "x.png", "--prompt", "hi"]) == 2
    assert f"{tmp_path / 'none'} does not exist" in capsys.readouterr().err
