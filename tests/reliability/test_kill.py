"""Class 6: a conversion killed with SIGKILL at any point leaves consistent outputs (the previous manifest
beside the previous quarantine report, never a half-written one), and the next run removes what it left and
writes the same bytes as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mmrs.build import convert_source
from mmrs.registry import SOURCES

ROOT = Path(__file__).resolve().parents[2]

# Converts in chunks of 4 images and shards of 10 records (so a kill finds shards renamed mid-run too), and
# SIGKILLs itself after `kill_after` chunks.
CHILD = """
import os, signal, sys
import mmrs.build as build
from mmrs.registry import SOURCES
spec, raw, out, kill_after = SOURCES[sys.argv[1]], sys.argv[2], sys.argv[3], int(sys.argv[4])
original = build._sized_chunks
build._sized_chunks = lambda root, samples, chunk=64, max_pixels=build.MAX_IMAGE_PIXELS: original(
    root, samples, 4, max_pixels)
done = [0]
def progress(n):
    done[0] += 1
    if done[0] == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
build.convert_source(spec, raw, out, progress=progress, max_records=10)
"""


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _consistent(out: Path) -> None:
    """The manifest and the quarantine report on disk belong together, and every shard it lists is there whole."""
    manifest = json.loads((out / "manifest.json").read_text())
    lines = (out / "quarantine.jsonl").read_text().splitlines()
    assert len(lines) == sum(manifest["quarantine"]["skipped"].values())
    assert [json.loads(line)["reason"] for line in lines]


def _damage_answers(root: Path) -> None:
    path = root / "LR_split_train_answers.json"
    document = json.loads(path.read_bytes())
    for answer in document["answers"][:32]:
        answer["answer"] = ""
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("kill_after", [1, 4, 9])
def test_a_conversion_killed_at_any_point_reruns_to_the_same_bytes(release, tmp_path, kill_after, tried):
    tried("kill -9: conversion")
    clean, damaged = release("rsvqa_lr"), release("rsvqa_lr")
    _damage_answers(damaged)
    reference = tmp_path / "reference"
    convert_source(SOURCES["rsvqa_lr"], str(clean), str(reference), max_records=10)
    out = tmp_path / "out"
    # an earlier conversion of a damaged copy (32 quarantined answers), then a re-conversion killed part-way
    convert_source(SOURCES["rsvqa_lr"], str(damaged), str(out), max_records=10)
    child = subprocess.run([sys.executable, "-c", CHILD, "rsvqa_lr", str(clean), str(out), str(kill_after)],
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    _consistent(out / "rsvqa_lr")
    convert_source(SOURCES["rsvqa_lr"], str(clean), str(out), max_records=10)
    assert _snapshot(out / "rsvqa_lr") == _snapshot(reference / "rsvqa_lr")
    assert not list((out / "rsvqa_lr").glob("*.tmp-*")) and not list((out / "rsvqa_lr").glob(".*"))


def test_leftover_tiles_of_a_killed_run_are_removed(release, tmp_path):
    root = release("dota")
    out = tmp_path / "out"
    convert_source(SOURCES["dota"], str(root), str(out))
    tiles = out / "dota" / "tiles"
    (tiles / "P0000__1024__0___0.png.tmp-0123abcd").write_bytes(b"half a tile")
    (out / "dota" / ".train-00000.jsonl.tmp-89abcdef").write_bytes(b"half a shard")
    (out / "dota" / "train-00007.jsonl").write_bytes(b"a shard of an older, longer run\n")
    before = _snapshot(out / "dota")
    convert_source(SOURCES["dota"], str(root), str(out))
    after = _snapshot(out / "dota")
    assert set(before) - set(after) == {"tiles/P0000__1024__0___0.png.tmp-0123abcd", ".train-00000.jsonl.tmp-89abcdef",
                                        "train-00007.jsonl"}
