"""MMRS conversion throughput and memory on the sample corpus, against parsing alone; tiling speed.

Records: for each corpus size, (1) parse only: run every reader over its release and count annotation
records (class labels, captions, QA pairs, objects, referring expressions); (2) convert: the same plus
normalisation, instructions, shards and manifests. Each runs in its own process (peak RSS is its own), both
with the garbage-collector setting of conversion (mmrs.fastpath.rare_gc_pauses).
Targets: >= 20,000 records/s on 2 cores, convert <= 1.5x parse, memory flat in corpus size. Corpora are
generated once into --cache (annotation-dense datasets, 2 workers) and reused. Each measurement starts from a
cold page cache where the bench may empty it (root), so parse and convert read the same disk.

Tiling: DOTA releases (the sample corpus's at scale 4, and scenes of DOTA's real size range, 800-4000 px) cut
at the DOTA settings (1024 px tiles, 200 px overlap, 0.7 visible), every tile written as a file, by
  devkit-1, devkit-2  DOTA_devkit's method (ImgSplit; ImgSplit_multi_process with 2 processes), re-implemented
                      here (the devkit is not installable): cv2.imread, crop, cv2.imwrite, per scene
  ours                the DOTA reader, then cut and tile writing as convert_source runs them
  ours-convert        the whole convert_source (records and shards too)
each in its own process, on a warm page cache. Target: ours at least as fast as devkit-2, the same pixels.

    .venv/bin/python bench/convert.py [--part records|tiling|all] [--records 250000 1000000]
                                      [--cache .state/bench] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATASETS = ["rsvqa_lr", "rsvqa_hr", "hit_uav", "ssdd", "dior", "hrsid", "nwpu_captions", "rsicd", "dior_rsvg"]
RECORDS_PER_SCALE = 4_500  # annotation records of DATASETS at scale 1 (measured; used to pick the scale)

_CHILD = """
import json, resource, sys, tempfile, time
from mmrs.build import convert_source
from mmrs.fastpath import rare_gc_pauses
from mmrs.quarantine import Quarantine
from mmrs.registry import SOURCES
from mmrs.storage import SourceRoot
from mmrs.synthetic.corpus import DATASETS
mode, corpus, names = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
start, records = time.perf_counter(), 0
with tempfile.TemporaryDirectory() as out:
    for name in names:
        spec, raw = SOURCES[name], f"{corpus}/{DATASETS[name].folder}"
        if mode == "parse":  # under the collector setting conversion uses, so that only the work differs
            with rare_gc_pauses():
                for s in spec.reader(SourceRoot(raw), spec, Quarantine(name)):
                    records += (s.label is not None) + len(s.captions) + len(s.qa) + len(s.objects) + len(s.referrals)
        else:
            convert_source(spec, raw, out)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "records": records,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def corpus(cache: Path, scale: int) -> Path:
    folder = cache / f"corpus-x{scale}"
    if not (folder / ".complete").exists():
        print(f"generating the corpus at scale {scale} into {folder} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "pipelines.cli", "sample-data", "--out", str(folder), "--scale",
                        str(scale), "--workers", "2", "--quiet", "--only", *DATASETS], check=True)
        (folder / ".complete").touch()
    return folder


def drop_page_cache() -> bool:
    """Empty the kernel's page cache (root only), so that every measurement reads its files from disk."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def measure(mode: str, folder: Path) -> dict:
    cold = drop_page_cache()
    proc = subprocess.run([sys.executable, "-c", _CHILD, mode, str(folder), json.dumps(DATASETS)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"cold": cold}


def best_of(repeat: int, folder: Path) -> tuple[dict, dict]:
    """Parse and convert measured alternately `repeat` times; the fastest run of each (on a shared machine
    the others carry the neighbours' load). Peak memory: the largest seen."""
    runs = [(measure("parse", folder), measure("convert", folder)) for _ in range(repeat)]
    best = []
    for side in zip(*runs, strict=True):
        fastest = min(side, key=lambda run: run["seconds"])
        best.append(fastest | {"peak_rss_mib": max(run["peak_rss_mib"] for run in side),
                               "cold": all(run["cold"] for run in side)})
    return best[0], best[1]


TILING_RELEASES = {  # name -> (changes to the sample corpus's DOTA, scale)
    "sample": ({}, 4),  # the sample corpus's DOTA at scale 4: 22 labelled scenes, 869-1926 px
    "large": ({"size": (800, 4000), "images": 16, "splits": (("train", 0.8), ("val", 0.2))}, 1),  # DOTA v1.0's range
}
TILING_METHODS = ("devkit-1", "devkit-2", "ours", "ours-convert")


def tiling_release(cache: Path, name: str) -> Path:
    """A DOTA release of synthetic scenes (generated once into the cache): images and Task1/Task2 labels."""
    from dataclasses import replace

    from mmrs.synthetic.corpus import DATASETS
    from mmrs.synthetic.samples import iter_samples
    from mmrs.synthetic.writers.dota import write_dota

    changes, scale = TILING_RELEASES[name]
    root = cache / f"tiling-{name}" / "DOTA"
    if not (root / ".complete").exists():
        spec = replace(DATASETS["dota"], **changes)
        print(f"generating DOTA scenes of {spec.size[0]}-{spec.size[1]} px into {root} (once) ...", flush=True)
        write_dota(spec, iter_samples(spec, 0, scale), root)
        (root / ".complete").touch()
    return root


def labelled_scenes(release: Path) -> list[Path]:
    """The scenes the DOTA reader converts (train and val; test has no labels), in name order."""
    return sorted(path for split in ("train", "val") for path in (release / split / "images").glob("*.png"))


def devkit_split(scene: Path, out: Path, size: int = 1024, gap: int = 200) -> tuple[int, float]:
    """One scene cut the way DOTA_devkit's ImgSplit does it (our re-implementation of its image part, not its
    code): cv2.imread, its window loop, a copy of each window written by cv2.imwrite as PNG with OpenCV's
    defaults, tile ids <stem>__1__<left>___<up>. Without padding (the devkit's padding=False), so its tiles hold
    the scene's own pixels, as ours do. Returns (tiles, this process's peak memory in MiB)."""
    import cv2

    img = cv2.imread(str(scene))
    height, width = img.shape[:2]
    slide, tiles, left = size - gap, 0, 0
    while left < width:
        left = max(width - size, 0) if left + size >= width else left
        up = 0
        while up < height:
            up = max(height - size, 0) if up + size >= height else up
            cv2.imwrite(str(out / f"{scene.stem}__1__{left}___{up}.png"), img[up:up + size, left:left + size].copy())
            tiles += 1
            if up + size >= height:
                break
            up += slide
        if left + size >= width:
            break
        left += slide
    return tiles, peak_mib()


def peak_mib() -> float:
    """This process's peak resident memory in MiB (VmHWM: ru_maxrss would count the parent's peak at fork)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def run_devkit(release: Path, out: Path, processes: int) -> tuple[int, float]:
    """The devkit's method over the release: one process (ImgSplit) or a pool mapping scenes
    (ImgSplit_multi_process). Returns (tiles, peak MiB summed over the processes: an upper bound, since the
    workers share the pages they inherit)."""
    from functools import partial
    from multiprocessing import Pool

    scenes, work = labelled_scenes(release), partial(devkit_split, out=out)
    if processes == 1:
        return sum(work(scene)[0] for scene in scenes), peak_mib()
    with Pool(processes) as pool:
        results = pool.map(work, scenes, chunksize=1)
    return sum(t for t, _ in results), peak_mib() + processes * max(peak for _, peak in results)


def run_ours(release: Path, out: Path, convert: bool) -> tuple[int, float]:
    """Ours: the DOTA reader, then cut and tile writing as convert_source runs them; or the whole
    convert_source (records and shards too). Returns (tiles, peak MiB)."""
    from mmrs.build import convert_source, tile_release
    from mmrs.registry import SOURCES

    if convert:
        manifest = convert_source(SOURCES["dota"], str(release), str(out))
        tiles = sum(manifest["images"].values())
    else:
        tiles = tile_release(SOURCES["dota"], str(release), str(out))
    return tiles, peak_mib()


def tiling_child(method: str, release: Path, out: Path) -> None:
    """One measurement in this process; prints JSON. Imports come first, so only the work is timed."""
    import cv2  # noqa: F401  (both sides' imports before the clock starts)

    import mmrs.build  # noqa: F401
    import mmrs.registry  # noqa: F401

    start, cpu = time.perf_counter(), os.times()
    if method.startswith("devkit"):
        tiles, peak = run_devkit(release, out, int(method.split("-")[1]))
    else:
        tiles, peak = run_ours(release, out, convert=method == "ours-convert")
    seconds, cpu_end = time.perf_counter() - start, os.times()
    cpu_seconds = sum(cpu_end[:4]) - sum(cpu[:4])  # user and system time, threads and pool workers included
    size = sum(path.stat().st_size for path in out.rglob("*.png"))
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "tiles": tiles, "peak_mib": peak,
                      "bytes": size}))


def _spin(n: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return time.perf_counter() - start


def available_cores(n: int = 10_000_000) -> float:
    """Cores two busy processes get now, from the time of one alone and of two at once (2.0 on an idle
    2-core machine): on a shared machine every figure of the run depends on it."""
    from multiprocessing import Pool

    alone = _spin(n)
    with Pool(2) as pool:
        start = time.perf_counter()
        pool.map(_spin, [n, n])
        both = time.perf_counter() - start
    return 2 * alone / both


def tile_pixels(folder: Path) -> dict[str, Any]:
    """Every tile under `folder` decoded as the data loader decodes it, by (scene, x0, y0) of its id."""
    import numpy as np
    from PIL import Image

    found = {}
    for path in folder.rglob("*.png"):
        stem, _, x0, y0 = re.fullmatch(r"(.+)__(\d+)__(\d+)___(\d+)", path.stem).groups()
        with Image.open(path) as image:
            found[stem, int(x0), int(y0)] = np.asarray(image)
    return found


def same_tiles(ours: Path, devkit: Path) -> bool:
    """The same windows with the same pixels (the devkit writes BGR as the file's RGB, so files agree)."""
    import numpy as np

    a, b = tile_pixels(ours), tile_pixels(devkit)
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def tiling(cache: Path, repeat: int) -> None:
    """Each method `repeat` times per release, alternating, each run in its own process writing into a fresh
    folder; median and range of wall time, tiles/s, median CPU time, the speed relative to devkit-2 (median
    of the ratios of runs in the same round, which saw about the same load), the largest peak memory and
    the bytes written."""
    import statistics
    import tempfile

    print(f"tiling at the DOTA settings (1024 px, 200 px overlap, 0.7 visible), warm page cache, {repeat} runs:")
    print(f"{'release':>8} {'method':>13} {'tiles':>6} {'wall s (median, range)':>24} {'tiles/s':>8} {'CPU s':>6} "
          f"{'x devkit-2':>10} {'peak MiB':>9} {'tile MB':>8}")
    for name in TILING_RELEASES:
        release = tiling_release(cache, name)
        runs: dict[str, list[dict]] = {method: [] for method in TILING_METHODS}
        cores = [available_cores()]
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            for i in range(repeat):
                for method in TILING_METHODS:
                    out = Path(scratch) / f"{method}-{i}"
                    out.mkdir()
                    proc = subprocess.run([sys.executable, __file__, "--tiling-child", method, str(release), str(out)],
                                          capture_output=True, text=True, check=True)
                    runs[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                    if i or method not in ("ours", "devkit-1"):  # those two are compared below
                        shutil.rmtree(out)
                cores.append(available_cores())
            identical = same_tiles(Path(scratch) / "ours-0", Path(scratch) / "devkit-1-0")
        for method, results in runs.items():
            seconds = [r["seconds"] for r in results]
            median = statistics.median(seconds)
            speed = statistics.median(peer["seconds"] / run["seconds"]
                                      for peer, run in zip(runs["devkit-2"], results, strict=True))
            print(f"{name:>8} {method:>13} {results[0]['tiles']:>6} "
                  f"{f'{median:.2f} ({min(seconds):.2f}-{max(seconds):.2f})':>24} {results[0]['tiles'] / median:>8.1f} "
                  f"{statistics.median(r['cpu_seconds'] for r in results):>6.2f} {speed:>10.2f} "
                  f"{max(r['peak_mib'] for r in results):>9.0f} {results[0]['bytes'] / 1e6:>8.1f}", flush=True)
        verdict = "the same windows, the same pixels" if identical else "TILES DIFFER"
        print(f"{name:>8} ours and the devkit's method: {verdict}; cores available between runs "
              f"{min(cores):.2f}-{max(cores):.2f} (of 2 on an idle machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("records", "tiling", "all"), default="all")
    parser.add_argument("--records", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--cache", type=Path, default=Path(".state/bench"))
    parser.add_argument("--repeat", type=int, default=1, help="records: best of N alternating runs per size; "
                                                              "tiling: N alternating runs per method (median, range)")
    parser.add_argument("--tiling-child", nargs=3, metavar=("METHOD", "RELEASE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiling_child:
        method, release, out = args.tiling_child
        tiling_child(method, Path(release), Path(out))
        return
    if args.part in ("records", "all"):
        records(args.cache, args.records, args.repeat)
    if args.part in ("tiling", "all"):
        tiling(args.cache, args.repeat)


def records(cache: Path, targets: list[int], repeat: int) -> None:
    print(f"{'records':>9} {'parse s':>8} {'convert s':>9} {'records/s':>10} {'ratio':>6} {'parse MiB':>9} "
          f"{'convert MiB':>11}")
    for target in targets:
        folder = corpus(cache, max(1, round(target / RECORDS_PER_SCALE)))
        parse, convert = best_of(repeat, folder)
        print(f"{parse['records']:>9,} {parse['seconds']:>8.1f} {convert['seconds']:>9.1f} "
              f"{parse['records'] / convert['seconds']:>10,.0f} {convert['seconds'] / parse['seconds']:>6.2f} "
              f"{parse['peak_rss_mib']:>9.0f} {convert['peak_rss_mib']:>11.0f}"
              f"{'' if parse['cold'] and convert['cold'] else '  (warm page cache: not root)'}", flush=True)


if __name__ == "__main__":
    main()
