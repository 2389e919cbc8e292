"""Sample-corpus generation throughput and peak memory at two scales.

Each scale runs in its own process so peak RSS (ru_maxrss) belongs to that run alone. Memory must stay
flat as the corpus grows: the generator streams samples and records instead of holding them.

    .venv/bin/python bench/generate.py [--scales 1 4] [--only DATASET ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

_CHILD = """
import json, resource, sys, time
from mmrs.synthetic.corpus import generate_corpus
out, scale, names, workers = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
start = time.perf_counter()
reports = list(generate_corpus(out, seed=0, scale=scale, names=names or None, workers=workers))
print(json.dumps({
    "scale": scale,
    "seconds": time.perf_counter() - start,
    "images": sum(r.images for r in reports),
    "records": sum(r.annotations for r in reports),
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def run(scale: int, names: list[str], workers: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-c", _CHILD, out, str(scale), json.dumps(names), str(workers)],
                              capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs=2, default=[1, 4])
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--workers", type=int, default=1, help="datasets generated in parallel")
    args = parser.parse_args()
    rows = [run(scale, args.only, args.workers) for scale in args.scales]
    print(f"{'scale':>5} {'images':>7} {'records':>8} {'seconds':>8} {'images/s':>9} {'records/s':>10} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['scale']:>5} {r['images']:>7} {r['records']:>8} {r['seconds']:>8.1f} "
              f"{r['images'] / r['seconds']:>9.1f} {r['records'] / r['seconds']:>10.0f} {r['peak_rss_mib']:>9.0f}")
    small, large = rows
    print(f"corpus x{large['records'] / small['records']:.1f} -> peak memory x"
          f"{large['peak_rss_mib'] / small['peak_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
