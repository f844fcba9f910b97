"""The data stewards' quality report: one self-contained HTML file (no internet, opens from disk).

``gather`` reads what stewards decide on from the warehouse (counts only: codes, reasons, file
names, never a person column); ``render`` turns it and the check history into HTML with inline SVG
charts; ``write`` keeps one report per day under ``<output>/quality/`` and ``latest.html``.
Nothing here knows Dagster: the check history comes in as ``CheckResult`` rows.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape
from pathlib import Path

import pandas as pd

from kpr_pipeline.quality import charts
from kpr_pipeline.quality.freshness import kuhr_freshness
from kpr_pipeline.quality.reconciliation import municipality_match_rates
from kpr_pipeline.warehouse import Warehouse

#: how many recent results of a check the overview shows as its trend
TREND_LENGTH = 10
#: treatment months shown in the KUHR charts and the delay triangle
RECENT_MONTHS = 18
#: delivery dates shown in the deliveries chart
RECENT_DELIVERY_DAYS = 60
#: months before the newest one that make a service's recent level
LEVEL_MONTHS = 6
#: a municipality's users changed more than this against the previous year is listed
USERS_CHANGE_LISTED = 0.2
STATUS_ORDER = ("fail", "error", "warn", "pass")
GRID_LABELS = {"on_time": "on time", "late": "late", "missing": "missing", "quarantined": "quarantined",
               "accepted_gap": "gap accepted"}


@dataclass(frozen=True)
class CheckResult:
    """One evaluation of a check: ``status`` is pass, warn (failed, WARN), fail (failed, ERROR) or error
    (the check itself raised)."""

    asset: str
    check: str
    partition: str | None
    status: str
    at: dt.datetime
    description: str | None = None


@dataclass
class ReportData:
    generated_at: dt.datetime
    checks: list[CheckResult]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)


def _reason_counts(frame: pd.DataFrame, column: str = "reasons") -> pd.DataFrame:
    """Rows per reason code, where ``column`` holds comma-separated codes and ``n`` the rows with that text."""
    counts: Counter = Counter()
    for text, n in zip(frame[column], frame["n"]):
        for code in str(text).split(","):
            if code.strip():
                counts[code.strip()] += int(n)
    return pd.DataFrame(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), columns=["reason", "rows"])


def _plain_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """PostgreSQL sums bigints into numeric (``Decimal``): whole numbers become integers, others floats."""
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, Decimal)).any():
            values = pd.to_numeric(frame[column].map(lambda v: float(v) if isinstance(v, Decimal) else v),
                                   errors="coerce")
            frame[column] = values.astype("Int64") if (values.dropna() % 1 == 0).all() else values
    return frame


def gather(warehouse: Warehouse, checks: list[CheckResult], today: dt.date, stale_days: int,
           match_threshold: float, alerts_shown: int = 20) -> ReportData:
    """Everything the report shows, read from the warehouse with aggregations in SQL."""
    def q(sql: str, **params) -> pd.DataFrame:
        return _plain_numbers(warehouse.query(sql, **params))

    data = ReportData(generated_at=dt.datetime.now(dt.timezone.utc), checks=checks)
    f = data.frames
    f["deliveries_by_day"] = q("SELECT delivery_date, status, COUNT(*) AS files, SUM(rows_loaded) AS rows_loaded "
                               "FROM kuhr_deliveries GROUP BY delivery_date, status ORDER BY delivery_date")
    f["deliveries_total"] = q("SELECT status, COUNT(*) AS files, SUM(rows_in_file) AS rows_in_file, "
                              "SUM(rows_loaded) AS rows_loaded, SUM(rows_rejected) AS rows_rejected, "
                              "SUM(rows_duplicate) AS rows_duplicate FROM kuhr_deliveries GROUP BY status")
    f["quarantine"] = q("SELECT dataset, path, reason, quarantined_at FROM quarantine_events "
                        "ORDER BY dataset, quarantined_at, path")
    f["kuhr_rejects"] = _reason_counts(q("SELECT reasons, COUNT(*) AS n FROM kuhr_rejected_rows GROUP BY reasons"))
    f["kuhr_warnings"] = q("SELECT reason, COUNT(*) AS rows FROM kuhr_warnings GROUP BY reason ORDER BY rows DESC")
    newest = q("SELECT MAX(behandlingsmaaned) AS m FROM kuhr_claims")["m"].iloc[0]
    since = (pd.Timestamp(newest) - pd.DateOffset(months=RECENT_MONTHS - 1)).date() if pd.notna(newest) else today
    f["late_share"] = q("SELECT behandlingsmaaned AS month, COUNT(*) AS regninger, "
                        "SUM(CASE WHEN late THEN 1 ELSE 0 END) AS late FROM kuhr_claims "
                        "WHERE NOT kreditering AND behandlingsmaaned >= :s GROUP BY behandlingsmaaned "
                        "ORDER BY behandlingsmaaned", s=since)
    f["delay_triangle"] = q("SELECT treatment_month, delay_months, regninger, share_of_total "
                            "FROM kuhr_delivery_completeness WHERE treatment_month >= :s "
                            "ORDER BY treatment_month, delay_months", s=since)
    f["volume"] = q("SELECT treatment_month, tjeneste, SUM(regninger) AS regninger FROM kuhr_contacts_monthly "
                    "WHERE kommunenummer = '0000' AND kjonn = 'T' AND age_group = 'T' AND treatment_month >= :s "
                    "GROUP BY treatment_month, tjeneste ORDER BY treatment_month, tjeneste", s=since)
    freshness = kuhr_freshness(warehouse, today, stale_days)  # what the check kuhr_feed_fresh judges
    data.facts.update(last_delivery=freshness.newest_delivery, stale_days=stale_days, today=today,
                      days_since_delivery=freshness.days_since)
    f["care_grid"] = q("SELECT reporting_year, kommunenummer, status, submissions, quarantined, late, users, "
                       "users_previous_year, users_change, persons, services FROM care_completeness "
                       "WHERE expected OR submissions > 0 OR quarantined > 0 ORDER BY kommunenummer, reporting_year")
    f["care_years"] = q("SELECT * FROM care_reporting_years ORDER BY reporting_year")
    f["care_rejects"] = _reason_counts(q("SELECT reasons, COUNT(*) AS n FROM care_rejected_rows GROUP BY reasons"))
    f["care_warnings"] = q("SELECT reason, COUNT(*) AS rows FROM care_warnings GROUP BY reason ORDER BY rows DESC")
    f["care_gaps"] = q("SELECT reporting_year, kommunenummer, accepted_by, reason, accepted_at "
                       "FROM care_gap_acceptances ORDER BY reporting_year, kommunenummer")
    f["iplos_extracts"] = q("SELECT reporting_year, status, rows_in_file, rows_loaded, rows_rejected, reason "
                            "FROM iplos_extracts ORDER BY reporting_year")
    f["iplos_rejects"] = _reason_counts(q("SELECT reasons, COUNT(*) AS n FROM iplos_rejected_rows GROUP BY reasons"))
    f["reconciliation"] = q("SELECT tjenestekode, persons_kpr, persons_iplos, persons_both, persons_only_kpr, "
                            "persons_only_iplos, decisions_kpr, decisions_iplos, decisions_matched, match_rate "
                            "FROM reconciliation_2017 WHERE kommunenummer = '0000' "
                            "ORDER BY tjenestekode NULLS FIRST")
    rates = municipality_match_rates(warehouse)
    f["reconciliation_below"] = rates[rates["match_rate"] < match_threshold].sort_values("match_rate")
    data.facts["match_threshold"] = match_threshold
    f["disclosure"] = q("SELECT table_name, rows, cells_primary, cells_complementary, threshold, published_at "
                        "FROM publication_log WHERE published_at = (SELECT MAX(published_at) FROM publication_log) "
                        "ORDER BY table_name")
    f["alerts"] = q(f"SELECT raised_at, severity, kind, subject, partition, message, webhook_status FROM alerts "
                    f"ORDER BY raised_at DESC LIMIT {int(alerts_shown)}")
    return data


# ---------------------------------------------------------------- rendering

def _table(frame: pd.DataFrame, table_id: str, empty: str = "none", formats: dict | None = None) -> str:
    if frame.empty:
        return f'<p class="empty" id="{table_id}">{escape(empty)}</p>'
    formats = formats or {}
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for c, v in zip(frame.columns, row):
            text = "" if v is None or (not isinstance(v, str) and pd.isna(v)) else (
                formats[c](v) if c in formats else str(v))
            cells.append(f'<td data-col="{escape(str(c))}">{escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>' + "".join(body)
            + "</tbody></table>")


def _pct(v) -> str:
    return f"{float(v):.1%}"


def _overview(checks: list[CheckResult]) -> tuple[str, dict[str, int]]:
    """Per asset and check: latest status over its partitions, the partitions not passing, the trend."""
    if not checks:
        return '<p class="empty">No check has run yet.</p>', {}
    frame = pd.DataFrame([c.__dict__ for c in checks]).sort_values("at")
    frame["partition"] = frame["partition"].fillna("")
    latest = frame.groupby(["asset", "check", "partition"], as_index=False).last()
    counts = Counter(latest["status"])
    rows = []
    groups = []
    for (asset, check), part in latest.groupby(["asset", "check"]):
        worst = min(part["status"], key=lambda s: STATUS_ORDER.index(s) if s in STATUS_ORDER else 0)
        groups.append((STATUS_ORDER.index(worst) if worst in STATUS_ORDER else 0, asset, check, part, worst))
    for _, asset, check, part, worst in sorted(groups, key=lambda g: g[:3]):  # what needs a look first
        history = frame[(frame["asset"] == asset) & (frame["check"] == check)]["status"].tolist()[-TREND_LENGTH:]
        failing = part[part["status"] != "pass"]
        listed = ", ".join(f"{p or '(all)'}: {s}" for p, s in zip(failing["partition"], failing["status"]))
        if len(failing) > 20:
            listed = ", ".join(f"{p or '(all)'}: {s}" for p, s in
                               zip(failing["partition"][:20], failing["status"][:20])) + f", and {len(failing) - 20} more"
        rows.append(
            f'<tr class="check status-{worst}" data-asset="{escape(asset)}" data-check="{escape(check)}" '
            f'data-status="{worst}"><td>{escape(asset)}</td><td>{escape(check)}</td>'
            f'<td><span class="badge {worst}">{worst}</span></td>'
            f"<td>{len(part)}</td><td>{len(part) - len(failing)}</td><td>{escape(listed)}</td>"
            f"<td>{charts.status_squares(history, f'last {len(history)} results of {check}')}</td>"
            f"<td>{escape(part['at'].max().strftime('%Y-%m-%d %H:%M'))}</td></tr>")
    html = ('<table id="check-overview"><thead><tr><th>asset</th><th>check</th><th>status</th><th>partitions</th>'
            "<th>passing</th><th>not passing (partition: status)</th><th>trend (oldest first)</th>"
            "<th>last run (UTC)</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    return html, dict(counts)


def _kuhr(data: ReportData) -> str:
    f, facts = data.frames, data.facts
    parts = []
    days = facts["days_since_delivery"]
    if days is None:
        parts.append('<p class="fact warn" id="kuhr-freshness">No KUHR delivery has been received.</p>')
    else:
        stale = days > facts["stale_days"]
        parts.append(f'<p class="fact {"warn" if stale else "pass"}" id="kuhr-freshness">Newest delivery: '
                     f'{facts["last_delivery"]}, {days} days before {facts["today"]} '
                     f'({"stale" if stale else "fresh"}: the threshold is {facts["stale_days"]} days).</p>')
    by_day = f["deliveries_by_day"]
    if not by_day.empty:
        pivot = by_day.pivot_table(index="delivery_date", columns="status", values="files", aggfunc="sum",
                                   fill_value=0).tail(RECENT_DELIVERY_DAYS)
        labels = [pd.Timestamp(d).strftime("%m-%d") for d in pivot.index]
        series = {s: pivot[s].tolist() for s in ("loaded", "quarantined") if s in pivot}
        parts.append(charts.bars(labels, series, "Deliveries received per delivery date (files)",
                                 label_every=max(1, len(labels) // 12)))
    parts.append("<h3>Deliveries</h3>" + _table(f["deliveries_total"], "kuhr-deliveries"))
    parts.append("<h3>Quarantined deliveries</h3>"
                 + _table(f["quarantine"][f["quarantine"]["dataset"] == "kuhr"][["path", "reason", "quarantined_at"]],
                          "kuhr-quarantine"))
    parts.append("<h3>Rejected rows by reason</h3>" + _table(f["kuhr_rejects"], "kuhr-rejects"))
    parts.append("<h3>Warnings on loaded rows by reason</h3>" + _table(f["kuhr_warnings"], "kuhr-warnings"))
    late = f["late_share"]
    if not late.empty:
        labels = [pd.Timestamp(m).strftime("%Y-%m") for m in late["month"]]
        share = (late["late"] / late["regninger"].where(late["regninger"] > 0)).tolist()
        parts.append("<h3>Late claims</h3>" + charts.lines(
            labels, {"late share": [None if pd.isna(v) else float(v) for v in share]},
            "Share of regninger received late, by treatment month", label_every=max(1, len(labels) // 9),
            percent=True))
    tri = f["delay_triangle"]
    if not tri.empty:
        months = sorted({pd.Timestamp(m).strftime("%Y-%m") for m in tri["treatment_month"]})
        values = {(pd.Timestamp(m).strftime("%Y-%m"), str(int(d))): (None if pd.isna(s) else float(s))
                  for m, d, s in zip(tri["treatment_month"], tri["delay_months"], tri["share_of_total"])}
        parts.append("<h3>Reporting-delay triangle</h3><p>Share of each treatment month's current total received "
                     "within 0..6 months (6 = 6 or more): how complete a recent month is.</p>"
                     + charts.heatmap(months, [str(d) for d in range(7)], values,
                                      "Cumulative share received by delay (months)"))
    vol = f["volume"]
    if not vol.empty:
        pivot = vol.pivot_table(index="treatment_month", columns="tjeneste", values="regninger", aggfunc="sum",
                                fill_value=0)
        labels = [pd.Timestamp(m).strftime("%Y-%m") for m in pivot.index]
        parts.append("<h3>Volume per service</h3>" + charts.lines(
            labels, {s: pivot[s].astype(float).tolist() for s in pivot.columns},
            "Regninger per treatment month and service (national)", label_every=max(1, len(labels) // 9)))
        rows = []
        for service in pivot.columns:
            series = pivot[service]
            newest, level = series.iloc[-1], series.iloc[-1 - LEVEL_MONTHS:-1].mean() if len(series) > 1 else None
            rows.append({"tjeneste": service, "newest month": labels[-1], "regninger": int(newest),
                         f"mean of the {LEVEL_MONTHS} months before": None if level is None else round(float(level)),
                         "ratio": None if not level else round(float(newest / level), 2)})
        parts.append(_table(pd.DataFrame(rows), "kuhr-volume") + "<p class='note'>The newest months are "
                     "incomplete until late claims arrive (see the triangle): a low ratio there is expected.</p>")
    return "".join(parts)


def _care(data: ReportData) -> str:
    f = data.frames
    grid = f["care_grid"]
    parts = []
    if not f["care_years"].empty:
        parts.append(_table(f["care_years"][["reporting_year", "expected", "submitted", "late", "missing",
                                             "accepted_gaps", "deadline_passed", "final"]], "care-years"))
    if grid.empty:
        parts.append('<p class="empty" id="care-grid">No municipal report has been received.</p>')
    else:
        years = sorted(grid["reporting_year"].unique())
        head = "".join(f"<th>{int(y)}</th>" for y in years)
        cells = {(r.kommunenummer, int(r.reporting_year)): r for r in grid.itertuples()}
        rows = []
        for code in sorted(grid["kommunenummer"].unique()):
            tds = []
            for y in years:
                r = cells.get((code, int(y)))
                if r is None:
                    tds.append('<td class="s-none"></td>')
                    continue
                resub = int(r.submissions or 0) > 1
                label = GRID_LABELS.get(r.status, r.status) + (" + resubmitted" if resub else "")
                mark = {"on_time": "✓", "late": "L", "missing": "—", "quarantined": "Q", "accepted_gap": "A"}.get(
                    r.status, "?") + ("↻" if resub else "")
                tds.append(f'<td class="s-{escape(r.status)}{" resubmitted" if resub else ""}" data-year="{int(y)}" '
                           f'data-kommune="{escape(code)}" data-status="{escape(r.status)}" '
                           f'data-resubmitted="{str(resub).lower()}" title="{escape(code)} {int(y)}: '
                           f'{escape(label)}">{mark}</td>')
            rows.append(f'<tr data-kommune="{escape(code)}"><th>{escape(code)}</th>{"".join(tds)}</tr>')
        legend = " ".join(f'<span class="s-{k} legend">{m} {escape(v)}</span>' for k, v, m in
                          [(k, v, {"on_time": "✓", "late": "L", "missing": "—", "quarantined": "Q",
                                   "accepted_gap": "A"}[k]) for k, v in GRID_LABELS.items()])
        parts.append(f'<h3>Reporting year × municipality</h3><p>{legend} <span class="legend">↻ resubmitted</span> '
                     '<label>Filter municipality: <input id="grid-filter" size="6"></label></p>'
                     f'<div class="scroll"><table id="care-grid" class="grid"><thead><tr><th>kommune</th>{head}'
                     f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
        change = grid[pd.to_numeric(grid["users_change"], errors="coerce").abs() > USERS_CHANGE_LISTED]
        parts.append(f"<h3>Users per municipality against the previous year (change above "
                     f"{USERS_CHANGE_LISTED:.0%})</h3>"
                     + _table(change[["reporting_year", "kommunenummer", "users", "users_previous_year",
                                      "users_change", "persons", "services"]], "care-users-change",
                              formats={"users_change": _pct}))
    parts.append("<h3>Rejected records by reason</h3>" + _table(f["care_rejects"], "care-rejects"))
    parts.append("<h3>Warnings by reason</h3>" + _table(f["care_warnings"], "care-warnings"))
    parts.append("<h3>Quarantined reports</h3>"
                 + _table(f["quarantine"][f["quarantine"]["dataset"] == "helse_omsorg"][
                     ["path", "reason", "quarantined_at"]], "care-quarantine"))
    parts.append("<h3>Gaps accepted by a steward</h3>" + _table(f["care_gaps"], "care-gaps"))
    parts.append("<h3>IPLOS extracts</h3>" + _table(f["iplos_extracts"], "iplos-extracts")
                 + "<h4>Rejected IPLOS rows by reason</h4>" + _table(f["iplos_rejects"], "iplos-rejects")
                 + "<h4>Quarantined IPLOS extracts</h4>"
                 + _table(f["quarantine"][f["quarantine"]["dataset"] == "iplos"][["path", "reason", "quarantined_at"]],
                          "iplos-quarantine"))
    return "".join(parts)


def _reconciliation(data: ReportData) -> str:
    f = data.frames
    national = f["reconciliation"]
    if national.empty:
        return ('<p class="empty" id="reconciliation">Not computed (IPLOS_PSEUDONYM_KEY not set, or no 2017 data '
                'in one of the registers).</p>')
    below = f["reconciliation_below"]
    return ("<p>National rows (0000); an empty service code is all services.</p>"
            + _table(national, "reconciliation", formats={"match_rate": _pct})
            + f"<h3>Municipalities with a match rate below {data.facts['match_threshold']:.0%}</h3>"
            + _table(below, "reconciliation-below", formats={"match_rate": _pct}))


def _disclosure(data: ReportData) -> str:
    d = data.frames["disclosure"]
    if d.empty:
        return '<p class="empty" id="disclosure">Nothing has been published yet.</p>'
    chart = charts.bars(d["table_name"].tolist(), {"primary": d["cells_primary"].tolist(),
                                                    "complementary": d["cells_complementary"].tolist()},
                        "Cells suppressed in the latest publication, per table", height=240)
    return _table(d, "disclosure") + chart


STYLE = """
body{font-family:system-ui,sans-serif;margin:0 2rem 3rem;color:#222;max-width:1200px}
h1{margin-bottom:0}h2{border-bottom:2px solid #1565c0;padding-top:1rem}nav a{margin-right:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}th,td{border:1px solid #ddd;padding:2px 6px;text-align:left}
thead th{background:#f1f5fb}.badge{padding:1px 6px;border-radius:3px;color:#fff}.pass{background:#2e7d32}
.warn{background:#f9a825;color:#000}.fail{background:#c62828}.error{background:#6a1b9a}
p.fact.pass{background:#e8f5e9}p.fact.warn{background:#fff8e1}p.fact{padding:4px 8px}
.grid td{text-align:center;min-width:2.2em}.s-on_time{background:#c8e6c9}.s-late{background:#ffe082}
.s-missing{background:#ef9a9a}.s-quarantined{background:#ce93d8}.s-accepted_gap{background:#b0bec5}
.resubmitted{font-weight:bold}.legend{padding:1px 6px;margin-right:4px}.scroll{max-height:480px;overflow:auto}
.summary span{display:inline-block;margin-right:1rem;font-size:15px}.empty,.note{color:#666;font-style:italic}
svg.chart{display:block;margin:.5rem 0}
"""

SCRIPT = """
(function(){
  var input = document.getElementById('grid-filter');
  if (input) {
    input.addEventListener('input', function(){
      var text = input.value.trim();
      document.querySelectorAll('#care-grid tbody tr').forEach(function(row){
        row.style.display = row.dataset.kommune.indexOf(text) === 0 ? '' : 'none';
      });
    });
  }
  document.body.dataset.rendered = 'true';
})();
"""


def render(data: ReportData, links: dict[str, str] | None = None) -> str:
    """The report as one HTML document (inline CSS, SVG and script; no external resource)."""
    overview, counts = _overview(data.checks)
    link_html = " ".join(f'<a href="{escape(href)}">{escape(name)}</a>' for name, href in (links or {}).items())
    summary = " ".join(f'<span class="{s}-count"><span class="badge {s}">{s}</span> {counts.get(s, 0)}</span>'
                       for s in ("pass", "warn", "fail", "error"))
    sections = [("status", "Check status", f'<p class="summary">{summary}</p>' + overview),
                ("kuhr", "KPR-KUHR deliveries and claims", _kuhr(data)),
                ("care", "KPR-helse og omsorg: annual reports (and IPLOS)", _care(data)),
                ("reconciliation", "IPLOS-KPR 2017 reconciliation", _reconciliation(data)),
                ("disclosure", "Disclosure control", _disclosure(data)),
                ("alerts", "Recent alerts", _table(data.frames["alerts"], "alerts-table", "no alerts"))]
    nav = " ".join(f'<a href="#section-{k}">{escape(t)}</a>' for k, t, _ in sections)
    body = "".join(f'<section id="section-{k}"><h2>{escape(t)}</h2>{html}</section>' for k, t, html in sections)
    stamp = data.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>KPR quality report {stamp}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f'<body><h1>KPR quality report</h1><p>Generated {stamp}. {link_html}</p><nav>{nav}</nav>{body}'
            f"<script>{SCRIPT}</script></body></html>")


def quality_dir(output_dir: Path) -> Path:
    return Path(output_dir) / "quality"


def write(output_dir: Path, html: str, generated_at: dt.datetime) -> Path:
    """Write the day's report (replacing an earlier one of the same day) and ``latest.html``; both
    atomically, so a reader never opens half a report."""
    directory = quality_dir(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"quality_report_{generated_at.strftime('%Y-%m-%d')}.html"
    for target in (path, directory / "latest.html"):
        partial = target.with_suffix(".html.partial")
        partial.write_text(html, encoding="utf-8")
        os.replace(partial, target)
    return path


def markdown_summary(data: ReportData, path: Path) -> str:
    """A few lines for Dagster's asset metadata."""
    latest = {}
    for c in sorted(data.checks, key=lambda c: c.at):
        latest[(c.asset, c.check, c.partition)] = c.status
    counts = Counter(latest.values())
    facts = data.facts
    totals = data.frames["deliveries_total"].set_index("status")["files"].to_dict() if not data.frames[
        "deliveries_total"].empty else {}
    return "\n".join([
        f"**Quality report** `{path}`",
        "",
        f"- checks (latest per partition): {counts.get('pass', 0)} pass, {counts.get('warn', 0)} warn, "
        f"{counts.get('fail', 0)} fail, {counts.get('error', 0)} error",
        f"- KUHR deliveries: {int(totals.get('loaded', 0))} loaded, {int(totals.get('quarantined', 0))} quarantined; "
        f"newest {facts.get('last_delivery')}",
        f"- rejected rows: KUHR {int(data.frames['kuhr_rejects']['rows'].sum())}, "
        f"care {int(data.frames['care_rejects']['rows'].sum())}, IPLOS {int(data.frames['iplos_rejects']['rows'].sum())}",
    ])
