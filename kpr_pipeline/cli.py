"""The command line: ``kpr-pipeline generate | run | demo | migrate | accept-gap | serve | health``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from kpr_pipeline.settings import Settings, SettingsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    from kpr_pipeline.deployment import PROCESSES
    from kpr_pipeline.synth.generator import DEFAULT_END, DEFAULT_SCALE, DEFAULT_START

    p = argparse.ArgumentParser(prog="kpr-pipeline", description="KPR registry pipeline.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write a synthetic landing zone")
    g.add_argument("--out", type=Path, required=True, help="directory to write the landing zone into")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="1.0 = the volume of Norway")
    g.add_argument("--start", default=DEFAULT_START, help="first month, YYYY-MM")
    g.add_argument("--end", default=DEFAULT_END, help="last month, YYYY-MM")
    g.add_argument("--defects", type=float, default=0.0, help="rate of injected faults (0 = none)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    r = sub.add_parser("run", help="process what is ready in the landing zone")
    r.add_argument("--landing", type=Path, help="landing zone (default: KPR_LANDING_DIR)")
    sub.add_parser("demo", help="generate into data/landing and run, on the embedded defaults")
    sub.add_parser("migrate", help="create or upgrade the warehouse schema")
    a = sub.add_parser("accept-gap", help="a data steward accepts that a municipality will not report a year")
    a.add_argument("--year", type=int, required=True, help="reporting year")
    a.add_argument("--kommune", required=True, help="kommunenummer (4 digits)")
    a.add_argument("--by", required=True, help="the steward's name")
    a.add_argument("--reason", required=True, help="why the gap is accepted")
    s = sub.add_parser("serve", help="start one production process (deploy/dagster.yaml, deploy/workspace.yaml)")
    s.add_argument("process", choices=PROCESSES)
    h = sub.add_parser("health", help="is each production process alive? exit status 0 when all are")
    h.add_argument("--only", action="append", choices=PROCESSES,
                   help="ask only this process (repeatable; default: all three)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "generate":
            return _generate(args.out, args.seed, args.scale, args.start, args.end, args.defects, not args.quiet)
        if args.command == "run":
            if args.landing:
                os.environ["KPR_LANDING_DIR"] = str(args.landing)
            return _run(Settings.from_env())
        if args.command == "demo":
            from kpr_pipeline.synth.iplos import SYNTHETIC_IPLOS_KEY

            os.environ.setdefault("IPLOS_PSEUDONYM_KEY", SYNTHETIC_IPLOS_KEY)  # the demo's data is made with it
            settings = Settings.from_env()
            code = _generate(settings.landing_dir, 1, None, None, None, 0.0, True)
            return code or _run(settings)
        if args.command == "migrate":
            from kpr_pipeline.warehouse import Warehouse
            from kpr_pipeline.warehouse.migrate import current_revision

            warehouse = Warehouse(Settings.from_env().warehouse_url)
            warehouse.ensure_schema()
            print(f"warehouse schema at revision {current_revision(warehouse.engine)}")
            return EXIT_OK
        if args.command == "serve":
            from kpr_pipeline.deployment import serve

            serve(args.process)  # becomes the Dagster process
        if args.command == "health":
            return _health(tuple(args.only or ()))
        if args.command == "accept-gap":
            return _accept_gap(Settings.from_env(), args.year, args.kommune, args.by, args.reason)
    except (SettingsError, ValueError) as exc:
        print(f"kpr-pipeline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001
        from kpr_pipeline.warehouse import WarehouseError

        if isinstance(exc, WarehouseError):
            print(f"kpr-pipeline: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise
    return EXIT_USAGE


def _generate(out, seed, scale, start, end, defects, progress) -> int:
    from kpr_pipeline.synth.generator import DEFAULT_END, DEFAULT_SCALE, DEFAULT_START, GenerateOptions, generate

    t0 = time.perf_counter()
    summary = generate(GenerateOptions(
        out=Path(out), seed=seed, scale=scale or DEFAULT_SCALE, start=start or DEFAULT_START, end=end or DEFAULT_END,
        defects=defects, progress=progress,
    ))
    print(f"generated into {out} in {time.perf_counter() - t0:.1f} s: {summary.persons} persons, "
          f"{summary.kuhr_deliveries} KUHR deliveries ({summary.kuhr_rows} rows), {summary.care_files} municipal reports, "
          f"{summary.iplos_rows} IPLOS rows, {summary.ground_truth_records} ground-truth records")
    return EXIT_OK


def _accept_gap(settings: Settings, year: int, kommune: str, by: str, reason: str) -> int:
    from kpr_pipeline.quality.completeness import accept_gap, evaluate
    from kpr_pipeline.statistics.care_users import mark_preliminary
    from kpr_pipeline.warehouse import Warehouse

    warehouse = Warehouse(settings.warehouse_url)
    warehouse.ensure_schema()
    accept_gap(warehouse, year, kommune, by, reason)
    result = evaluate(warehouse, year)
    mark_preliminary(warehouse, year, not result.final)
    state = "final" if result.final else f"preliminary ({len(result.missing)} municipalities still missing)"
    print(f"gap accepted: {kommune} for {year} by {by}; {year} is now {state}")
    return EXIT_OK


def _health(processes: tuple[str, ...]) -> int:
    from kpr_pipeline.deployment import PROCESSES, health

    results = health(processes or PROCESSES)
    for result in results:
        print(f"{result.process}: {'ok' if result.ok else 'FAILING'} ({result.detail})")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _run(settings: Settings) -> int:
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)  # backfill_policy is beta; users need not see it

    from kpr_pipeline.pipeline_run import ensure_dagster_home, run_pipeline
    from kpr_pipeline.warehouse import Warehouse

    if not settings.landing_dir.is_dir():
        raise SettingsError(f"KPR_LANDING_DIR {settings.landing_dir} is not a directory.")
    Warehouse(settings.warehouse_url).ensure_schema()  # fails early, with one sentence, when unreachable
    home = ensure_dagster_home()
    print(f"settings: {settings.describe()}")
    print(f"dagster instance: {home}")
    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        summary = run_pipeline(settings, instance)
    print(f"run finished in {time.perf_counter() - t0:.1f} s")
    for line in summary.lines():
        print("  " + line)
    return EXIT_OK if summary.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
