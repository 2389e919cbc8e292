"""An object store that goes away: reads of a release on s3:// are retried with backoff, so a store that comes
back within the retries costs nothing; one that stays away ends the conversion with one clear error of the
environment (StorageUnavailableError; CLI exit status 1), never a traceback or a "missing file"."""

import contextlib
import socket
import threading
import time

import fsspec
import pytest
import s3fs

import mmrs.storage
from mmrs.build import convert_source
from mmrs.registry import SOURCES
from mmrs.storage import SourceRoot
from pipelines.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def flaky_store(monkeypatch, pristine):
    """A moto S3 server of its own (stopped and started by the test) holding the RSICD sample release;
    botocore's own retries off, ours quick (0.2 s doubling, 5 attempts: 6.2 s of waiting at most)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL_S3", endpoint),
                        ("AWS_ENDPOINT_URL", endpoint)):
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": endpoint},
                                                  "config_kwargs": {"retries": {"max_attempts": 1},
                                                                    "connect_timeout": 2, "read_timeout": 2}})
    monkeypatch.setattr(mmrs.storage, "RETRY_FIRST_DELAY", 0.2, raising=False)  # raising: a checkout without them
    monkeypatch.setattr(mmrs.storage, "RETRY_ATTEMPTS", 5, raising=False)
    servers = [ThreadedMotoServer(ip_address="127.0.0.1", port=port)]
    servers[0].start()
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="releases")
    s3fs.S3FileSystem.clear_instance_cache()
    fsspec.filesystem("s3").put(str(pristine("rsicd")), "releases/RSICD", recursive=True)

    class Store:
        url = "s3://releases/RSICD"

        def stop(self) -> None:
            servers[-1].stop()

        def start(self) -> None:
            servers.append(ThreadedMotoServer(ip_address="127.0.0.1", port=port))
            servers[-1].start()

    yield Store()
    for server in servers:
        with contextlib.suppress(Exception):  # already stopped
            server.stop()
    s3fs.S3FileSystem.clear_instance_cache()


def test_a_store_that_comes_back_within_the_retries_costs_nothing(flaky_store, tmp_path, tried):
    tried("object store: down, then back")
    reference = convert_source(SOURCES["rsicd"], flaky_store.url, str(tmp_path / "a"))
    flaky_store.stop()
    s3fs.S3FileSystem.clear_instance_cache()
    threading.Timer(1.0, flaky_store.start).start()
    start = time.monotonic()
    manifest = convert_source(SOURCES["rsicd"], flaky_store.url, str(tmp_path / "b"))
    assert manifest["content_hash"] == reference["content_hash"]
    assert time.monotonic() - start >= 0.9  # it did wait for the store


def test_a_store_that_stays_away_is_one_clear_error_of_the_environment(flaky_store, tmp_path, capsys, tried):
    from mmrs.storage import StorageUnavailableError

    tried("object store: down for good")
    flaky_store.stop()
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(StorageUnavailableError, match="unreachable after 5 attempts"):
        SourceRoot(flaky_store.url).exists("dataset_rsicd.json")
    assert main(["convert", "rsicd", "--root", flaky_store.url, "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: rsicd: environment: object store unreachable") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
