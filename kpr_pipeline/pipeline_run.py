"""``kpr-pipeline run``: the deployment's assets and checks, run in-process against the instance.

The same jobs a deployment runs (sensors and schedules launch them there), executed one after the
other here with a line of progress each and a summary at the end.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from kpr_pipeline.settings import Settings

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
DEFAULT_DAGSTER_HOME = Path("data/dagster_home")
#: The jobs of a full run, in dependency order.
RUN_JOBS = ["reference_job"]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RunSummary:
    jobs_succeeded: list[str] = field(default_factory=list)
    jobs_failed: list[str] = field(default_factory=list)
    assets_materialized: int = 0
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    warehouse_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.jobs_failed and not self.checks_failed_blocking

    checks_failed_blocking: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"jobs: {len(self.jobs_succeeded)} succeeded, {len(self.jobs_failed)} failed {self.jobs_failed or ''}".rstrip(),
            f"assets materialised: {self.assets_materialized}",
            f"checks: {self.checks_passed} passed, {len(self.checks_failed)} failed {self.checks_failed or ''}".rstrip(),
        ]
        out += [f"{table}: {count} rows" for table, count in self.warehouse_counts.items()]
        return out


def ensure_dagster_home() -> Path:
    """Use $DAGSTER_HOME, or ``data/dagster_home`` with the embedded SQLite instance config."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(DEPLOY_DIR / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_pipeline(settings: Settings, instance: dg.DagsterInstance, echo=print) -> RunSummary:
    from kpr_pipeline.definitions import build_definitions

    defs = build_definitions(settings)
    summary = RunSummary()
    for name in RUN_JOBS:
        echo(f"running {name} ...")
        result = defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
        (summary.jobs_succeeded if result.success else summary.jobs_failed).append(name)
        summary.assets_materialized += len(result.get_asset_materialization_events())
        for evaluation in result.get_asset_check_evaluations():
            if evaluation.passed:
                summary.checks_passed += 1
            else:
                label = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                summary.checks_failed.append(label)
                if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                    summary.checks_failed_blocking.append(label)
    warehouse = defs.resources["warehouse"].get()
    for table in ("ref_municipalities", "ref_population", "kuhr_claims", "care_services", "iplos_services"):
        summary.warehouse_counts[table] = int(warehouse.scalar(f'SELECT COUNT(*) FROM "{table}"'))
    return summary
