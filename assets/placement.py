"""Where and how an asset's step runs, by kind of work: op tags (a Kubernetes pod's resources and node
selector), a concurrency pool, a retry policy. `Definitions` builds them from the orchestration settings
(pipelines/executors.py); the asset factories take them, so an asset's own code says nothing of clusters.

Kinds: `conversion` (sample corpus, raw releases, MMRS conversion: CPU, object store), `training` (GPU),
`inference` (the model answering benchmark questions: GPU), `default` (scoring, tables: CPU, light).

Object-store-bound steps retry with backoff, but only on transient errors (a dropped connection, a
timeout, throttling): `transient_errors_only` turns any other error into a failure that is not retried,
so a missing release or a bug fails at once instead of after minutes of backoff.
"""

from __future__ import annotations

import contextlib
import errno
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

GPU_POOL = "gpu"  # the concurrency pool of every GPU-bound step (deploy/dagster.yaml: one step at a time per GPU)


@dataclass(frozen=True)
class Placement:
    op_tags: Mapping[str, Any] = field(default_factory=dict)
    pool: str | None = None
    retry_policy: dg.RetryPolicy | None = None

    def asset_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for @dg.asset."""
        return {"op_tags": dict(self.op_tags) or None, "pool": self.pool, "retry_policy": self.retry_policy}


@dataclass(frozen=True)
class Placements:
    """One Placement per kind of work; the defaults put GPU-bound steps in the GPU pool and nothing else."""

    conversion: Placement = field(default_factory=Placement)
    training: Placement = field(default_factory=lambda: Placement(pool=GPU_POOL))
    inference: Placement = field(default_factory=lambda: Placement(pool=GPU_POOL))
    default: Placement = field(default_factory=Placement)


PLAIN = Placement()  # no op tags, no pool, no retries
LOCAL_PLACEMENTS = Placements()  # one machine: only the GPU pool

_TRANSIENT_ERRNOS = {errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE,
                     errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN}
_TRANSIENT_WORDS = ("timeout", "connection", "throttl", "slowdown", "serverdisconnected", "serviceunavailable",
                    "internalerror", "requesttimeout", "toomanyrequests", "endpointconnection")
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def is_transient(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) is the kind that a retry may cure: connection and
    timeout errors, throttling and server errors from the object store (by class name or S3 error code)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _PERMANENT):
            return False
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if isinstance(current, OSError) and current.errno in _TRANSIENT_ERRNOS:
            return True
        code = str(getattr(current, "response", {}).get("Error", {}).get("Code", "")) \
            if isinstance(getattr(current, "response", None), Mapping) else ""
        names = f"{type(current).__name__} {code}".lower()
        if any(word in names for word in _TRANSIENT_WORDS) or code.startswith("5"):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextlib.contextmanager
def transient_errors_only() -> Iterator[None]:
    """Inside: a transient error propagates (the step's retry policy retries it); any other error becomes a
    dg.Failure that is not retried, naming the original."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as error:
        if is_transient(error):
            raise
        raise dg.Failure(description=f"{type(error).__name__}: {error}", allow_retries=False) from error


def fails_fast_unless_transient(fn: Callable) -> Callable:
    """An asset function whose errors go through `transient_errors_only` (under @dg.asset)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with transient_errors_only():
            return fn(*args, **kwargs)

    return wrapper


def retry_policy(max_retries: int, delay_seconds: float, backoff: str) -> dg.RetryPolicy | None:
    """A retry policy with exponential or linear backoff and random jitter; None without retries."""
    if max_retries <= 0:
        return None
    return dg.RetryPolicy(max_retries=max_retries, delay=delay_seconds,
                          backoff=dg.Backoff.EXPONENTIAL if backoff == "exponential" else dg.Backoff.LINEAR,
                          jitter=dg.Jitter.PLUS_MINUS)
