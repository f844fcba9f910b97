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
import pandas as pd

from kpr_pipeline.defs.run_partitions import range_tags
from kpr_pipeline.deployment import LOCAL_INSTANCE_YAML
from kpr_pipeline.settings import Settings

DEFAULT_DAGSTER_HOME = Path("data/dagster_home")
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RunSummary:
    jobs_succeeded: list[str] = field(default_factory=list)
    jobs_failed: list[str] = field(default_factory=list)
    assets_materialized: int = 0
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_failed_blocking: list[str] = field(default_factory=list)
    warehouse_counts: dict[str, int | str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.jobs_failed and not self.checks_failed_blocking

    def lines(self) -> list[str]:
        out = [
            f"jobs: {len(self.jobs_succeeded)} succeeded, {len(self.jobs_failed)} failed {self.jobs_failed or ''}".rstrip(),
            f"assets materialised: {self.assets_materialized}",
            f"checks: {self.checks_passed} passed, {len(self.checks_failed)} failed {self.checks_failed or ''}".rstrip(),
        ]
        out += [f"{name}: {count}" for name, count in self.warehouse_counts.items()]
        return out


def ensure_dagster_home() -> Path:
    """Use $DAGSTER_HOME, or ``data/dagster_home`` with the embedded SQLite instance config."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(LOCAL_INSTANCE_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _execute(defs, name: str, instance, summary: RunSummary, echo, run_config=None, first=None, last=None) -> None:
    """One job, in-process; a partition range runs as one run (a deployment's backfills batch by the assets' policies)."""
    label = f"{name} [{first}..{last}]" if first else name
    echo(f"running {label} ...")
    tags = range_tags(first, last) if first else None
    config = {**QUIET, **(run_config or {})}
    result = defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False,
                                                           run_config=config, tags=tags)
    (summary.jobs_succeeded if result.success else summary.jobs_failed).append(label)
    summary.assets_materialized += len(result.get_asset_materialization_events())
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            summary.checks_passed += 1
        else:
            label_check = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            summary.checks_failed.append(label_check)
            if evaluation.blocking:
                summary.checks_failed_blocking.append(label_check)


def reference_is_current(instance: dg.DagsterInstance, warehouse, settings: Settings) -> bool:
    """True when every reference table was last loaded from the files as they are now, with the same split
    policy, and the warehouse still holds exactly the rows then loaded (so ``run`` need not reload them)."""
    from kpr_pipeline.defs.reference.assets import REFERENCE_TABLES, source_checksums

    for name, (_, files, _) in REFERENCE_TABLES.items():
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        if event is None or event.asset_materialization is None:
            return False
        metadata = event.asset_materialization.metadata
        if "source_files" not in metadata or metadata["source_files"].value != source_checksums(files):
            return False
        if warehouse.scalar(f'SELECT COUNT(*) FROM "{name}"') != metadata["rows"].value:
            return False
    for name in ("population_denominators", "geography_current"):
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        if event is None or event.asset_materialization is None:
            return False
        if event.asset_materialization.metadata["split_policy"].value != settings.split_policy:
            return False
    population = instance.get_latest_materialization_event(dg.AssetKey("population_denominators"))
    return (warehouse.scalar("SELECT COUNT(*) FROM population_current")
            == population.asset_materialization.metadata["rows"].value
            and warehouse.scalar("SELECT COUNT(*) FROM geography_units") > 0)


STATISTICS_TABLES = ("kuhr_contacts_monthly", "kuhr_contacts_annual", "kuhr_delivery_completeness", "care_users_annual",
                     "care_gp_contacts", "reconciliation_2017")


def publication_is_current(warehouse, settings: Settings) -> bool:
    """True when the last publication has every file, was made with the same threshold, split policy and
    newest treatment month, and no statistic was computed after it (so ``run`` need not publish again)."""
    import datetime as dt
    import json

    from kpr_pipeline.statistics.publication import PUBLICATIONS, publication_dir, through_month_for

    last = warehouse.query("SELECT MAX(published_at) AS at FROM publication_log").iloc[0]["at"]
    if last is None or pd.isna(last):
        return False
    directory = publication_dir(settings.output_dir)
    meta_path = directory / "kuhr_contacts_monthly.json"
    if not all((directory / f"{p.rules.table}.csv").exists() for p in PUBLICATIONS) or not meta_path.exists():
        return False
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if (meta.get("suppression_threshold") != settings.suppression_threshold
            or meta.get("split_policy") != settings.split_policy
            or meta.get("through_treatment_month") != through_month_for(dt.date.today()).isoformat()):
        return False
    newest = [warehouse.query(f"SELECT MAX(computed_at) AS at FROM {t}").iloc[0]["at"] for t in STATISTICS_TABLES]
    newest = [pd.Timestamp(t) for t in newest if t is not None and not pd.isna(t)]
    return not newest or max(newest) <= pd.Timestamp(last)


def _refresh_kuhr_statistics(defs, instance, summary: RunSummary, echo, first_month: str, last_month: str,
                             care_years: set[str]) -> None:
    """The KUHR statistics of the touched months and years; the care users' GP contacts of those years are
    added to ``care_years`` (refreshed once, after the municipal reports: ``_refresh_care_statistics``)."""
    from kpr_pipeline.defs.care.partitions import reporting_year_partitions

    first, last = int(first_month[:4]), int(last_month[:4])
    _execute(defs, "kuhr_statistics_month_job", instance, summary, echo, None, first_month, last_month)
    _execute(defs, "kuhr_year_job", instance, summary, echo, None, str(first), str(last))
    care_years |= {str(y) for y in range(max(first, 2017), last + 1) if reporting_year_partitions.has_partition_key(str(y))}


def _refresh_care_statistics(defs, instance, summary: RunSummary, echo, care_years: set[str]) -> None:
    """One care_statistics_job over the years that KUHR or the municipal reports changed (it ran twice over
    2017 before: once for the GP contacts, once for the reports; about a minute on PostgreSQL)."""
    if care_years:
        _execute(defs, "care_statistics_job", instance, summary, echo, None, min(care_years), max(care_years))


def _refresh_all_statistics(defs, instance, summary: RunSummary, echo, warehouse) -> None:
    """Every statistic over the periods that have data (after the reference data changed)."""
    from kpr_pipeline.defs.care.partitions import reporting_year_partitions

    care_years: set[str] = set()
    months = warehouse.query("SELECT MIN(behandlingsmaaned) AS a, MAX(behandlingsmaaned) AS b FROM kuhr_claims").iloc[0]
    if pd.notna(months["a"]):
        _refresh_kuhr_statistics(defs, instance, summary, echo, str(months["a"])[:10], str(months["b"])[:10],
                                 care_years)
    care_years |= {str(y) for y in warehouse.query("SELECT DISTINCT reporting_year FROM care_services")
                   ["reporting_year"] if reporting_year_partitions.has_partition_key(str(y))}
    _refresh_care_statistics(defs, instance, summary, echo, care_years)
    iplos_years = [str(y) for y in warehouse.query("SELECT DISTINCT reporting_year FROM iplos_services ORDER BY 1")
                   ["reporting_year"]]
    if iplos_years:
        _execute(defs, "iplos_statistics_job", instance, summary, echo, None, iplos_years[0], iplos_years[-1])


def raise_alerts(instance: dg.DagsterInstance, warehouse, settings: Settings, since, echo) -> int:
    """Alerts for the checks that failed and the runs that failed since ``since`` (the sensors' path, for the
    in-process run where no sensor is running); an alert already recorded is not recorded again."""
    from kpr_pipeline.defs.quality.history import check_alerts, run_failure_alert
    from kpr_pipeline.quality import alerts

    found, _ = check_alerts(instance, since)
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], created_after=since)):
        failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        found.append(run_failure_alert(run, failure[-1].message if failure else None))
    return sum(alerts.record(warehouse, a, settings.alert_webhook_url, echo) for a in found)


def run_pipeline(settings: Settings, instance: dg.DagsterInstance, echo=print) -> RunSummary:
    """Reference data, then every ready KUHR delivery not yet processed and the months they changed, then
    every municipal report not yet processed and its year's completeness, then the IPLOS extracts and
    the 2017 reconciliation."""
    import datetime as dt

    from kpr_pipeline.defs.care.sensors import only_new
    from kpr_pipeline.defs.kuhr.sensors import ONLY_NEW
    from kpr_pipeline.definitions import build_definitions
    from kpr_pipeline.defs.iplos.sensors import ONLY_NEW as IPLOS_ONLY_NEW
    from kpr_pipeline.domain.iplos import IPLOS_YEARS
    from kpr_pipeline.ingest import care, iplos
    from kpr_pipeline.ingest.kuhr import DATASET, partition_date, ready_manifests, unprocessed
    from kpr_pipeline.ingest.landing_zone import processed_files
    from kpr_pipeline.statistics.publication import publication_dir

    defs = build_definitions(settings)
    warehouse = defs.resources["warehouse"].get()
    summary = RunSummary()
    started = dt.datetime.now(dt.timezone.utc)
    reference_reloaded = not reference_is_current(instance, warehouse, settings)
    if reference_reloaded:
        _execute(defs, "reference_job", instance, summary, echo)
    else:
        echo("reference data unchanged since its last load: reference_job skipped")

    care_years: set[str] = set()  # care statistics to refresh, once, after the municipal reports
    new = unprocessed(ready_manifests(settings.landing_dir), processed_files(warehouse, DATASET))
    echo(f"KUHR: {len(new)} new deliveries ready")
    if new:
        dates = sorted(partition_date(m) for m, _ in new)
        _execute(defs, "kuhr_delivery_job", instance, summary, echo, ONLY_NEW, dates[0].isoformat(),
                 dates[-1].isoformat())
        months = warehouse.query("SELECT MIN(treatment_month) AS a, MAX(treatment_month) AS b FROM kuhr_touched_months "
                                 "WHERE processed_at >= :t", t=started).iloc[0]
        if pd.notna(months["a"]):
            _execute(defs, "kuhr_month_job", instance, summary, echo, None, str(months["a"])[:10], str(months["b"])[:10])
            if not reference_reloaded:
                _refresh_kuhr_statistics(defs, instance, summary, echo, str(months["a"])[:10], str(months["b"])[:10],
                                         care_years)

    reports = care.unprocessed(care.ready_files(settings.landing_dir), processed_files(warehouse, care.DATASET))
    echo(f"KPR-helse og omsorg: {len(reports)} new municipal reports ready")
    if reports:
        report_years = sorted(care.partition_of(p) for p in reports)
        _execute(defs, "care_year_job", instance, summary, echo, only_new(), report_years[0], report_years[-1])
        if not reference_reloaded:
            care_years |= {report_years[0], report_years[-1]}
    _refresh_care_statistics(defs, instance, summary, echo, care_years)

    extracts = [m for m, _ in iplos.unprocessed(iplos.ready_manifests(settings.landing_dir),
                                             processed_files(warehouse, iplos.DATASET)) if iplos.year_of(m) in IPLOS_YEARS]
    echo(f"IPLOS: {len(extracts)} new extracts ready")
    if extracts:
        extract_years = sorted(str(iplos.year_of(m)) for m in extracts)
        _execute(defs, "iplos_job", instance, summary, echo, IPLOS_ONLY_NEW, extract_years[0], extract_years[-1])
        if not reference_reloaded:
            _execute(defs, "iplos_statistics_job", instance, summary, echo, None, extract_years[0], extract_years[-1])
    if extracts or any(care.partition_of(p) == "2017" for p in reports):
        _execute(defs, "reconciliation_job", instance, summary, echo)
        if not settings.iplos_pseudonym_key:
            echo("reconciliation_2017 skipped: IPLOS_PSEUDONYM_KEY is not set")

    if reference_reloaded:  # new geography or denominators: every statistic with data is recomputed
        _refresh_all_statistics(defs, instance, summary, echo, warehouse)
    if publication_is_current(warehouse, settings):
        echo("statistics unchanged since the last publication: publication_job skipped")
    else:
        _execute(defs, "publication_job", instance, summary, echo)
    published = warehouse.query("SELECT SUM(cells_primary) AS p, SUM(cells_complementary) AS c FROM publication_log "
                                "WHERE published_at = (SELECT MAX(published_at) FROM publication_log)").iloc[0]
    if pd.notna(published["p"]):
        summary.warehouse_counts["publication"] = str(publication_dir(settings.output_dir).resolve())
        summary.warehouse_counts["published cells suppressed (primary, complementary)"] = \
            f"{int(published['p'])}, {int(published['c'])}"

    alerts_raised = raise_alerts(instance, warehouse, settings, started, echo)
    _execute(defs, "quality_report_job", instance, summary, echo)
    alerts_raised += raise_alerts(instance, warehouse, settings, started, echo)
    summary.warehouse_counts["alerts recorded"] = alerts_raised
    from kpr_pipeline.quality.report import quality_dir

    summary.warehouse_counts["quality report"] = str((quality_dir(settings.output_dir) / "latest.html").resolve())

    counts = warehouse.query(
        "SELECT status, COUNT(*) AS files, COALESCE(SUM(rows_loaded), 0) AS loaded, "
        "COALESCE(SUM(rows_rejected), 0) AS rejected, COALESCE(SUM(rows_duplicate), 0) AS duplicate "
        "FROM kuhr_deliveries GROUP BY status")
    for row in counts.itertuples():
        summary.warehouse_counts[f"KUHR files {row.status}"] = int(row.files)
        if row.status == "loaded":
            summary.warehouse_counts["KUHR rows loaded"] = int(row.loaded)
            summary.warehouse_counts["KUHR rows rejected"] = int(row.rejected)
            summary.warehouse_counts["KUHR rows duplicate (resends)"] = int(row.duplicate)
    care_counts = warehouse.query(
        "SELECT status, COUNT(*) AS files, COALESCE(SUM(persons), 0) AS persons, "
        "COALESCE(SUM(rows_rejected), 0) AS rejected FROM care_submissions GROUP BY status ORDER BY status")
    for row in care_counts.itertuples():
        summary.warehouse_counts[f"municipal reports {row.status}"] = int(row.files)
        if row.status == "current":
            summary.warehouse_counts["municipal report persons (current)"] = int(row.persons)
            summary.warehouse_counts["municipal report rows rejected (current)"] = int(row.rejected)
    missing = warehouse.query("SELECT reporting_year, missing FROM care_reporting_years ORDER BY reporting_year")
    for row in missing.itertuples():
        summary.warehouse_counts[f"municipalities missing for {row.reporting_year}"] = int(row.missing)
    for row in warehouse.query("SELECT status, COUNT(*) AS n, COALESCE(SUM(rows_loaded), 0) AS loaded, "
                               "COALESCE(SUM(rows_rejected), 0) AS rejected FROM iplos_extracts GROUP BY status "
                               "ORDER BY status").itertuples():
        summary.warehouse_counts[f"IPLOS extracts {row.status}"] = int(row.n)
        if row.status == "loaded":
            summary.warehouse_counts["IPLOS rows loaded"] = int(row.loaded)
            summary.warehouse_counts["IPLOS rows rejected"] = int(row.rejected)
    national = warehouse.query("SELECT match_rate FROM reconciliation_2017 WHERE kommunenummer = '0000' "
                               "AND tjenestekode IS NULL")
    if len(national):
        summary.warehouse_counts["reconciliation 2017 national match rate"] = \
            f"{float(national['match_rate'].iloc[0] or 0):.1%}"
    for table in ("ref_municipalities", "ref_population", "kuhr_claims", "kuhr_month_summary", "care_services",
                  "iplos_services"):
        summary.warehouse_counts[table] = int(warehouse.scalar(f'SELECT COUNT(*) FROM "{table}"'))
    return summary
