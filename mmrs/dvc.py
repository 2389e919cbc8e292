"""Data versioning with one producer: Dagster writes the data, DVC records and stores exactly what it wrote.

`dvc.yaml`'s stages name the folders Dagster produces (their commands are the same Dagster materializations,
for `dvc repro` on a machine that has only DVC's view). After a Dagster run, `record` runs `dvc commit` for
those stages - dvc.lock gets the hashes of the data as produced, so `dvc repro` and `dvc status` find
nothing to rebuild - and `dvc push` to the default remote. DVC lives in its own environment (its antlr4 pin
breaks Dagster), so it is called as a command.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class VersioningSettings:
    """params.yaml `versioning`. dvc: the DVC command (None: versioning off); stages: the dvc.yaml stages whose
    outputs Dagster produces; push: send the data to DVC's default remote after committing it."""

    dvc: str | None = ".tools/dvc/bin/dvc"
    stages: tuple[str, ...] = ("sample_corpus", "mmrs")
    push: bool = True
    repo: str = "."  # the repository holding dvc.yaml


@dataclass
class Recorded:
    lock_sha256: str  # dvc.lock after the commit
    pushed: bool
    log: list[str] = field(default_factory=list)


class DvcError(RuntimeError):
    """A DVC command failed; the message has its output."""


def _dvc(settings: VersioningSettings, *args: str) -> str:
    proc = subprocess.run([settings.dvc, *args], cwd=settings.repo, capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    if proc.returncode != 0:
        raise DvcError(f"dvc {' '.join(args)} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    return proc.stdout


def available(settings: VersioningSettings) -> bool:
    """Whether the DVC command is installed (`make dvc-setup`)."""
    return settings.dvc is not None and Path(settings.repo, settings.dvc).exists()


def record(settings: VersioningSettings) -> Recorded:
    """dvc commit the stages' current data (and push it): what Dagster produced becomes the versioned state."""
    import hashlib

    log = [_dvc(settings, "commit", "--force", *settings.stages)]
    if settings.push:
        log.append(_dvc(settings, "push", *settings.stages))
    lock = Path(settings.repo, "dvc.lock")
    digest = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else "none"
    return Recorded(digest, settings.push, [line for text in log for line in text.splitlines() if line.strip()])


def status(settings: VersioningSettings) -> str:
    """`dvc status` of the stages: empty when the data is what dvc.lock records."""
    return _dvc(settings, "status", *settings.stages).strip()
