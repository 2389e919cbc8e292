"""raw_release_sensor on a release of 100,000 files: seconds per tick, locally and on S3 (a moto server on
loopback, the objects put straight into its store), against Dagster's 60 s sensor evaluation limit.

    .venv/bin/python bench/release_sensor.py [--files 100000] [--budget 40]

Per store: the first tick (the whole listing, recorded), an unchanged tick, and a tick after one file
changed (which must request raw/dota and mmrs/dota). With less than the whole listing done within the
budget, the ticks that carry it over are counted.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.resources import StorageResource  # noqa: E402
from mmrs.registry import SOURCES  # noqa: E402
from pipelines.sensors import build_release_sensor  # noqa: E402
from pipelines.settings import ReleaseSensorSettings  # noqa: E402

FOLDER = SOURCES["dota"].release_folder


def tick(sensor, raw: str, cursor: str | None):
    storage = StorageResource(sample=raw, raw=raw, mmrs="m", models="x", eval="e")
    start = time.perf_counter()
    result = sensor(dg.build_sensor_context(cursor=cursor, resources={"storage": storage}))
    return result, time.perf_counter() - start


def measure(name: str, raw: str, change, budget: float) -> None:
    sensor = build_release_sensor([SOURCES["dota"]], dg.define_asset_job("mmrs_job"),
                                  ReleaseSensorSettings(time_budget_seconds=budget))
    cursor, ticks, seconds = None, 0, []
    while True:
        result, took = tick(sensor, raw, cursor)
        cursor, ticks = result.cursor, ticks + 1
        seconds.append(took)
        if '"current":null' in cursor:
            break
    print(f"{name}: first listing {sum(seconds):.2f} s in {ticks} tick(s), longest tick {max(seconds):.2f} s")
    result, took = tick(sensor, raw, cursor)
    print(f"{name}: unchanged tick {took:.2f} s, requests {len(result.run_requests or [])}")
    change()
    result, took = tick(sensor, raw, cursor)
    requested = [sorted(k.to_user_string() for k in r.asset_selection) for r in result.run_requests or []]
    print(f"{name}: tick after one file changed {took:.2f} s, requests {requested}")


def local(files: int, budget: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / FOLDER / "images"
        start = time.perf_counter()
        for d in range(files // 1000):
            (images / f"{d:03d}").mkdir(parents=True)
            for i in range(1000):
                (images / f"{d:03d}" / f"{i:04d}.png").touch()
        print(f"local: {files:,} files written in {time.perf_counter() - start:.1f} s")
        measure("local", tmp, lambda: (images / "000" / "0042.png").write_bytes(b"new"), budget)


def s3(files: int, budget: float) -> None:
    import fsspec
    import s3fs
    from moto.backends import get_backend
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    os.environ |= {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    fsspec.config.conf["s3"] = {"client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"}}
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        backend = get_backend("s3")["123456789012"]["aws"]
        backend.create_bucket("bench", "us-east-1")
        start = time.perf_counter()
        for i in range(files):
            backend.put_object("bench", f"{FOLDER}/images/{i // 1000:03d}/{i % 1000:04d}.png", b"")
        print(f"s3: {files:,} objects put in {time.perf_counter() - start:.1f} s")
        measure("s3", "s3://bench",
                lambda: backend.put_object("bench", f"{FOLDER}/images/000/0042.png", b"new"), budget)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--budget", type=float, default=ReleaseSensorSettings().time_budget_seconds)
    args = parser.parse_args()
    print(f"time budget per tick {args.budget:.0f} s (Dagster's sensor evaluation limit: 60 s)")
    local(args.files, args.budget)
    s3(args.files, args.budget)


if __name__ == "__main__":
    main()
