"""Class 7: every CLI command answers bad input with one clear line and exit status 2, a failure of the
environment or of the program with exit status 1, never with a traceback unless --debug asks for it; chat
answers a mistake before torch is imported or a model loaded."""

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.cli import main

ROOT = Path(__file__).resolve().parents[2]

# Runs the CLI in a fresh interpreter and reports its exit status and whether torch was imported on the way.
CHILD = """
import json, sys
from pipelines.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "torch": "torch" in sys.modules}))
"""


def _cli(*args: str) -> tuple[dict, str]:
    child = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    return json.loads(child.stdout.strip().splitlines()[-1]), child.stderr


def _png_bomb() -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 100, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    import torch

    from models.config import tiny
    from models.earthgpt import EarthGPT
    from models.io import save_model
    from models.tokenization import train_bpe_tokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "model"
    save_model(EarthGPT(tiny()), train_bpe_tokenizer(["There are three planes."] * 10, vocab_size=300), folder)
    return folder


BAD_IMAGES = {
    "random bytes.png": os.urandom(4096),
    "truncated.jpg": _jpeg()[:400],
    "text.png": b"this is a text file named .png\n",
    "empty.png": b"",
    "bomb.png": _png_bomb(),
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_chat_on_a_bad_image_is_one_line_exit_2_before_torch(tmp_path, saved_model, name, tried):
    tried("cli: chat on bad images")
    (tmp_path / name).write_bytes(BAD_IMAGES[name])
    result, err = _cli("chat", "--model", str(saved_model), "--image", str(tmp_path / name), "--prompt", "hi")
    assert result == {"status": 2, "torch": False}, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and name in err


def test_chat_with_a_missing_model_or_image_answers_before_torch(tmp_path, saved_model):
    (tmp_path / "ok.jpg").write_bytes(_jpeg())
    for args in (["--model", str(tmp_path / "none"), "--image", str(tmp_path / "ok.jpg")],
                 ["--model", str(saved_model), "--image", str(tmp_path / "none.jpg")]):
        result, err = _cli("chat", *args, "--prompt", "hi")
        assert result == {"status": 2, "torch": False} and len(err.strip().splitlines()) == 1, err


def test_a_pickle_saved_as_model_safetensors_is_refused_before_torch(tmp_path, saved_model):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(saved_model, folder)
    (folder / "model.safetensors").write_bytes(pickle.dumps({"weights": list(range(100))}))
    (tmp_path / "ok.jpg").write_bytes(_jpeg())
    result, err = _cli("chat", "--model", str(folder), "--image", str(tmp_path / "ok.jpg"), "--prompt", "hi")
    assert result == {"status": 2, "torch": False}
    assert "is not a safetensors file" in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--debug", "chat", "--model", str(tmp_path), "--image", "x.png", "--prompt", "hi"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize("args", [
    ["convert", "--all", "--root", "{tmp}/empty", "--out", "{tmp}/out", "--quiet"],
    ["convert", "--all", "--root", "{tmp}/no such folder", "--out", "{tmp}/out", "--quiet"],
    ["convert", "dota", "--root", "{tmp}/empty", "--out", "{tmp}/out", "--quiet"],
    ["convert", "--all", "--only", "nosuch", "--root", "{tmp}/empty", "--out", "{tmp}/out", "--quiet"],
    ["sample-data", "--out", "{tmp}/file/inside", "--only", "rsicd", "--quiet"],
    ["settings", "--set", "train.stage3.nonsense=1"],
    ["sources", "--profile", "no-such-profile"],
    ["train", "--stage", "stage3", "--set", "train.stage3.lr=fast"],
])
def test_every_command_answers_bad_input_with_one_line_and_exit_2(tmp_path, capsys, args, tried):
    tried("cli: bad input per command")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("a file, not a folder")
    status = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err


def test_a_failure_of_the_program_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    import mmrs.build

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(mmrs.build, "convert_source", broken)
    (tmp_path / "raw").mkdir()
    assert main(["convert", "rsicd", "--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: rsicd: RuntimeError: something inside broke (--debug shows the traceback)"
