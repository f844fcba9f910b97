"""Synthetic IPLOS extracts 2007-2017 (pseudonymous), from the same care model as the KPR reports.

The 2017 extract is the KPR 2017 picture with planted differences (persons only in one register,
shifted start dates, changed hours), each written to the ground truth so the reconciliation can be
proven exact.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from kpr_pipeline.domain.landing import IPLOS_FORMAT
from kpr_pipeline.domain.pseudonyms import pseudonymise
from kpr_pipeline.synth import model
from kpr_pipeline.domain import reference
from kpr_pipeline.synth.care_model import care_users, decisions, function_scores, hash_uniform, visiting_users
from kpr_pipeline.synth.output import GroundTruth, csv_bytes, manifest_for, open_gzip
from kpr_pipeline.synth.population import Population, to_ordinal
from kpr_pipeline.synth.rng import stream

IPLOS_YEARS = range(2007, 2018)
SYNTHETIC_IPLOS_KEY = "iplos-synthetic-test-key-0001"
FUNCTION_COLUMNS = ["f_" + v.lower() for v in model.FUNCTION_VARIABLES]
COLUMNS = ["pseudonym", "rapporteringsaar", "kommunenummer", "kjonn", "fodselsaar", "tjenestekode", "fra_dato",
           "til_dato", "timer_per_uke", *FUNCTION_COLUMNS]

IPLOS_ROW_DEFECTS = {
    "malformed_pseudonym": ("malformed_pseudonym", lambda r: r.update(pseudonym=r["pseudonym"][:40].upper())),
    "wrong_reporting_year": ("wrong_reporting_year", lambda r: r.update(rapporteringsaar=str(int(r["rapporteringsaar"]) - 1))),
    "invalid_kommunenummer": ("invalid_kommunenummer", lambda r: r.update(kommunenummer="0000")),
    "invalid_kjonn": ("invalid_kjonn", lambda r: r.update(kjonn="3")),
    "unknown_tjenestekode": ("unknown_tjenestekode", lambda r: r.update(tjenestekode="99", timer_per_uke="")),
    "fra_after_til": ("fra_after_til", lambda r: r.update(fra_dato=f"{r['rapporteringsaar']}-12-31",
                                                          til_dato=f"{r['rapporteringsaar']}-06-30")),
    "timer_out_of_range": ("timer_out_of_range", lambda r: r.update(tjenestekode="15", timer_per_uke="0")),
    "invalid_function_score": ("invalid_function_score", lambda r: r.update(f_syn="7")),
}
IPLOS_FILE_DEFECTS = {2009: "checksum_mismatch", 2011: "row_count_mismatch"}


class IplosGenerator:
    def __init__(self, pop: Population, seed: int, out: Path, truth: GroundTruth, defect_rate: float):
        self.pop, self.seed, self.truth, self.rate = pop, seed, truth, defect_rate
        self.dir = out / "iplos"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.kinds_left = list(IPLOS_ROW_DEFECTS)

    CHUNK_PERSONS = 20_000

    def persons(self, year: int) -> np.ndarray:
        """The persons of the year's extract (for 2017 with the planted persons in and out)."""
        codes = self.pop.codes_in_year(year)
        persons = care_users(self.pop, year, codes)
        if year == 2017:
            persons, extra, dropped = self._plant_persons(persons, codes)
            pseudonyms = [pseudonymise(self.pop.identifiers(p), SYNTHETIC_IPLOS_KEY) if len(p) else []
                          for p in (dropped, extra)]
            for kind, values in zip(("only_kpr", "only_iplos"), pseudonyms):
                for value in sorted(values):
                    self.truth.add(dataset="reconciliation_2017", kind=kind, iplos_pseudonym=value)
            self._extra = set(pseudonyms[1])
            self._dropped = set(dropped.tolist())
        return persons

    def visitor_rows(self, year: int, codes: np.ndarray) -> pd.DataFrame:
        """2017 only: the first decision of users also served by a second municipality, under that
        municipality, exactly as the KPR reports carry them (so only planted differences remain)."""
        users = care_users(self.pop, year, codes)
        valid = reference.municipality_codes_valid(year, reporters_only=True)
        frames = []
        for code, people in sorted(visiting_users(users, codes, valid).items()):
            people = np.array([p for p in people if p not in self._dropped], dtype=np.int64)
            if len(people):
                moved = codes.copy()
                moved[people] = code
                rows = self.rows(year, people, moved)
                frames.append(rows.drop_duplicates("pseudonym", keep="first"))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)

    def rows(self, year: int, persons: np.ndarray, codes: np.ndarray) -> pd.DataFrame:
        """The extract rows of ``persons``: one per service decision active in the year."""
        pop = self.pop
        ds = decisions(pop, persons, year) if len(persons) else []
        records = []
        ids = pop.identifiers(persons) if len(persons) else []
        pseud = pseudonymise(ids, SYNTHETIC_IPLOS_KEY)
        all_scores = function_scores(persons, year - pop.birth_year[persons].astype(np.int64)).astype(str)
        for i, p in enumerate(persons):
            scores = all_scores[i]
            for d in ds[i]:
                kode = d.kode
                if year <= 2016 and kode == 4 and hash_uniform(np.array([p]), 9)[0] < 0.3:
                    kode = 16  # rehabilitation outside institutions, an IPLOS-era code
                records.append([pseud[i], str(year), codes[p], str(pop.sex[p]), str(pop.birth_year[p]), str(kode),
                                d.fra.isoformat(), d.til.isoformat() if d.til else "",
                                f"{d.timer:g}" if d.timer is not None and kode != 16 else "",
                                *scores])
        return pd.DataFrame(records, columns=COLUMNS)

    def _plant_persons(self, persons, codes):
        h = hash_uniform(persons, 11)
        dropped = persons[h < model.IPLOS_ONLY_KPR_SHARE]
        # Persons IPLOS counted but KPR did not: just above the care threshold, alive in 2017.
        candidates = np.setdiff1d(np.flatnonzero((codes != None) & (self.pop.death > to_ordinal(dt.date(2017, 1, 1))) & (self.pop.arrival < to_ordinal(dt.date(2018, 1, 1)))), persons)  # noqa: E711
        n_extra = max(1, int(round(len(persons) * model.IPLOS_EXTRA_PERSON_SHARE)))
        rng = stream(self.seed, "iplos-extra")
        extra = np.sort(rng.choice(candidates, size=min(n_extra, len(candidates)), replace=False))
        kept = np.setdiff1d(persons, dropped)
        return np.union1d(kept, extra), extra, dropped

    def _plant_changes(self, frame: pd.DataFrame, chunk: int) -> pd.DataFrame:
        rng = stream(self.seed, "iplos-2017-changes", chunk)
        in_both = ~frame.pseudonym.isin(self._extra)
        shift = in_both & (rng.random(len(frame)) < model.IPLOS_START_SHIFT_SHARE)
        for i in np.flatnonzero(shift):
            days = int(rng.integers(1, 31))
            fra = dt.date.fromisoformat(frame.at[i, "fra_dato"]) - dt.timedelta(days=days)
            frame.at[i, "fra_dato"] = fra.isoformat()
            self.truth.add(dataset="reconciliation_2017", kind="start_shift", iplos_pseudonym=frame.at[i, "pseudonym"],
                           kommunenummer=frame.at[i, "kommunenummer"], tjenestekode=int(frame.at[i, "tjenestekode"]),
                           kpr_minus_iplos_days=days)
        hours = in_both & ~shift & (frame.timer_per_uke != "") & (rng.random(len(frame)) < model.IPLOS_HOURS_CHANGE_SHARE)
        for i in np.flatnonzero(hours):
            delta = float(rng.choice([-3.0, -1.5, -0.5, 0.5, 1.5, 3.0]))
            old = float(frame.at[i, "timer_per_uke"])
            new = max(0.5, old - delta)
            frame.at[i, "timer_per_uke"] = f"{new:g}"
            self.truth.add(dataset="reconciliation_2017", kind="hours_change", iplos_pseudonym=frame.at[i, "pseudonym"],
                           kommunenummer=frame.at[i, "kommunenummer"], tjenestekode=int(frame.at[i, "tjenestekode"]),
                           kpr_minus_iplos_hours=round(old - new, 2))
        return frame

    def write_year(self, year: int) -> int:
        """Write the year's extract in chunks of persons, so memory does not grow with the scale."""
        extract_id = f"iplos_{year}"
        path = self.dir / f"{extract_id}.csv.gz"
        codes = self.pop.codes_in_year(year)
        persons = self.persons(year)
        n_chunks = max(1, -(-len(persons) // self.CHUNK_PERSONS))
        written = 0
        with open_gzip(path) as gz:
            gz.write(csv_bytes(pd.DataFrame(columns=COLUMNS)))
            parts = list(np.array_split(persons, n_chunks)) + (["visitors"] if year == 2017 else [])
            for chunk, part in enumerate(parts):
                frame = self.visitor_rows(year, codes) if isinstance(part, str) else self.rows(year, part, codes)
                if year == 2017:
                    frame = self._plant_changes(frame, chunk)
                frame = self._damage(year, chunk, frame, written)
                gz.write(csv_bytes(frame, header=False))
                written += len(frame)
        extract_date = dt.date(year + 1, 3, 1)
        manifest = manifest_for(path, IPLOS_FORMAT, extract_id, extract_date.isoformat(), written,
                                f"{extract_date.isoformat()}T08:00:00+01:00")
        text = manifest.to_json()
        kind = IPLOS_FILE_DEFECTS.get(year) if self.rate > 0 else None
        if kind == "checksum_mismatch":
            text = text.replace(manifest.sha256, "f" * 64)
        elif kind == "row_count_mismatch":
            text = text.replace(f'"row_count": {written}', f'"row_count": {written + 5}')
        if kind:
            self.truth.add(dataset="iplos", level="file", file=f"iplos/{path.name}", reporting_year=year, defect=kind,
                           expected="quarantine", reason=kind)
        (self.dir / f"{extract_id}.manifest.json").write_text(text, encoding="utf-8")
        return written

    def _damage(self, year: int, chunk: int, frame: pd.DataFrame, offset: int) -> pd.DataFrame:
        """Row faults at the rate (every kind at least once); never in 2017, the reconciliation year."""
        if self.rate <= 0 or year == 2017 or frame.empty:
            return frame
        rng = stream(self.seed, "iplos-row-defects", year, chunk)
        names = list(IPLOS_ROW_DEFECTS)
        hit = np.flatnonzero(rng.random(len(frame)) < self.rate)
        extra = rng.choice(len(frame), size=min(len(frame), len(self.kinds_left)), replace=False)
        for i in sorted(set(hit.tolist()) | set(extra.tolist())):
            name = self.kinds_left.pop(0) if self.kinds_left else names[int(rng.integers(0, len(names)))]
            reason, fix = IPLOS_ROW_DEFECTS[name]
            row = frame.iloc[i].to_dict()
            fix(row)
            frame.iloc[i] = pd.Series(row)[COLUMNS].to_numpy()
            self.truth.add(dataset="iplos", level="row", file=f"iplos/iplos_{year}.csv.gz", reporting_year=year,
                           row_number=offset + int(i) + 1, defect=name, expected="reject", reason=reason)
        return frame
