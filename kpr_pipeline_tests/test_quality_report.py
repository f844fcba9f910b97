"""The stewards' quality report, Data Docs, alerts and freshness: on generator data with planted faults, on
both warehouses, through the same ``run`` the command line does; the report opened in a real browser."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import lxml.html
import pytest

from kpr_pipeline.settings import get_settings
from kpr_pipeline_tests.conftest import _private_copy

ARTIFACTS = Path(os.environ.get("KPR_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


def _truth(landing: Path) -> list[dict]:
    return [json.loads(x) for x in (landing / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()]


def _table(doc, table_id: str) -> list[dict]:
    """The rows of the report's table ``table_id`` as dicts (an empty-section note is no rows)."""
    element = doc.get_element_by_id(table_id)
    if element.tag != "table":
        return []
    head = [th.text_content() for th in element.xpath("./thead/tr/th")]
    return [dict(zip(head, (td.text_content() for td in tr.xpath("./td")))) for tr in element.xpath("./tbody/tr")]


def _reason_counts(warehouse, table: str) -> dict[str, int]:
    counts: Counter = Counter()
    for reasons in warehouse.query(f"SELECT reasons FROM {table}")["reasons"]:
        counts.update(r for r in reasons.split(",") if r)
    return dict(counts)


@pytest.fixture(scope="session")
def quality_landing(tmp_path_factory) -> Path:
    """A month of KUHR deliveries, the 2017 municipal reports and the IPLOS extracts, with planted faults."""
    from kpr_pipeline.synth.generator import GenerateOptions, generate

    out = tmp_path_factory.mktemp("quality_landing")
    generate(GenerateOptions(out=out, seed=17, scale=0.0005, start="2017-12", end="2017-12", defects=0.03,
                             progress=False))
    # IPLOS: the years with a planted file fault and the last two (the reconciliation's); the other years
    # would only add statistics cells to publish (minutes on two cores), not new kinds of fault
    keep = {2016, 2017} | {t["reporting_year"] for t in _truth(out) if t["dataset"] == "iplos" and t["level"] == "file"}
    for path in (out / "iplos").glob("iplos_*"):
        if int(path.name[6:10]) not in keep:
            path.unlink()
    return out


@pytest.fixture
def report_run(quality_landing, warehouse_url, tmp_path, dagster_instance, monkeypatch):
    """``run`` over a landing zone with faults in all three datasets; the warehouse, the output directory and
    what the run printed."""
    from kpr_pipeline.pipeline_run import run_pipeline
    from kpr_pipeline.settings import Settings
    from kpr_pipeline.synth.iplos import SYNTHETIC_IPLOS_KEY
    from kpr_pipeline.warehouse import Warehouse

    landing = _private_copy(quality_landing, tmp_path)
    output = tmp_path / "output"
    monkeypatch.setenv("IPLOS_PSEUDONYM_KEY", SYNTHETIC_IPLOS_KEY)
    get_settings.cache_clear()
    settings = Settings.from_env({"KPR_WAREHOUSE_URL": warehouse_url, "KPR_LANDING_DIR": str(landing),
                                  "KPR_OUTPUT_DIR": str(output), "IPLOS_PSEUDONYM_KEY": SYNTHETIC_IPLOS_KEY,
                                  "KPR_REPORT_SETTLE_SECONDS": "0"})
    lines: list[str] = []
    summary = run_pipeline(settings, dagster_instance, echo=lines.append)
    assert summary.ok, summary.lines()
    return Warehouse(warehouse_url), output, landing, summary, "\n".join(lines)


@pytest.mark.heavy(minutes=6)
def test_the_quality_report_on_data_with_planted_faults(report_run, request):
    """One run per warehouse (it is the slow part), three questions asked of it."""
    _every_planted_fault_is_in_the_report_under_its_reason(*report_run)
    _report_data_docs_and_alerts_hold_no_identifier(*report_run)
    _the_report_renders_in_a_headless_browser(report_run[1], request.node.name)


def _every_planted_fault_is_in_the_report_under_its_reason(warehouse, output, landing, summary, printed):
    truth = _truth(landing)
    path = output / "quality" / "latest.html"
    assert summary.warehouse_counts["quality report"] == str(path.resolve())
    assert (output / "quality" / f"quality_report_{dt.datetime.now(dt.timezone.utc):%Y-%m-%d}.html").read_text(
        encoding="utf-8") == path.read_text(encoding="utf-8")
    doc = lxml.html.fromstring(path.read_text(encoding="utf-8"))

    # KUHR: every row fault counted under its reason code (the counts are the warehouse's), every file fault
    # listed with its reason.
    rejects = {r["reason"]: int(r["rows"]) for r in _table(doc, "kuhr-rejects")}
    assert rejects == _reason_counts(warehouse, "kuhr_rejected_rows")
    planted = Counter(t["reason"] for t in truth if t["dataset"] == "kuhr" and t.get("level") == "row"
                      and t["expected"] == "reject")
    assert planted and all(rejects.get(reason, 0) >= n for reason, n in planted.items()), (planted, rejects)
    warnings = {r["reason"]: int(r["rows"]) for r in _table(doc, "kuhr-warnings")}
    planted_warnings = Counter(t["reason"] for t in truth if t["dataset"] == "kuhr" and t.get("level") == "row"
                               and t["expected"] == "warning")
    assert all(warnings.get(reason, 0) >= n for reason, n in planted_warnings.items()), (planted_warnings, warnings)
    quarantined = {(r["path"], r["reason"]) for r in _table(doc, "kuhr-quarantine")}
    planted_files = {(t["file"], t["reason"]) for t in truth if t["dataset"] == "kuhr" and t.get("level") == "file"
                     and t["expected"] == "quarantine"}
    delivery = lambda path: Path(path).name.split(".")[0]  # noqa: E731 - data file or manifest, by delivery id
    assert planted_files and {(delivery(p), r) for p, r in planted_files} == {(delivery(p), r) for p, r in quarantined}

    # Annual reports: the planted faults by reason, the quarantined files, and the grid.
    care_truth = [t for t in truth if t["dataset"] == "helse_omsorg"]
    care_rejects = {r["reason"]: int(r["rows"]) for r in _table(doc, "care-rejects")}
    assert care_rejects == _reason_counts(warehouse, "care_rejected_rows")
    for reason, n in Counter(t["reason"] for t in care_truth if t.get("level") not in ("file", "municipality")
                             and t["expected"] == "reject").items():
        assert care_rejects.get(reason, 0) >= n, reason
    care_files = {(Path(t["file"]).name, t["reason"]) for t in care_truth if t.get("level") == "file"}
    assert care_files == {(Path(r["path"]).name, r["reason"]) for r in _table(doc, "care-quarantine")}
    grid = {(c.get("data-kommune"), int(c.get("data-year"))): c.get("data-status")
            for c in doc.xpath("//table[@id='care-grid']//td[@data-status]")}
    missing = {(t["kommunenummer"], t["reporting_year"]) for t in care_truth if t["defect"] == "missing_reporter"}
    late = {(t["kommunenummer"], t["reporting_year"]) for t in care_truth if t["defect"] == "late_reporter"}
    assert missing and late
    quarantined_codes = {(Path(t["file"]).name.split("_")[3], t["reporting_year"]) for t in care_truth
                         if t.get("level") == "file" and "reporting_year" in t}
    assert {k for k, s in grid.items() if s == "missing"} == missing
    for key in late:  # late, unless the late reporter's only good file was the one quarantined
        assert grid[key] == "late" or (grid[key] == "quarantined" and key in quarantined_codes), (key, grid[key])
    assert {k for k, s in grid.items() if s == "late"} <= late

    # IPLOS faults, the reconciliation, disclosure control, and the check overview.
    iplos_rejects = {r["reason"]: int(r["rows"]) for r in _table(doc, "iplos-rejects")}
    assert iplos_rejects == _reason_counts(warehouse, "iplos_rejected_rows") and iplos_rejects
    present = {int(p.name[6:10]) for p in (landing / "iplos").glob("iplos_*.csv.gz")}
    iplos_truth = [t for t in truth if t["dataset"] == "iplos"]
    for reason, n in Counter(t["reason"] for t in iplos_truth if t["level"] == "row"
                             and t["reporting_year"] in present).items():
        assert iplos_rejects.get(reason, 0) >= n, reason
    assert {(Path(t["file"]).name, t["reason"]) for t in iplos_truth if t["level"] == "file"} == {
        (Path(r["path"]).name, r["reason"]) for r in _table(doc, "iplos-quarantine")}
    assert _table(doc, "reconciliation")[0]["tjenestekode"] == ""  # the all-services row first
    disclosure = {r["table_name"]: r for r in _table(doc, "disclosure")}
    assert set(disclosure) >= {"kuhr_contacts_monthly", "care_users_annual"}
    checks = {(r.get("data-asset"), r.get("data-check")): r.get("data-status")
              for r in doc.xpath("//table[@id='check-overview']//tr[@data-check]")}
    assert checks[("kuhr_deliveries", "kuhr_accounting")] == "pass"
    assert checks[("kuhr_deliveries", "kuhr_feed_fresh")] == "warn"  # the synthetic feed ended years ago
    assert checks[("care_completeness", "care_reports_complete")] in ("warn", "fail")  # planted missing reporters
    assert "newest delivery" in doc.get_element_by_id("kuhr-freshness").text_content().lower()
    for chart in ("Deliveries received per delivery date", "Cumulative share received by delay",
                  "Regninger per treatment month and service", "Cells suppressed in the latest publication"):
        assert doc.xpath(f"//svg/title[contains(text(), '{chart}')]"), chart


def _report_data_docs_and_alerts_hold_no_identifier(warehouse, output, landing, summary, printed):
    from kpr_pipeline_tests.leak_scan import file_leaks, warehouse_leaks

    docs = output / "data_docs"
    assert (docs / "index.html").exists()
    pages = list((docs / "validations").rglob("*.html"))
    assert pages, "a validation page per kept result"
    assert any("kuhr_claims" in p.as_posix() for p in pages)
    assert 'href="../data_docs/index.html"' in (output / "quality" / "latest.html").read_text(encoding="utf-8")
    scanned = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    assert scanned > 100_000
    assert file_leaks(output) == {}
    assert file_leaks(landing) != {}  # the scanner finds identifiers where they are
    assert warehouse_leaks(warehouse) == {}
    # Failed checks were recorded as alerts (logged, in the table), each once.
    alerts = warehouse.query("SELECT source_key, kind, severity, subject, webhook_status FROM alerts")
    assert summary.warehouse_counts["alerts recorded"] == len(alerts) > 0
    assert "kuhr_deliveries:kuhr_feed_fresh" in set(alerts["subject"])
    assert set(alerts["webhook_status"]) == {"not_configured"}
    assert "ALERT WARN check_warning: kuhr_deliveries:kuhr_feed_fresh" in printed


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - the http.server interface
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(monkeypatch):
    """A local HTTP server that keeps what is posted to it; KPR_ALERT_WEBHOOK_URL points at it."""
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    monkeypatch.setenv("KPR_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    get_settings.cache_clear()
    yield _Hook.received
    server.shutdown()


@dg.asset
def _flaky():
    raise RuntimeError("the warehouse went away (planted for the alert test; 01017012345 is masked)")


@dg.asset
def _checked():
    return 1


@dg.asset_check(asset=_checked, blocking=False)
def _warns():
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="a planted warning")


@dg.asset_check(asset=_checked, blocking=False)
def _errs():
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, description="a planted error")


@dg.asset_check(asset=_checked, blocking=False)
def _passes():
    return dg.AssetCheckResult(passed=True)


def test_failed_runs_and_checks_alert_once_each_with_a_webhook_post(warehouse, dagster_instance, webhook):
    from kpr_pipeline.defs.quality.sensors import check_failure_alerts, run_failure_alerts
    from kpr_pipeline.defs.resources import WarehouseResource

    resources = {"warehouse": WarehouseResource(url=warehouse.url)}
    failed = dg.materialize([_flaky], instance=dagster_instance, raise_on_error=False)
    assert not failed.success
    failure = dagster_instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    for _ in range(2):  # a repeated tick records nothing twice
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alerts", dagster_instance=dagster_instance,
            dagster_run=dagster_instance.get_run_by_id(failed.run_id), dagster_event=failure.dagster_event,
            resources=resources).for_run_failure()
        run_failure_alerts(context)
    checked = dg.materialize([_checked, _warns, _errs, _passes], instance=dagster_instance)
    assert checked.success
    # the report is rebuilt after a run that changed data, not after one that failed before writing anything
    from kpr_pipeline.defs.quality.sensors import quality_report_after_runs

    def after(result):
        event = dagster_instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
        return quality_report_after_runs(dg.build_run_status_sensor_context(
            sensor_name="quality_report_after_runs", dagster_instance=dagster_instance,
            dagster_run=dagster_instance.get_run_by_id(result.run_id), dagster_event=event[-1].dagster_event))
    assert isinstance(after(checked), dg.RunRequest)
    only_checked = dg.materialize([_checked, _passes], instance=dagster_instance,
                                  selection=dg.AssetSelection.checks(_passes))
    assert only_checked.success and not only_checked.get_asset_materialization_events()
    assert isinstance(after(only_checked), dg.SkipReason)
    context = dg.build_sensor_context(instance=dagster_instance, resources=resources)
    check_failure_alerts(context)
    assert dt.datetime.fromisoformat(context.cursor) > dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    check_failure_alerts(dg.build_sensor_context(instance=dagster_instance, resources=resources,
                                                 cursor=context.cursor))  # the overlap: read again, not recorded
    check_failure_alerts(dg.build_sensor_context(instance=dagster_instance, resources=resources))
    alerts = warehouse.query("SELECT kind, severity, subject, message, webhook_status FROM alerts ORDER BY kind, severity")
    assert list(zip(alerts["kind"], alerts["severity"])) == [
        ("check_failure", "ERROR"), ("check_warning", "WARN"), ("run_failure", "ERROR")]
    assert set(alerts["webhook_status"]) == {"delivered"}
    assert sorted(m["kind"] for m in webhook) == ["check_failure", "check_warning", "run_failure"]
    assert {m["subject"] for m in webhook} == {"_checked:_errs", "_checked:_warns", "__ephemeral_asset_job__"}
    assert all(m["source"] == "kpr-pipeline" and m["raised_at"] for m in webhook)
    assert "01017012345" not in json.dumps(webhook) and "01017012345" not in "".join(alerts["message"])


def test_an_unreachable_webhook_loses_no_alert(warehouse, monkeypatch):
    from kpr_pipeline.quality.alerts import Alert, record

    logged = []
    assert record(warehouse, Alert("run:x", "run_failure", "ERROR", "a_job", "failed"), "http://127.0.0.1:9/", logged.append)
    row = warehouse.query("SELECT webhook_status FROM alerts WHERE source_key = 'run:x'")
    assert row["webhook_status"].iloc[0].startswith("failed: ")
    assert any("webhook failed" in line for line in logged)
    assert not record(warehouse, Alert("run:x", "run_failure", "ERROR", "a_job", "failed"), None)


def test_the_feed_is_stale_after_the_configured_days(warehouse):
    from kpr_pipeline.quality.freshness import kuhr_freshness
    from kpr_pipeline.warehouse.engine import bulk_insert
    import pandas as pd

    assert kuhr_freshness(warehouse, dt.date(2024, 3, 10), 3).stale  # no delivery at all
    with warehouse.begin() as conn:
        bulk_insert(conn, "kuhr_deliveries", pd.DataFrame([{
            "delivery_id": "kuhr_20240306_001", "data_file": "kuhr_20240306_001.csv.gz", "sha256": "0" * 64,
            "delivery_date": dt.date(2024, 3, 6), "status": "loaded", "rows_in_file": 0, "rows_loaded": 0,
            "rows_rejected": 0, "rows_duplicate": 0, "processed_at": dt.datetime.now(dt.timezone.utc)}]))
    assert not kuhr_freshness(warehouse, dt.date(2024, 3, 9), 3).stale
    late = kuhr_freshness(warehouse, dt.date(2024, 3, 10), 3)
    assert late.stale and late.days_since == 4 and late.newest_delivery == dt.date(2024, 3, 6)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _headless(browser: str, *args: str, page: Path) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", "--no-first-run", "--allow-file-access-from-files", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def _console_errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "CONSOLE" in line and (
        "Uncaught" in line or "Error" in line or ":ERROR:" in line)]


def _the_report_renders_in_a_headless_browser(output: Path, test_name: str):
    browser = _chromium()
    assert browser, "Debian's chromium is needed (.ci/run installs it: apt-get install chromium)"
    page = output / "quality" / "latest.html"
    artifacts = ARTIFACTS / test_name.replace("[", "_").replace("]", "")
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "quality_report.png"
    proc = _headless(browser, f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars", page=page)
    assert shot.exists() and shot.stat().st_size > 20_000, proc.stderr[-2000:]
    assert not _console_errors(proc)
    dom = _headless(browser, "--dump-dom", page=page)
    rendered = lxml.html.fromstring(dom.stdout)
    assert rendered.body.get("data-rendered") == "true"  # the page's script ran to its end
    for section in ("status", "kuhr", "care", "reconciliation", "disclosure", "alerts"):
        assert rendered.get_element_by_id(f"section-{section}") is not None
    assert len(rendered.xpath("//svg[contains(@class, 'chart')]")) >= 5
    assert not _console_errors(dom)
    # the console check can fail: a page with a script error is caught
    broken = artifacts / "broken.html"
    broken.write_text("<html><body><script>undefinedFunction();</script></body></html>", encoding="utf-8")
    assert _console_errors(_headless(browser, "--dump-dom", page=broken))
