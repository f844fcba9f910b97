"""Benchmark of the synthetic generator: throughput (rows per second) and peak memory.

Runs ``kpr-pipeline generate`` as a child process (as a user would) for each scale and prints wall
time, KUHR regninger per second, municipal reports per second and the child's peak RSS. Peak RSS
should stay flat when the period grows (deliveries are streamed one day at a time) and grow only
with the population held in memory (about 40 bytes per synthetic person).

    python bench/generator_bench.py                  # the documented runs
    python bench/generator_bench.py --scale 0.2 --start 2019-01 --end 2019-01
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = [  # (scale, start, end)
    (0.05, "2019-01", "2019-01"),
    (0.2, "2019-01", "2019-01"),
    (0.2, "2019-01", "2019-02"),
    (0.01, "2018-01", "2019-12"),
]


def run(scale: float, start: str, end: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "landing"
        command = [sys.executable, "-m", "kpr_pipeline.cli", "generate", "--out", str(out), "--scale", str(scale),
                   "--start", start, "--end", end, "--quiet"]
        t0 = time.perf_counter()
        # A fresh wrapper per run, so RUSAGE_CHILDREN's peak is this run's alone.
        proc = subprocess.run([sys.executable, __file__, "--measure", json.dumps(command)],
                              capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        peak_kib = int(proc.stdout.strip().splitlines()[-1])
        rows = sum(json.loads(m.read_text())["row_count"] for m in (out / "kuhr").glob("*.manifest.json"))
        reports = len(list((out / "helse_omsorg").rglob("*.xml"))) if (out / "helse_omsorg").exists() else 0
        return {
            "scale": scale, "period": f"{start}..{end}", "wall_s": round(wall, 1), "kuhr_rows": rows,
            "kuhr_rows_per_s": round(rows / wall), "reports": reports,
            "peak_rss_mib": round(peak_kib / 1024),
        }


def measure(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float)
    parser.add_argument("--start", default="2019-01")
    parser.add_argument("--end", default="2019-01")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(json.loads(args.measure))
    runs = [(args.scale, args.start, args.end)] if args.scale else RUNS
    print(f"{'scale':>6} {'period':>17} {'wall s':>7} {'KUHR rows':>10} {'rows/s':>8} {'reports':>8} {'peak RSS MiB':>13}")
    for scale, start, end in runs:
        r = run(scale, start, end)
        print(f"{r['scale']:>6} {r['period']:>17} {r['wall_s']:>7} {r['kuhr_rows']:>10} {r['kuhr_rows_per_s']:>8} "
              f"{r['reports']:>8} {r['peak_rss_mib']:>13}")


if __name__ == "__main__":
    main()
