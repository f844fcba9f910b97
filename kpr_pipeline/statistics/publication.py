"""Publication: each statistic after disclosure control, as CSV (UTF-8, ``;``) with a JSON metadata file.

Files are written under ``KPR_OUTPUT_DIR/publication/`` one period at a time (the monthly table at
national volume does not fit in memory at once), each to a temporary name and renamed when complete,
so a reader never sees half a file. Text cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return) are prefixed with ``'``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from kpr_pipeline.statistics import disclosure as dc
from kpr_pipeline.statistics.disclosure import Hierarchy, TableRules
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_GEO = Hierarchy("kommunenummer", dc.geography_parent)
_SEX, _AGE = Hierarchy("kjonn", dc.total_parent("T")), Hierarchy("age_group", dc.total_parent("T"))
_PROVENANCE = ("split_policy", "computed_at")


@dataclass(frozen=True)
class Publication:
    rules: TableRules
    title: str
    period: str | None  # the column written one value at a time (None: the whole table at once)
    where: str = "1 = 1"  # which rows are published (may use :through)
    order: tuple[str, ...] = ()
    definitions: dict[str, str] | None = None


PUBLICATIONS = [
    Publication(
        TableRules("kuhr_contacts_monthly",
                   keys=("treatment_month", "kommunenummer", "tjeneste", "kontakttype", "kjonn", "age_group"),
                   independent=("treatment_month",), counts=("contacts", "patients", "regninger"),
                   measures=("contacts", "patients", "regninger", "egenandel_sum", "refusjon_sum"),
                   size="regninger", hierarchies=(_GEO, _SEX, _AGE), hidden=_PROVENANCE),
        "KPR-KUHR contacts per treatment month", "treatment_month", "treatment_month <= :through",
        definitions={"contacts": "regninger with a contact (a takst that is a contact in the tariff reference)",
                     "patients": "distinct persons with at least one contact in the cell",
                     "regninger": "counted regninger (credit notes and the regninger they annulled never count)",
                     "kontakttype": "the contact type of the regning's highest-ranked contact takst; "
                                    "'ingen' = regninger without a contact"}),
    Publication(
        TableRules("kuhr_contacts_annual", keys=("year", "kommunenummer", "tjeneste", "kjonn", "age_group"),
                   independent=("year",),
                   counts=("contacts", "consultations", "patients", "patients_consultation", "regninger"),
                   measures=("contacts", "consultations", "patients", "patients_consultation", "regninger",
                             "contacts_per_inhabitant", "consultations_per_inhabitant", "share_with_contact",
                             "share_with_consultation"),
                   size="regninger", hierarchies=(_GEO, _SEX, _AGE), hidden=_PROVENANCE),
        "KPR-KUHR contacts per year with population", "year", "year <= :through_year",
        definitions={"population": "SSB 07459, 1 January, on current borders (imputed: carried forward)",
                     "share_with_contact": "patients / population", "preliminary": "until 1 August of the next year"}),
    Publication(
        TableRules("kuhr_delivery_completeness", keys=("treatment_month", "delay_months"),
                   independent=("treatment_month",), counts=("regninger",), measures=("regninger",),
                   size="regninger", hierarchies=(Hierarchy("delay_months", None),), hidden=("computed_at",),
                   empty_flag=None),
        "KPR-KUHR reporting-delay triangle", "treatment_month", "treatment_month <= :through",
        definitions={"delay_months": "whole months from the treatment month to the month received (6 = 6 or more)",
                     "share_of_total": "cumulative share of the month's current total received by this delay"}),
    Publication(
        TableRules("care_users_annual",
                   keys=("year", "source", "kommunenummer", "tjenestegruppe", "tjenestekode", "kjonn", "age_group"),
                   independent=("year", "source"),
                   counts=("users_during_year", "users_dec31", "users_with_hours_dec31"),
                   measures=("users_during_year", "users_dec31", "users_per_1000", "mean_hours_per_week", "days"),
                   size="users_during_year",
                   hierarchies=(_GEO, Hierarchy("tjenestekode", dc.total_parent("")), _SEX, _AGE),
                   hidden=(*_PROVENANCE, "users_67plus", "users_80plus", "users_with_hours_dec31",
                           "hours_per_week_sum"),
                   extra_requires={"users_per_1000_67plus": ("age_group", ("67-79", "80-89", "90+")),
                                   "users_per_1000_80plus": ("age_group", ("80-89", "90+"))}),
        "KPR-helse og omsorg and IPLOS: users of municipal health and care services", "year",
        "year <= :through_year", order=("source",),
        definitions={"tjenestekode": "empty on the service group's row",
                     "users_dec31": "users with a decision running on 31 December",
                     "mean_hours_per_week": "hours per week of hour-based decisions running on 31 December, "
                                            "per user who has one", "days": "days of stays in the year",
                     "source": "IPLOS 2007-2016 (and 2017 as a bridge row), KPR from 2017"}),
    Publication(
        TableRules("care_gp_contacts", keys=("year", "kommunenummer", "tjenestegruppe"), independent=("year",),
                   counts=("users", "users_with_gp_contact", "gp_contacts"),
                   measures=("users", "users_with_gp_contact", "gp_contacts", "gp_contacts_per_user"),
                   size="users", hierarchies=(_GEO,), hidden=_PROVENANCE),
        "Users of care services and their GP and emergency-room contacts", "year", "year <= :through_year",
        definitions={"gp_contacts_per_user": "GP and emergency-room contacts of the cell's users / users"}),
    Publication(
        TableRules("reconciliation_2017", keys=("kommunenummer", "tjenestekode"), independent=(),
                   counts=("persons_kpr", "persons_iplos", "persons_both", "persons_only_kpr", "persons_only_iplos",
                           "decisions_kpr", "decisions_iplos", "decisions_matched"),
                   measures=("persons_kpr", "persons_iplos", "persons_both", "persons_only_kpr",
                             "persons_only_iplos", "decisions_kpr", "decisions_iplos", "decisions_matched",
                             "mean_start_diff_days", "mean_end_diff_days", "mean_hours_diff", "match_rate"),
                   size="persons_kpr",
                   hierarchies=(Hierarchy("kommunenummer", dc.national_parent),
                                Hierarchy("tjenestekode", dc.total_parent(""))),
                   hidden=("computed_at",), empty_flag=None),
        "IPLOS-KPR 2017 reconciliation (2017 municipality codes as reported)", None,
        definitions={"kommunenummer": "2017 code as reported; 0000 = national",
                     "tjenestekode": "empty = all services"}),
]


def publication_dir(output_dir: Path) -> Path:
    return Path(output_dir) / "publication"


def formula_safe(value):
    """A text cell a spreadsheet would evaluate gets a leading ``'``; anything else is left as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole numbers without a decimal point, text safe from formula injection."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_float_dtype(values):
            whole = values.dropna()
            if len(whole) and (whole == whole.round()).all() and whole.abs().max() < 2**53:
                out[column] = values.astype("Int64")
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            text = values.astype(str)
            risky = values.notna() & text.str.startswith(FORMULA_STARTS)
            if risky.any():
                out[column] = values.where(~risky, "'" + text)
    return out


def _write_csv(table: pd.DataFrame, handle, header: bool) -> None:
    """Arrow's CSV writer (C++): ``;``-separated UTF-8, text quoted, empty for missing."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pacsv.write_csv(arrow, handle, write_options=pacsv.WriteOptions(include_header=header, delimiter=";"))


def _cumulative_shares(table: pd.DataFrame) -> pd.DataFrame:
    """The delay triangle's cumulative share reveals each delay's count once the total is known: a share is
    suppressed from the first suppressed delay of its month on."""
    first = (table["delay_months"].where(table["regninger_suppressed"]).groupby(table["treatment_month"])
             .transform("min"))
    hide = first.notna() & (table["delay_months"] >= first)
    table["share_of_total"] = table["share_of_total"].astype(object).where(~hide, None)
    table["share_of_total_suppressed"] = hide.to_numpy()
    return table


def _periods(warehouse: Warehouse, pub: Publication, params: dict) -> list:
    if pub.period is None:
        return [None]
    rows = warehouse.query(f"SELECT DISTINCT {pub.period} AS p FROM {pub.rules.table} WHERE {pub.where} "
                           "ORDER BY 1", **params)
    return rows["p"].tolist()


def publish_table(warehouse: Warehouse, pub: Publication, directory: Path, threshold: int, params: dict,
                  echo=lambda _m: None) -> dict:
    """Write one table's CSV (period by period) and return its counts; the caller writes the metadata."""
    rules = pub.rules
    target = directory / f"{rules.table}.csv"
    partial = target.with_suffix(".csv.partial")
    totals = {"rows": 0, "cells": 0, "cells_primary": 0, "cells_complementary": 0}
    preliminary: list[str] = []
    first = True
    with partial.open("wb") as handle:
        for period in _periods(warehouse, pub, params):
            where = pub.where if period is None else f"{pub.where} AND {pub.period} = :period"
            frame = warehouse.frame(f"SELECT * FROM {rules.table} WHERE {where}", **params, period=period)
            if frame.empty:
                continue
            if "tjenestekode" in frame:
                codes = pd.to_numeric(frame["tjenestekode"]).astype("Int64").astype(str)
                frame["tjenestekode"] = codes.where(frame["tjenestekode"].notna(), "")
            table, counts = dc.protect(frame, rules, threshold)
            if rules.table == "kuhr_delivery_completeness":
                table = _cumulative_shares(table)
            order = [c for c in (*pub.order, *rules.keys) if c in table]
            table = table.sort_values(order, kind="stable") if order else table
            for column in table.columns:  # dates, not timestamps
                if pd.api.types.is_datetime64_any_dtype(table[column]) and column != "computed_at":
                    table[column] = table[column].dt.strftime("%Y-%m-%d")
            if "preliminary" in table and table["preliminary"].astype(bool).any():
                preliminary += sorted({str(v)[:10] for v in table.loc[table["preliminary"].astype(bool),
                                                                         pub.period or rules.keys[0]]})
            _write_csv(_csv_ready(table), handle, header=first)
            first = False
            totals["rows"] += len(table)
            for k in ("cells", "cells_primary", "cells_complementary"):
                totals[k] += counts[k]
    os.replace(partial, target)
    totals["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    totals["preliminary"] = sorted(set(preliminary))
    echo(f"published {rules.table}: {totals['rows']} rows, {totals['cells_primary']} cells suppressed (primary), "
         f"{totals['cells_complementary']} (complementary)")
    return totals


def source_versions(warehouse: Warehouse) -> dict:
    """What the statistics were computed from: counts and the newest arrival of each dataset."""
    def one(sql: str) -> dict:
        row = warehouse.query(sql).iloc[0].to_dict()
        return {k: (None if pd.isna(v) else (str(v) if not isinstance(v, (int, float)) else v))
                for k, v in row.items()}
    return {
        "kuhr_deliveries": one("SELECT COUNT(*) AS loaded, MAX(delivery_date) AS newest_delivery_date, "
                               "MAX(processed_at) AS newest_processed_at FROM kuhr_deliveries WHERE status = 'loaded'"),
        "care_submissions": one("SELECT COUNT(*) AS current_reports, MAX(uttrekkstidspunkt) AS newest_extract, "
                                "MAX(processed_at) AS newest_processed_at FROM care_submissions "
                                "WHERE status = 'current'"),
        "iplos_extracts": one("SELECT COUNT(*) AS loaded, MAX(processed_at) AS newest_processed_at "
                              "FROM iplos_extracts WHERE status = 'loaded'"),
    }


def publish(warehouse: Warehouse, output_dir: Path, threshold: int, split_policy: str, through_month: dt.date,
            echo=lambda _m: None) -> list[dict]:
    """Write every table's CSV and JSON under ``output_dir/publication``; log them; return the metadata."""
    directory = publication_dir(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    run_time = dt.datetime.now(dt.timezone.utc)
    params = {"through": through_month, "through_year": through_month.year}
    sources = source_versions(warehouse)
    written = []
    for pub in PUBLICATIONS:
        counts = publish_table(warehouse, pub, directory, threshold, params, echo)
        metadata = {
            "table": pub.rules.table, "title": pub.title, "file": f"{pub.rules.table}.csv",
            "format": {"encoding": "UTF-8", "separator": ";", "empty": "suppressed or not defined"},
            "definitions": {**COMMON_DEFINITIONS, **(pub.definitions or {})},
            "source_data": sources, "split_policy": split_policy, "suppression_threshold": threshold,
            "through_treatment_month": through_month.isoformat(), "preliminary": counts["preliminary"],
            "rows": counts["rows"], "cells_suppressed_primary": counts["cells_primary"],
            "cells_suppressed_complementary": counts["cells_complementary"], "sha256": counts["sha256"],
            "run_time": run_time.isoformat(),
        }
        partial = directory / f"{pub.rules.table}.json.partial"
        partial.write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, directory / f"{pub.rules.table}.json")
        written.append(metadata)
    with warehouse.begin() as conn:
        conn.execute(sa.text("DELETE FROM publication_log WHERE published_at = :t"), {"t": run_time})
        bulk_insert(conn, "publication_log", pd.DataFrame([{
            "table_name": m["table"], "file": m["file"], "rows": m["rows"], "cells": m["rows"],
            "cells_primary": m["cells_suppressed_primary"], "cells_complementary": m["cells_suppressed_complementary"],
            "threshold": threshold, "split_policy": split_policy, "published_at": run_time} for m in written]))
    return written


COMMON_DEFINITIONS = {
    "kommunenummer": "current (2024) municipality; xx00 = county, 0000 = national; 9999 (unknown), 2100 and 2200 "
                     "count in the national row only; xx99 = a county's pre-split data under the rollup policy",
    "kjonn": "1, 2, 9 (unspecified), T = total (includes 9)",
    "age_group": "age on 31 December from birth year; T = total",
    "<name>_suppressed": "true: the cell's <name> is withheld by disclosure control (primary or complementary)",
    "split_suppressed": "true: a successor of a split municipality before the split, left empty (split policy "
                        "suppress)",
}


def through_month_for(run_date: dt.date) -> dt.date:
    """The newest treatment month to publish: the month that ended 30 days or more before ``run_date``."""
    month = run_date.replace(day=1)
    while True:
        end = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        if (run_date - end).days >= 30:
            return month
        month = (month - dt.timedelta(days=1)).replace(day=1)
