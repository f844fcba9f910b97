"""Completeness of a reporting year of KPR-helse og omsorg: who reported, on time or late, who is missing.

Expected reporters are the municipalities valid in the year (2100, 2200 and 9999 excluded). A
year is **final** when its deadline has passed and every expected municipality has a current
submission or a gap accepted by a steward (``care_gap_acceptances``); otherwise its statistics are
preliminary. The evaluation is written to ``care_completeness`` (year x municipality) and
``care_reporting_years`` (one row per year), replacing the year's earlier evaluation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from kpr_pipeline.domain import reference
from kpr_pipeline.domain.care.report import deadline
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert

#: The statuses a municipality can have in a year, for the steward's grid.
STATUSES = ("on_time", "late", "missing", "quarantined", "accepted_gap")


@dataclass(frozen=True)
class YearCompleteness:
    reporting_year: int
    expected: int
    submitted: int
    late: int
    missing: list[str]  # expected, no current submission, gap not accepted
    accepted_gaps: list[str]
    resubmitted: list[str]
    persons_in_two_municipalities: int  # counted once at county and national level (statistics.md)
    deadline: dt.datetime
    deadline_passed: bool

    @property
    def final(self) -> bool:
        return self.deadline_passed and not self.missing


def evaluate(warehouse: Warehouse, year: int, as_of: dt.datetime | None = None) -> YearCompleteness:
    as_of = as_of or dt.datetime.now(dt.timezone.utc)
    due = deadline(year)
    expected = set(reference.municipality_codes_valid(year, reporters_only=True))
    subs = warehouse.query(
        "SELECT kommunenummer, status, uttrekkstidspunkt, late, persons, services, rows_rejected "
        "FROM care_submissions WHERE reporting_year = :y AND kommunenummer IS NOT NULL", y=year)
    accepted = set(warehouse.query(
        "SELECT DISTINCT kommunenummer FROM care_gap_acceptances WHERE reporting_year = :y", y=year)["kommunenummer"])
    users = warehouse.query(
        "SELECT reporting_year, kommunenummer, COUNT(DISTINCT pid) AS users FROM care_services "
        "WHERE reporting_year IN (:y, :p) GROUP BY reporting_year, kommunenummer", y=year, p=year - 1)
    now_users = users[users["reporting_year"] == year].set_index("kommunenummer")["users"]
    before_users = users[users["reporting_year"] == year - 1].set_index("kommunenummer")["users"]

    rows = []
    for code in sorted(expected | set(subs["kommunenummer"])):
        mine = subs[subs["kommunenummer"] == code]
        good = mine[mine["status"] != "quarantined"]
        current = good[good["status"] == "current"]
        first = pd.to_datetime(good["uttrekkstidspunkt"], utc=True).min() if len(good) else None
        if len(current):
            status = "late" if first > pd.Timestamp(due) else "on_time"
        elif code in accepted:
            status = "accepted_gap"
        else:
            status = "quarantined" if len(mine) else "missing"
        c = current.iloc[0] if len(current) else None
        n_now, n_before = now_users.get(code), before_users.get(code)
        rows.append({
            "reporting_year": year, "kommunenummer": code, "expected": code in expected, "status": status,
            "submissions": len(good), "quarantined": len(mine) - len(good),
            "first_submitted": first if first is not None and pd.notna(first) else None,
            "current_submitted": c["uttrekkstidspunkt"] if c is not None else None,
            "late": bool(c["late"]) if c is not None else None,
            "persons": _int(c, "persons"), "services": _int(c, "services"), "rows_rejected": _int(c, "rows_rejected"),
            "users": None if n_now is None else int(n_now), "users_previous_year": None if n_before is None else int(n_before),
            "users_change": (None if not n_before or n_now is None else float(n_now / n_before - 1.0)),
            "evaluated_at": as_of,
        })
    grid = pd.DataFrame(rows)
    result = YearCompleteness(
        reporting_year=year, expected=len(expected),
        submitted=int(grid["status"].isin(["on_time", "late"]).sum()),
        late=int((grid["status"] == "late").sum()),
        missing=sorted(grid.loc[grid["expected"] & grid["status"].isin(["missing", "quarantined"]), "kommunenummer"]),
        accepted_gaps=sorted(grid.loc[grid["status"] == "accepted_gap", "kommunenummer"]),
        resubmitted=sorted(grid.loc[grid["submissions"] > 1, "kommunenummer"]),
        persons_in_two_municipalities=int(warehouse.scalar(
            "SELECT COUNT(*) FROM (SELECT pid FROM care_services WHERE reporting_year = :y GROUP BY pid "
            "HAVING COUNT(DISTINCT kommunenummer) > 1) t", y=year)),
        deadline=due, deadline_passed=as_of > due,
    )
    with warehouse.begin() as conn:
        for table in ("care_completeness", "care_reporting_years"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE reporting_year = :y"), {"y": year})
        bulk_insert(conn, "care_completeness", grid)
        bulk_insert(conn, "care_reporting_years", pd.DataFrame({
            "reporting_year": [year], "expected": [result.expected], "submitted": [result.submitted],
            "late": [result.late], "missing": [len(result.missing)], "accepted_gaps": [len(result.accepted_gaps)],
            "persons_in_two_municipalities": [result.persons_in_two_municipalities],
            "deadline": [due], "deadline_passed": [result.deadline_passed], "final": [result.final],
            "evaluated_at": [as_of]}))
    return result


def _int(row, column: str) -> int | None:
    return None if row is None or pd.isna(row[column]) else int(row[column])


def accept_gap(warehouse: Warehouse, year: int, kommunenummer: str, accepted_by: str, reason: str) -> None:
    """A steward accepts that ``kommunenummer`` will not report ``year`` (the year can then be final)."""
    if kommunenummer not in reference.municipality_codes_valid(year, reporters_only=True):
        raise ValueError(f"{kommunenummer} is not an expected reporter in {year}.")
    if not accepted_by.strip() or not reason.strip():
        raise ValueError("A gap acceptance needs the steward's name and a reason.")
    with warehouse.begin() as conn:
        conn.execute(sa.text("DELETE FROM care_gap_acceptances WHERE reporting_year = :y AND kommunenummer = :k"),
                     {"y": year, "k": kommunenummer})
        bulk_insert(conn, "care_gap_acceptances", pd.DataFrame({
            "reporting_year": [year], "kommunenummer": [kommunenummer], "accepted_by": [accepted_by.strip()],
            "reason": [reason.strip()], "accepted_at": [dt.datetime.now(dt.timezone.utc)]}))
