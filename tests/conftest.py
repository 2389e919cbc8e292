"""Shared fixtures: converted sample-corpus folders, and a real S3 API server on loopback (moto's server mode),
never mocks of s3fs."""

import socket

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """URL of a moto S3 server on 127.0.0.1; credentials are dummies set in the environment."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch):
    """A fresh bucket; fsspec/s3fs and boto3 in this process talk to the loopback server."""
    import uuid

    import boto3
    import fsspec

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    fsspec.config.conf.setdefault("s3", {})
    monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": s3_endpoint}})
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    yield name
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory):
    """sample_corpus(names, merge=False) -> a fresh folder holding `sample/` (the named sample datasets generated
    in their native formats, seed 0, scale 1) and `mmrs/` (each converted; with merge, also mmrs_1m.json)."""
    from mmrs.build import build_mmrs_1m, convert_source
    from mmrs.registry import SOURCES
    from mmrs.synthetic.corpus import DATASETS, generate_dataset

    def make(names, merge=False):
        root = tmp_path_factory.mktemp("sample_corpus")
        for name in names:
            generate_dataset(name, root / "sample")
            convert_source(SOURCES[name], str(root / "sample" / DATASETS[name].folder), str(root / "mmrs"))
        if merge:
            build_mmrs_1m(str(root / "mmrs"), list(names))
        return root

    return make
