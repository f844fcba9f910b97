"""Benchmark of the KUHR delivery sensor's work on a landing directory of many files.

Writes ``--deliveries`` small deliveries (a manifest and a data file each: 10,000 files by default),
then times the sensor's listing (``new_deliveries``) three ways: the first tick (every delivery is
new and its data file is hashed), a tick after all were registered as processed with no cursor (a
restart: the warehouse registry answers), and a steady-state tick with the watermark cursor (nothing
is new). Dagster's limit for one tick is 60 seconds.

    python bench/sensor_bench.py --deliveries 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from kpr_pipeline.defs.kuhr.sensors import new_deliveries
from kpr_pipeline.domain.landing import KUHR_FORMAT
from kpr_pipeline.synth.output import manifest_for, write_gzip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=5000, help="deliveries (two files each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        folder = landing / "kuhr"
        folder.mkdir()
        payload = b"regning_id;takster\n" + b"x;2ad:1\n" * 100
        for i in range(args.deliveries):
            day = dt.date(2016, 7, 1) + dt.timedelta(days=i // 2)
            delivery_id = f"kuhr_{day:%Y%m%d}_{i % 2 + 1:03d}"
            data = folder / f"{delivery_id}.csv.gz"
            write_gzip(data, payload + str(i).encode())
            m = manifest_for(data, KUHR_FORMAT, delivery_id, day.isoformat(), 101, day.isoformat() + "T02:00:00+01:00")
            (folder / f"{delivery_id}.manifest.json").write_text(m.to_json())
        files = len(list(folder.iterdir()))
        t0 = time.perf_counter()
        found, watermark = new_deliveries(landing, 0.0, {})
        first = time.perf_counter() - t0
        registry = {f"kuhr/{m.name.replace('.manifest.json', '.csv.gz')}": sha for m, sha in found}
        t0 = time.perf_counter()
        after_restart, _ = new_deliveries(landing, 0.0, registry)
        restart = time.perf_counter() - t0
        t0 = time.perf_counter()
        steady, _ = new_deliveries(landing, watermark - 1.0, registry)
        steady_t = time.perf_counter() - t0
        print(f"landing directory: {files:,} files ({args.deliveries:,} deliveries)")
        print(f"first tick (all new, hashed):      {first:6.2f} s, {len(found):,} run requests")
        print(f"restart without cursor (registry): {restart:6.2f} s, {len(after_restart):,} run requests")
        print(f"steady tick with watermark:        {steady_t:6.2f} s, {len(steady):,} run requests")


if __name__ == "__main__":
    main()
