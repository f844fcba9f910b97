"""Synthetic KPR-KUHR deliveries: one delivery a day (sometimes two), claims arriving with a delay.

A delivery on day D holds, for every treatment day T in the 300 days before, the claims of T that
Helfo received at D: a Poisson count with the delay distribution of ``model``. Claims are drawn
for persons of the synthetic population by age, sex and frailty, so each person's yearly count is
mixed Poisson. Credit notes, corrections and resends are buffered until their own delivery day,
so memory is bounded by a few days of claims, whatever the scale or the period.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kpr_pipeline.domain import reference
from kpr_pipeline.domain.landing import KUHR_FORMAT
from kpr_pipeline.synth import model
from kpr_pipeline.synth.defects import KuhrDefects
from kpr_pipeline.synth.output import GroundTruth, csv_bytes, manifest_for, write_gzip
from kpr_pipeline.synth.population import Population, from_ordinal, to_ordinal
from kpr_pipeline.synth.rng import stream

KUHR_START = dt.date(2016, 7, 1)
OSLO = ZoneInfo("Europe/Oslo")
#: How often a person drawn for a day they were not alive on is drawn again (then the claim is dropped).
MAX_REDRAWS = 10
COLUMNS = [
    "regning_id", "regningsnummer", "praksis_id", "praksistype", "tjeneste", "behandler_hpr", "praksiskommune",
    "pasient_id", "pasient_id_type", "kjonn", "fodselsaar", "bostedskommune", "tidspunkt", "mottatt_dato",
    "kreditering", "kreditert_regning_id", "takster", "diagnoser", "fritak_egenandel", "egenandel", "refusjon",
]


def _age_group_index(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(model.AGE_BOUNDS, age, side="right") - 1


class KuhrGenerator:
    def __init__(self, population: Population, seed: int, out: Path, truth: GroundTruth, defect_rate: float):
        self.pop = population
        self.seed = seed
        self.dir = out / "kuhr"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.truth = truth
        self.defects = KuhrDefects(defect_rate, truth)
        self.pmf = model.delay_pmf()
        self.pending: dict[int, list[pd.DataFrame]] = defaultdict(list)  # delivery ordinal -> rows
        self.takst_options = _takst_options(reference.takster())
        ssb = reference.REFERENCE_DIR / "ssb_07459" / "Personer2015-2018.csv"
        from kpr_pipeline.domain.population import parse_ssb_07459

        real = parse_ssb_07459(ssb)
        real = real[real.year == 2017].groupby("kommunenummer")["persons"].sum()
        self.real_pop_2017 = real.reindex(population.codes_2017).fillna(1000).to_numpy()
        self._weights: dict[tuple[str, int], tuple[np.ndarray, float]] = {}
        self._alive: dict[int, float] = {}
        self._codes: dict[int, np.ndarray] = {}
        self._valid_codes: dict[int, np.ndarray] = {}
        self.rows_written = 0

    # --- who is treated --------------------------------------------------------------------
    def _alive_mid_year(self, year: int) -> float:
        """The persons alive on 1 July of ``year``: the population the year's rates apply to."""
        if year not in self._alive:
            day = to_ordinal(dt.date(year, 7, 1))
            self._alive[year] = float(((self.pop.arrival <= day) & (self.pop.death > day)).sum())
        return self._alive[year]

    def _cell_weights(self, service: str, year: int) -> tuple[np.ndarray, float]:
        """Cumulative cell weights for drawing persons, and the persons alive in ``year``."""
        key = (service, year)
        if key not in self._weights:
            cells, start = self.pop.cells, self.pop.cell_start
            size = np.diff(np.append(start, len(self.pop)))
            age = year - cells[:, 0]
            profile, female_ratio = model.AGE_PROFILE[service]
            factor = np.where(age < 0, 0.0, np.asarray(profile)[np.clip(_age_group_index(np.maximum(age, 0)), 0, 9)])
            if female_ratio >= 1000:
                factor = np.where(cells[:, 1] == 2, factor, 0.0)
            else:
                factor = factor * np.where(cells[:, 1] == 2, 2 * female_ratio / (1 + female_ratio), 2 / (1 + female_ratio))
            w = size * factor * self.pop.frailty_values[cells[:, 2]]
            self._weights[key] = (np.cumsum(w) / w.sum(), self._alive_mid_year(year))
        return self._weights[key]

    def _draw_persons(self, rng: np.random.Generator, service: str, years: np.ndarray) -> np.ndarray:
        persons = np.empty(len(years), dtype=np.int64)
        size = np.diff(np.append(self.pop.cell_start, len(self.pop)))
        for year in np.unique(years):
            idx = np.flatnonzero(years == year)
            cum, _ = self._cell_weights(service, int(year))
            cell = np.minimum(np.searchsorted(cum, rng.random(len(idx))), len(cum) - 1)
            persons[idx] = self.pop.cell_start[cell] + (rng.random(len(idx)) * size[cell]).astype(np.int64)
        return persons

    def _codes_in_year(self, year: int) -> np.ndarray:
        if year not in self._codes:
            self._codes[year] = self.pop.codes_in_year(year)
            self._valid_codes[year] = np.array(
                [c for c in reference.municipality_codes_valid(year) if c not in reference.NON_MUNICIPAL_CODES]
            )
        return self._codes[year]

    # --- one delivery day ------------------------------------------------------------------
    def claims_received(self, day: dt.date) -> pd.DataFrame:
        """The new claims Helfo received on ``day`` (before credits, resends and defects)."""
        rng = stream(self.seed, "kuhr", day.isoformat())
        d = to_ordinal(day)
        t = d - np.arange(len(self.pmf))
        keep = t >= to_ordinal(KUHR_START)
        t, pmf = t[keep], self.pmf[keep]
        t_dates = t.astype("datetime64[D]")
        years = t_dates.astype("datetime64[Y]").astype(int) + 1970
        weekday = (t + 3) % 7  # 1970-01-01 was a Thursday
        parts: list[dict[str, np.ndarray]] = []
        for s_index, service in enumerate(model.SERVICES):
            kinds = list(model.RATES[service].items())
            total_rate = sum(r for _, r in kinds)
            alive = np.array([self._cell_weights(service, int(y))[1] for y in years])
            week = np.ones(7) if service == "LEGEVAKT" else model.WEEKDAY_FACTOR / model.WEEKDAY_FACTOR.mean()
            expected = alive * total_rate / 365.25 * week[weekday] * pmf
            counts = rng.poisson(expected)
            n = int(counts.sum())
            if n == 0:
                continue
            treat = np.repeat(t, counts)
            treat_year = np.repeat(years, counts)
            persons = self._draw_persons(rng, service, treat_year)
            for _ in range(MAX_REDRAWS):  # a person not alive on the day is drawn again: the rates hold
                gone = ~((self.pop.arrival[persons] <= treat) & (self.pop.death[persons] > treat))
                if not gone.any():
                    break
                persons[gone] = self._draw_persons(rng, service, treat_year[gone])
            alive_then = (self.pop.arrival[persons] <= treat) & (self.pop.death[persons] > treat)
            treat, treat_year, persons = treat[alive_then], treat_year[alive_then], persons[alive_then]
            if len(persons) == 0:
                continue
            shares = np.array([r for _, r in kinds]) / total_rate
            kind = rng.choice(len(kinds), size=len(persons), p=shares)
            parts.append(self._rows(rng, service, s_index, [k for k, _ in kinds], kind, persons, treat, treat_year, d))
        if not parts:
            return pd.DataFrame(columns=COLUMNS)
        n = sum(len(p["regning_id"]) for p in parts)
        order = rng.permutation(n)
        return pd.DataFrame({c: np.concatenate([p[c] for p in parts]).astype(object)[order] for c in COLUMNS})

    def _rows(self, rng, service, s_index, kind_names, kind, persons, treat, treat_year, delivery) -> pd.DataFrame:
        n = len(persons)
        pop = self.pop
        codes = np.empty(n, dtype=object)
        for year in np.unique(treat_year):
            m = treat_year == year
            codes[m] = self._codes_in_year(int(year))[persons[m]]
        prak_kommune = codes.copy()
        other = rng.random(n) < model.OTHER_PRAKSISKOMMUNE_SHARE
        for year in np.unique(treat_year[other]):
            m = other & (treat_year == year)
            valid = self._valid_codes[int(year)]
            prak_kommune[m] = valid[rng.integers(0, len(valid), m.sum())]
        bosted = np.where(rng.random(n) < model.UNKNOWN_RESIDENCE_SHARE, reference.UNKNOWN_MUNICIPALITY, codes)

        code_index = pop.code_index[persons].astype(np.int64)
        n_prac = np.maximum(1, np.round(self.real_pop_2017[code_index] * model.PRACTICES_PER_10K[service] / 1e4)).astype(np.int64)
        practice = (persons * 2654435761 + s_index) % n_prac
        praksis_id = np.char.add(np.char.add(str(s_index), np.char.zfill(code_index.astype(str), 3)),
                                 np.char.zfill(practice.astype(str), 6))
        types = model.PRAKSISTYPER[service]
        cum = np.cumsum([w for _, w in types])
        type_pick = np.minimum(np.searchsorted(cum, ((practice * 40503 + code_index * 7) % 1000) / 1000, side="right"), len(types) - 1)
        praksistype = np.array([c for c, _ in types], dtype=object)[type_pick]
        hpr = 1_000_000 + ((s_index * 1000 + code_index) * 7919 + practice * 31 + rng.integers(0, 3, n)) % 8_999_999

        # Time of contact, in Norwegian local time, written with its own offset.
        evening = rng.random(n) < (0.5 if service == "LEGEVAKT" else 0.1)
        hour = np.where(evening, rng.integers(16, 23, n), rng.integers(8, 16, n))
        minute = rng.integers(0, 12, n) * 5
        day_str = treat.astype("datetime64[D]").astype(str)
        offsets = {day: _oslo_offset(day) for day in np.unique(day_str)}
        tidspunkt = np.array([f"{ds}T{h:02d}:{m:02d}:00{offsets[ds]}" for ds, h, m in zip(day_str.tolist(), hour.tolist(), minute.tolist())], dtype=object)
        lag = np.minimum(rng.choice(3, size=n, p=[0.7, 0.2, 0.1]), delivery - treat)
        mottatt = (delivery - lag).astype("datetime64[D]").astype(str)

        takster, egen, refu = self._takster(rng, service, kind_names, kind, n)
        age = treat_year - pop.birth_year[persons]
        fritak = np.where(age < 16, "B", np.where(rng.random(n) < model.FRIKORT_SHARE, "F", ""))
        exempt = fritak != ""
        refusjon = refu + np.where(exempt, egen, 0.0)
        egenandel = np.where(exempt, 0.0, egen)
        diagnoser = self._diagnoser(rng, service, n)
        kjonn = pop.sex[persons].astype(str)
        def full(value):
            return np.full(n, value, dtype=object)

        return {
            "regning_id": _guids(rng, n),
            "regningsnummer": rng.integers(1, 10_000_000, n).astype(str),
            "praksis_id": praksis_id,
            "praksistype": praksistype,
            "tjeneste": full(service),
            "behandler_hpr": hpr.astype(str),
            "praksiskommune": prak_kommune,
            "pasient_id": pop.identifiers(persons),
            "pasient_id_type": pop.id_types(persons),
            "kjonn": kjonn,
            "fodselsaar": pop.birth_year[persons].astype(str),
            "bostedskommune": bosted,
            "tidspunkt": tidspunkt,
            "mottatt_dato": mottatt,
            "kreditering": full("0"),
            "kreditert_regning_id": full(""),
            "takster": takster,
            "diagnoser": diagnoser,
            "fritak_egenandel": fritak,
            "egenandel": _money(egenandel),
            "refusjon": _money(refusjon),
        }

    def _takster(self, rng, service, kind_names, kind, n):
        options = self.takst_options[service]
        codes = np.empty(n, dtype=object)
        egen = np.zeros(n)
        refu = np.zeros(n)
        for k, name in enumerate(kind_names):
            m = np.flatnonzero(kind == k)
            if len(m) == 0:
                continue
            takst, e, r, p = options[name]
            pick = rng.choice(len(takst), size=len(m), p=p)
            codes[m] = takst[pick]
            egen[m] = e[pick]
            refu[m] = r[pick]
        tillegg, _, tillegg_refusjon, _ = options.get(None, (np.array([]),) * 4)
        if len(tillegg):
            extra = np.flatnonzero((rng.random(n) < 0.2) & np.isin(kind, [i for i, k in enumerate(kind_names) if k]))
            pick = rng.integers(0, len(tillegg), len(extra))
            codes[extra] = codes[extra] + "|" + tillegg[pick]
            refu[extra] += tillegg_refusjon[pick]
        return codes, egen, refu

    def _diagnoser(self, rng, service, n):
        weights = 1 / np.arange(1, len(model.ICPC2) + 1)
        main = np.array(model.ICPC2, dtype=object)[rng.choice(len(model.ICPC2), n, p=weights / weights.sum())]
        diag = "ICPC2:" + main
        icd = rng.random(n) < 0.05
        diag[icd] = "ICD10:" + np.array(model.ICD10, dtype=object)[rng.integers(0, len(model.ICD10), icd.sum())]
        second = rng.random(n) < 0.2
        diag[second] = diag[second] + "|ICPC2:" + np.array(model.ICPC2, dtype=object)[rng.integers(0, len(model.ICPC2), second.sum())]
        if service not in ("FASTLEGE", "LEGEVAKT"):
            diag[rng.random(n) < 0.6] = ""
        return diag

    # --- credits, resends, doubles ------------------------------------------------------------
    def _schedule_events(self, rng, claims: pd.DataFrame, d: int) -> tuple[pd.DataFrame, set[str]]:
        """Plan credits and resends of today's claims for later days; add today's suspected doubles.

        Returns the claims and the regning_ids that later events refer to (never damaged by defects).
        """
        n = len(claims)
        credit = np.flatnonzero(rng.random(n) < model.CREDIT_SHARE)
        if len(credit):
            originals = claims.iloc[credit].reset_index(drop=True)
            notes = originals.copy()
            notes["regning_id"] = _guids(rng, len(credit))
            notes["kreditering"] = "1"
            notes["kreditert_regning_id"] = originals["regning_id"]
            notes["egenandel"] = _negate(notes["egenandel"])
            notes["refusjon"] = _negate(notes["refusjon"])
            due = d + rng.integers(1, 61, len(credit))
            corrected = rng.random(len(credit)) < model.CORRECTION_SHARE
            fixes = originals[corrected].copy()
            fixes["regning_id"] = _guids(rng, len(fixes))
            fixes["regningsnummer"] = rng.integers(1, 10_000_000, len(fixes)).astype(str)
            events = pd.concat([notes, fixes], ignore_index=True)
            self._defer(events, np.concatenate([due, due[corrected]]))
        resent = np.flatnonzero(rng.random(n) < model.RESEND_SHARE)
        if len(resent):
            self._defer(claims.iloc[resent].reset_index(drop=True), d + rng.integers(1, 11, len(resent)))
        double = np.flatnonzero(rng.random(n) < model.DOUBLE_SHARE)
        protected = set(claims["regning_id"].iloc[np.concatenate([credit, resent, double])])
        if len(double):
            twins = claims.iloc[double].copy()
            twins["regning_id"] = _guids(rng, len(double))
            protected |= set(twins["regning_id"])
            claims = pd.concat([claims, twins], ignore_index=True)
        return claims, protected

    def _defer(self, rows: pd.DataFrame, due: np.ndarray) -> None:
        """Hold ``rows`` until their delivery day (``due``, one per row); notes come before corrections."""
        for day in np.unique(due):
            self.pending[int(day)].append(rows[due == day])

    def write_day(self, day: dt.date) -> int:
        """Write the day's delivery (one in ten days two), with credits and resends that fall due today.

        When a delivery is damaged as a whole, none of its claims gets later events: a credit of a claim
        the registry never received would be a fault the ground truth does not list.
        """
        d = to_ordinal(day)
        rng = stream(self.seed, "kuhr-events", day.isoformat())
        ids = [f"kuhr_{day:%Y%m%d}_001"] + ([f"kuhr_{day:%Y%m%d}_002"] if rng.random() < 0.1 else [])
        damaged = [self.defects.plan(delivery_id) for delivery_id in ids]
        claims, protected = self.claims_received(day), set()
        if not any(damaged):
            claims, protected = self._schedule_events(rng, claims, d)
        rows = pd.concat([claims, *self.pending.pop(d, [])], ignore_index=True) if d in self.pending else claims
        written = 0
        for delivery_id, idx in zip(ids, np.array_split(np.arange(len(rows)), len(ids))):
            written += self._write_delivery(delivery_id, day, rows.iloc[idx].reset_index(drop=True), protected)
        return written

    def _write_delivery(self, delivery_id: str, day: dt.date, rows: pd.DataFrame, protected: set[str]) -> int:
        rows = self.defects.rows(delivery_id, day, rows, protected)
        data_path = self.dir / f"{delivery_id}.csv.gz"
        columns, rows = self.defects.columns(delivery_id, rows)
        write_gzip(data_path, csv_bytes(rows[columns]))
        created = dt.datetime.combine(day, dt.time(2, 10), tzinfo=OSLO).isoformat()
        manifest = manifest_for(data_path, KUHR_FORMAT, delivery_id, day.isoformat(), len(rows), created)
        self.defects.file(delivery_id, data_path, manifest, self.dir)
        self.rows_written += len(rows)
        return len(rows)

    def finish(self) -> None:
        self.defects.finish()


def _takst_options(table: pd.DataFrame) -> dict[str, dict[str | None, tuple]]:
    """Per service and contact type (None = tillegg only): codes as ``code:1``, amounts, pick weights."""
    options: dict[str, dict[str | None, tuple]] = {}
    for service, group in table.groupby("tjeneste"):
        by_kind: dict[str | None, tuple] = {}
        for name in [*group.loc[group.kontakt, "kontakttype"].unique(), None]:
            rows = group[~group.kontakt] if name is None else group[group.kontakt & (group.kontakttype == name)]
            if rows.empty:
                continue
            weights = np.linspace(2.0, 1.0, len(rows))
            by_kind[name] = (
                (rows.takst + ":1").to_numpy(dtype=object), rows.egenandel_typisk.to_numpy(dtype=float),
                rows.refusjon_typisk.to_numpy(dtype=float), weights / weights.sum(),
            )
        options[service] = by_kind
    return options


def _oslo_offset(day: str) -> str:
    local = dt.datetime.fromisoformat(day + "T12:00:00").replace(tzinfo=OSLO)
    return local.isoformat()[-6:]


def _guids(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.bytes(16 * n).hex()
    chunks = [raw[i * 32 : (i + 1) * 32] for i in range(n)]
    return np.array([f"{c[:8]}-{c[8:12]}-4{c[13:16]}-a{c[17:20]}-{c[20:]}" for c in chunks], dtype=object)


def _money(values: np.ndarray) -> np.ndarray:
    return np.char.mod("%.2f", np.asarray(values, dtype=float)).astype(object)


def _negate(values: pd.Series) -> pd.Series:
    text = values.astype(str)
    zero = text.str.fullmatch(r"-?0(\.0+)?")
    negated = text.where(~text.str.startswith("-"), text.str[1:]).where(text.str.startswith("-"), "-" + text)
    return negated.where(~zero, text)


def delivery_days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [from_ordinal(o) for o in range(to_ordinal(max(start, KUHR_START)), to_ordinal(end) + 1)]
