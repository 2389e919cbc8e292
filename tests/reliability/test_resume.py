"""Class 8: training resumes from the newest complete checkpoint of any kind, and ends bit-identical to an
uninterrupted run, whichever checkpoint it resumes from, also after a SIGKILL."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import fsspec
import pytest
import torch

from mmrs.build import build_mmrs_1m, convert_source
from mmrs.registry import SOURCES
from models.io import load_model
from models.tokenization import save_tokenizer, train_bpe_tokenizer

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
import dataclasses, sys, torch
from models.config import tiny
from models.data import DataConfig, MMRSDataModule
from models.earthgpt import EarthGPT
from models.tokenization import load_tokenizer
from models.tracking import TrackingSettings
from models.trainer import StageConfig, train_stage
from models.training import OptimConfig

torch.set_num_threads(1)  # every run on one thread: the same arithmetic in every process, bit for bit


def run(base, corpus, out, callbacks=()):
    tok = load_tokenizer(f"{base}/tokenizer")
    torch.manual_seed(0)
    config = tiny()
    model = EarthGPT(dataclasses.replace(config, llm=dataclasses.replace(config.llm, vocab_size=len(tok))))
    data = MMRSDataModule(DataConfig(manifest=f"{corpus}/mmrs_1m.json", batch_size=4, seed=1), model.config, tok)
    stage = StageConfig("stage2", f"{out}/checkpoints", f"{out}/model", OptimConfig(lr=3e-3, warmup_steps=2,
                        max_steps=6), checkpoint_every=2)
    tracking = TrackingSettings(f"sqlite:///{base}/mlflow.db", experiment="test", artifacts=f"{base}/artifacts")
    return model, train_stage(model, tok, data, stage, tracking, callbacks=list(callbacks))
"""

KILLER = SETUP + """
import os, signal
import lightning as L

class Kill(L.Callback):
    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == int(sys.argv[4]):
            os.kill(os.getpid(), signal.SIGKILL)

run(sys.argv[1], sys.argv[2], sys.argv[3], [Kill()])
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory, pristine):
    base = tmp_path_factory.mktemp("training")
    corpus = base / "mmrs"
    for name in ("rsicd", "nwpu_resisc45"):
        convert_source(SOURCES[name], str(pristine(name)), str(corpus))
    build_mmrs_1m(str(corpus), ["rsicd", "nwpu_resisc45"])
    tok = train_bpe_tokenizer(["There are three planes near the runway of the airport. What is the category"] * 20,
                              vocab_size=400)
    save_tokenizer(tok, base / "tokenizer")
    return base, corpus


RUNNER = SETUP + """
import json
model, result = run(sys.argv[1], sys.argv[2], sys.argv[3])
print(json.dumps({"steps": result.steps, "resumed": result.resumed, "losses": len(result.losses)}))
"""


def _run(base: Path, corpus: Path, out: Path):
    """One training run in a fresh process, as the killed run and its resumption are: the weights of runs in
    different processes are compared, and a long-lived test process may not do the same arithmetic bit for bit
    (threads, floating-point modes set by libraries loaded earlier). -> (saved model, summary)."""
    child = subprocess.run([sys.executable, "-c", RUNNER, str(base), str(corpus), str(out)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-3000:]
    summary = json.loads(child.stdout.strip().splitlines()[-1])
    model, _ = load_model(out / "model")
    return model, SimpleNamespace(steps=summary["steps"], resumed=summary["resumed"],
                                  losses=[None] * summary["losses"])


@pytest.fixture(scope="module")
def straight(setup):
    base, corpus = setup
    model, result = _run(base, corpus, base / "straight")
    assert result.steps == 6 and not result.resumed
    return {k: v.clone() for k, v in model.state_dict().items()}, base / "straight" / "checkpoints"


def _same(state: dict, model) -> None:
    for name, tensor in model.state_dict().items():
        assert torch.equal(state[name], tensor), name


@pytest.mark.parametrize("keep", ["step-step=2.ckpt", "step-step=4.ckpt"])
def test_resume_from_a_step_checkpoint_when_last_is_gone(setup, straight, tmp_path, keep, tried):
    """Killed after a step checkpoint was written but before last.ckpt: main found no last.ckpt and trained
    from step 0 again."""
    tried("resume: from a step checkpoint")
    base, corpus = setup
    state, checkpoints = straight
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoints / keep, out / "checkpoints" / keep)
    model, result = _run(base, corpus, out)
    step = int(keep.split("=")[1].split(".")[0])
    assert result.resumed and len(result.losses) == 6 - step
    _same(state, model)


def test_a_newer_step_checkpoint_wins_over_an_older_last(setup, straight, tmp_path):
    base, corpus = setup
    state, checkpoints = straight
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoints / "step-step=2.ckpt", out / "checkpoints" / "last.ckpt")  # last.ckpt of step 2
    shutil.copy(checkpoints / "step-step=4.ckpt", out / "checkpoints" / "step-step=4.ckpt")
    from models.trainer import checkpoint_step, newest_checkpoint

    cut = out / "checkpoints" / "step-step=6.ckpt"  # a step checkpoint cut off by the kill
    cut.write_bytes((checkpoints / "step-step=6.ckpt").read_bytes()[:5000])
    fs = fsspec.filesystem("file")
    assert checkpoint_step(fs, str(cut)) is None and checkpoint_step(fs, str(out / "checkpoints/last.ckpt")) == 2
    assert newest_checkpoint(fs, str(out / "checkpoints")).endswith("step-step=4.ckpt")
    model, result = _run(base, corpus, out)
    assert result.resumed and len(result.losses) == 2
    _same(state, model)


def test_training_killed_with_sigkill_resumes_to_the_same_weights(setup, straight, tmp_path, tried):
    tried("kill -9: training")
    base, corpus = setup
    state, _ = straight
    out = tmp_path / "run"
    child = subprocess.run([sys.executable, "-c", KILLER, str(base), str(corpus), str(out), "5"], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert (out / "checkpoints" / "last.ckpt").exists() and (out / "checkpoints" / "step-step=4.ckpt").exists()
    model, result = _run(base, corpus, out)
    assert result.resumed and len(result.losses) == 2
    _same(state, model)
