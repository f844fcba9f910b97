"""The record rules of spec/helse-omsorg-report.md, vectorised over a batch of persons.

Person rules reject the whole person (one rejected row); service rules reject one ``tjeneste``.
A person who died before the reporting year is rejected as a person: every one of their service
rows would fail the same rule, and one row says it once. 12 and 13 are recoded to 29 from 2019
with a warning; overlapping long-term stays (code 21) are merged into the first, with a warning
on each merged-away row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from kpr_pipeline.domain import identifiers, reference
from kpr_pipeline.domain.care.report import FUNCTION_VARIABLES, PersonBatch

RECODED_FROM_2019 = {12: 29, 13: 29}
LONG_TERM_STAY = 21
EARLIEST_FRA = dt.date(1980, 1, 1)
MAX_HOURS = 168.0


@dataclass
class CheckedBatch:
    persons: pd.DataFrame  # one row per bruker; ``reasons`` is a list (empty = accepted)
    services: pd.DataFrame  # one row per tjeneste; ``reasons`` as above; ``merged`` rows are folded away
    warnings: pd.DataFrame  # person_index, service_index, reason
    assessments: pd.DataFrame  # person_index, dato, one column per function variable

    @property
    def person_rejected(self) -> np.ndarray:
        return self.persons["reasons"].map(bool).to_numpy(dtype=bool)


def _dates(values: list[str | None]) -> np.ndarray:
    """ISO dates (or None) as datetime64, parsed by NumPy in one call."""
    return np.array(values, dtype="datetime64[D]").astype("datetime64[s]")


@lru_cache(maxsize=None)
def _service_codes(year: int) -> tuple[set[int], set[int]]:
    """(codes valid in ``year``, hour-based codes)."""
    t = reference.tjenestekoder()
    hourly = set(t.loc[t["enhet"] == "timer", "kode"].astype(int))
    return set(reference.tjenestekoder_valid(year)), hourly


def check_batch(batch: PersonBatch, year: int, kommunenummer: str, production: bool) -> CheckedBatch:
    persons = pd.DataFrame({
        "person_index": batch.person_index, "ident": batch.ident, "id_type": batch.id_type, "kjonn": batch.kjonn,
        "fodselsaar": batch.fodselsaar, "bostedskommune": batch.bostedskommune,
        "dodsdato": _dates(batch.dodsdato),
    })
    year_start, year_end = pd.Timestamp(year, 1, 1), pd.Timestamp(year, 12, 31)
    check = identifiers.check_identifiers(persons["ident"], persons["id_type"], np.datetime64(year_end.date(), "D"),
                                          production)
    reasons = [[] if s == identifiers.OK else [s] for s in check.status]
    died_before = (persons["dodsdato"] < year_start).fillna(False).to_numpy(dtype=bool)
    for i in np.flatnonzero(died_before):
        reasons[i].append("died_before_year")
    persons["reasons"] = reasons

    services = pd.DataFrame({
        "person_index": batch.s_person, "service_index": batch.s_index,
        "tjenestekode_reported": pd.Series(batch.s_kode, dtype="int64"),
        "fra_dato": _dates(batch.s_fra),
        "til_dato": _dates(batch.s_til),
        "timer_per_uke": pd.Series(batch.s_timer, dtype="float64"),
    })
    valid, hourly = _service_codes(year)
    recode = services["tjenestekode_reported"].isin(list(RECODED_FROM_2019)) & (year >= 2019)
    services["tjenestekode"] = services["tjenestekode_reported"].where(
        ~recode, services["tjenestekode_reported"].map(RECODED_FROM_2019))
    birth_year = services["person_index"].map(persons.set_index("person_index")["fodselsaar"])
    fra, til, timer, kode = services["fra_dato"], services["til_dato"], services["timer_per_uke"], services["tjenestekode"]
    is_hourly = kode.isin(list(hourly))
    rules = {
        "fra_after_til": (fra > til).fillna(False),
        "fra_after_year_end": fra > year_end,
        "fra_too_early": (fra < pd.Timestamp(EARLIEST_FRA)) | (fra.dt.year < birth_year),
        "til_before_year_start": (til < year_start).fillna(False),
        "unknown_tjenestekode": ~kode.isin(list(valid)),
        "timer_missing": is_hourly & timer.isna(),
        "timer_not_expected": ~is_hourly & timer.notna() & kode.isin(list(valid)),
        "timer_out_of_range": timer.notna() & ((timer <= 0) | (timer > MAX_HOURS)),
    }
    service_reasons = [[] for _ in range(len(services))]
    for code, mask in rules.items():
        for i in np.flatnonzero(mask.to_numpy(dtype=bool)):
            service_reasons[i].append(code)
    services["reasons"] = service_reasons
    rejected_people = set(persons.loc[persons["reasons"].map(bool), "person_index"])
    services["person_rejected"] = services["person_index"].isin(rejected_people)
    ok = ~services["reasons"].map(bool) & ~services["person_rejected"]

    warnings = [pd.DataFrame({"person_index": services.loc[recode & ok, "person_index"],
                              "service_index": services.loc[recode & ok, "service_index"],
                              "reason": "tjenestekode_recoded"})]
    services["merged"] = False
    warnings.append(_merge_long_term_stays(services, ok))
    accepted_people = persons[~persons["person_index"].isin(rejected_people)]
    elsewhere = accepted_people[accepted_people["bostedskommune"] != kommunenummer]
    warnings.append(pd.DataFrame({"person_index": elsewhere["person_index"], "service_index": None,
                                  "reason": "bostedskommune_differs"}))

    assessments = _assessments(batch)
    if len(assessments):
        newest_assessment = assessments.groupby("person_index")["dato"].max()
        newest_decision = services[ok].groupby("person_index")["fra_dato"].max()
        both = pd.concat([newest_assessment, newest_decision], axis=1, join="inner")
        older = both.index[both["dato"] < both["fra_dato"]]
        older = [p for p in older if p not in rejected_people]
        warnings.append(pd.DataFrame({"person_index": older, "service_index": None,
                                      "reason": "assessment_older_than_decision"}))
        assessments = assessments[~assessments["person_index"].isin(rejected_people)]
    frames = [w for w in warnings if len(w)]
    warning_frame = (pd.concat(frames, ignore_index=True) if frames
                     else pd.DataFrame(columns=["person_index", "service_index", "reason"]))
    return CheckedBatch(persons, services, warning_frame.astype({"service_index": "Int64"}), assessments)


def _merge_long_term_stays(services: pd.DataFrame, ok: pd.Series) -> pd.DataFrame:
    """Fold overlapping code-21 stays of a person into the first (first fraDato, last tilDato; open wins).

    Updates ``services`` in place (the surviving row's dates, ``merged`` on the others) and
    returns a warning per merged-away row.
    """
    stays = services[ok & (services["tjenestekode"] == LONG_TERM_STAY)]
    multiple = stays[stays.duplicated("person_index", keep=False)].sort_values(["person_index", "fra_dato", "service_index"])
    out = []
    for _, group in multiple.groupby("person_index", sort=False):
        keep, end = None, None
        for idx, row in group.iterrows():
            if keep is not None and (pd.isna(end) or row["fra_dato"] <= end):
                services.at[idx, "merged"] = True
                end = pd.NaT if pd.isna(row["til_dato"]) or pd.isna(end) else max(end, row["til_dato"])
                services.at[keep, "til_dato"] = end
                out.append((row["person_index"], row["service_index"]))
            else:
                keep, end = idx, row["til_dato"]
    return pd.DataFrame(out, columns=["person_index", "service_index"]).assign(reason="overlapping_long_term_stays")


_VARIABLE_COLUMN = {name: i for i, name in enumerate(FUNCTION_VARIABLES)}


def _assessments(batch: PersonBatch) -> pd.DataFrame:
    """One row per assessment, one nullable small-integer column per function variable."""
    scores = np.zeros((len(batch.a_scores), len(FUNCTION_VARIABLES)), dtype=np.int16)
    for row, variables in enumerate(batch.a_scores):
        for name, score in variables.items():
            scores[row, _VARIABLE_COLUMN[name]] = score
    return pd.DataFrame({
        "person_index": batch.a_person, "dato": _dates(batch.a_dato),
        **{name.lower(): pd.arrays.IntegerArray(scores[:, c], scores[:, c] == 0) for name, c in _VARIABLE_COLUMN.items()}})
