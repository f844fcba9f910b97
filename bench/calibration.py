"""National GP figures from synthetic data against the generator's calibration (spec/statistics.md).

Generates the KUHR deliveries of a year and of the six months after it (so the year's late claims arrive)
at ``--scale`` (default 0.05), takes them in through the real jobs
(reference data, deliveries, treatment months, monthly and annual statistics) into a DuckDB warehouse,
and compares the national GP consultations per inhabitant and the share of inhabitants with at least one
consultation with the calibration targets (3.0 and 72 %). The synthetic population is ``scale`` x
Norway while the denominators are SSB's real population, so the figures are divided by the scale.

    python bench/calibration.py
    python bench/calibration.py --scale 0.01 --year 2023
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

TARGET_CONSULTATIONS, TARGET_SHARE = 3.0, 0.72


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--year", type=int, default=2023)
    parser.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kpr-calibration-"))
    os.environ["DAGSTER_HOME"] = str(work / "dagster_home")

    import dagster as dg

    from kpr_pipeline.definitions import build_definitions
    from kpr_pipeline.defs.kuhr.sensors import ONLY_NEW
    from kpr_pipeline.pipeline_run import ensure_dagster_home
    from kpr_pipeline.settings import Settings
    from kpr_pipeline.synth.generator import GenerateOptions, generate

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    landing = work / "landing"
    started = time.perf_counter()
    if not landing.exists():
        generate(GenerateOptions(out=landing, seed=1, scale=args.scale, start=f"{args.year}-01",
                                 end=f"{args.year + 1}-06", defects=0.0, progress=False))
    print(f"generated {landing} in {time.perf_counter() - started:.0f} s")
    ensure_dagster_home()
    settings = Settings.from_env({"KPR_WAREHOUSE_URL": f"duckdb:///{work / 'warehouse.duckdb'}",
                                  "KPR_LANDING_DIR": str(landing)})
    defs = build_definitions(settings)
    year = str(args.year)
    steps = [("reference_job", None, None), ("kuhr_delivery_job", f"{year}-01-01", f"{int(year) + 1}-12-31"),
             ("kuhr_month_job", f"{year}-01-01", f"{year}-12-01"),
             ("kuhr_statistics_month_job", f"{year}-01-01", f"{year}-12-01"), ("kuhr_year_job", year, year)]
    with dg.DagsterInstance.get() as instance:
        for job, first, last in steps:
            t = time.perf_counter()
            tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last} \
                if first else None
            result = defs.resolve_job_def(job).execute_in_process(
                instance=instance, tags=tags, run_config=ONLY_NEW if job == "kuhr_delivery_job" else None,
                raise_on_error=False)
            print(f"{job}: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - t:.0f} s")
    w = defs.resources["warehouse"].get()
    row = w.query("SELECT consultations, patients_consultation, population FROM kuhr_contacts_annual WHERE year = :y "
                  "AND kommunenummer = '0000' AND tjeneste = 'FASTLEGE' AND kjonn = 'T' AND age_group = 'T'",
                  y=args.year).iloc[0]
    synthetic_population = float(row["population"]) * args.scale
    per_inhabitant = float(row["consultations"]) / synthetic_population
    share = float(row["patients_consultation"]) / synthetic_population
    print(f"national GP consultations {int(row['consultations'])}, patients {int(row['patients_consultation'])}, "
          f"population {int(row['population'])} x scale {args.scale}")
    print(f"GP consultations per inhabitant: {per_inhabitant:.3f} (target {TARGET_CONSULTATIONS}, "
          f"{per_inhabitant / TARGET_CONSULTATIONS - 1:+.1%})")
    print(f"share with at least one consultation: {share:.3f} (target {TARGET_SHARE}, "
          f"{share / TARGET_SHARE - 1:+.1%})")
    per_patient = float(row["consultations"]) / float(row["patients_consultation"])
    target = TARGET_CONSULTATIONS / TARGET_SHARE
    print(f"consultations per GP patient (the national_gp_figures_plausible check): {per_patient:.3f} "
          f"(calibration {target:.3f}, {per_patient / target - 1:+.1%})")


if __name__ == "__main__":
    main()
