"""Synthetic KPR-helse og omsorg reports: one XML file per municipality and submission.

Most municipalities report within the window (2-15 January), some late, some twice (the newest
replaces the earlier one), a few not at all. Files are written element by element, so memory does
not grow with the size of a municipality.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import numpy as np

from kpr_pipeline.domain import reference
from kpr_pipeline.domain.care.report import deadline
from kpr_pipeline.synth import model
from kpr_pipeline.synth.care_model import (Decision, care_users, decisions, function_scores, hash_uniform,
                                           visiting_users)
from kpr_pipeline.synth.output import GroundTruth
from kpr_pipeline.synth.population import Population
from kpr_pipeline.synth.rng import stream

OSLO = ZoneInfo("Europe/Oslo")
NS = "urn:no:kpr:helse-omsorg:1"

#: File faults: name -> reason code (all quarantine).
CARE_FILE_DEFECTS = {
    "not_well_formed": "xml_not_well_formed",
    "schema_invalid": "xml_schema_invalid",
    "xxe": "xml_doctype",
    "billion_laughs": "xml_doctype",
    "header_mismatch": "header_file_name_mismatch",
    "antall_mismatch": "antall_brukere_mismatch",
}
#: Record faults: name -> (level, outcome, reason code).
CARE_RECORD_DEFECTS = {
    "fra_after_til": ("service", "reject", "fra_after_til"),
    "fra_after_year_end": ("service", "reject", "fra_after_year_end"),
    "fra_too_early": ("service", "reject", "fra_too_early"),
    "til_before_year_start": ("service", "reject", "til_before_year_start"),
    "unknown_tjenestekode": ("service", "reject", "unknown_tjenestekode"),
    "timer_missing": ("service", "reject", "timer_missing"),
    "timer_not_expected": ("service", "reject", "timer_not_expected"),
    "timer_out_of_range": ("service", "reject", "timer_out_of_range"),
    "died_before_year": ("person", "reject", "died_before_year"),
    "bad_check_digits": ("person", "reject", "invalid_check_digits"),
    "id_type_mismatch": ("person", "reject", "pasient_id_type_mismatch"),
    "recoded_12": ("service", "warning", "tjenestekode_recoded"),
    "overlapping_stays": ("service", "warning", "overlapping_long_term_stays"),
}


class CareGenerator:
    def __init__(self, pop: Population, seed: int, out: Path, truth: GroundTruth, defect_rate: float):
        self.pop, self.seed, self.out, self.truth, self.rate = pop, seed, out, truth, defect_rate
        self.file_kinds_left = list(CARE_FILE_DEFECTS)
        self.record_kinds_left = list(CARE_RECORD_DEFECTS)
        self.files_written = 0

    def municipalities(self, year: int) -> list[str]:
        return reference.municipality_codes_valid(year, reporters_only=True)

    def write_year(self, year: int, progress=None) -> None:
        codes = self.pop.codes_in_year(year)
        users = care_users(self.pop, year, codes)
        by_code: dict[str, list[int]] = {}
        for p, c in zip(users, codes[users]):
            by_code.setdefault(c, []).append(int(p))
        valid = self.municipalities(year)
        visitors = visiting_users(users, codes, valid)
        for code in valid:
            self._write_municipality(year, code, sorted(by_code.get(code, [])), sorted(visitors.get(code, [])))
            if progress is not None:
                progress.update(1)
        if self.rate > 0:  # a report from a municipality that did not exist that year
            retired = [c for c in reference.municipality_codes_valid(year - 3, reporters_only=True) if c not in valid]
            if retired:
                when = dt.datetime(year + 1, 1, 10, 12, 0, 0, tzinfo=OSLO)
                self._write_file(year, retired[0], [], [], when, defect=None, invalid_code=True)

    def missing_reporters(self, year: int) -> list[str]:
        """Municipalities that send no report for ``year`` (as ``write_year`` decides)."""
        return [c for c in self.municipalities(year) if not self._submission_times(year, c)]

    def _submission_times(self, year: int, code: str) -> list[dt.datetime]:
        rng = stream(self.seed, "care-submission", year, code)
        roll = rng.random()
        if roll < model.MISSING_REPORTER_SHARE:
            return []
        if roll < model.MISSING_REPORTER_SHARE + model.LATE_REPORTER_SHARE:
            first = dt.datetime(year + 1, 1, 16, tzinfo=OSLO) + dt.timedelta(days=int(rng.integers(0, 45)))
        else:
            first = dt.datetime(year + 1, 1, 2, tzinfo=OSLO) + dt.timedelta(days=int(rng.integers(0, 14)))
        first = first.replace(hour=int(rng.integers(7, 17)), minute=int(rng.integers(0, 60)), second=int(rng.integers(0, 60)))
        times = [first]
        if rng.random() < model.RESUBMISSION_SHARE:
            times.append(first + dt.timedelta(days=int(rng.integers(1, 20)), hours=int(rng.integers(0, 5))))
        return times

    def _write_municipality(self, year: int, code: str, persons: list[int], visitors: list[int]) -> None:
        times = self._submission_times(year, code)
        if not times:
            self.truth.add(dataset="helse_omsorg", level="municipality", reporting_year=year, kommunenummer=code,
                           defect="missing_reporter", expected="missing", reason="missing")
        elif times[0] > deadline(year):
            self.truth.add(dataset="helse_omsorg", level="municipality", reporting_year=year, kommunenummer=code,
                           defect="late_reporter", expected="late", reason="late")
        for k, when in enumerate(times):
            final = k == len(times) - 1
            # An earlier submission lacks a few persons that the correction adds.
            subset = persons if final else [p for p in persons if hash_uniform(np.array([p]), 5)[0] > 0.05]
            defect = None
            if final and self.rate > 0:
                rng = stream(self.seed, "care-file-defect", year, code, k)
                if self.file_kinds_left and rng.random() < 0.1:
                    defect = self.file_kinds_left.pop(0)
                elif rng.random() < self.rate / 4:
                    defect = list(CARE_FILE_DEFECTS)[int(rng.integers(0, len(CARE_FILE_DEFECTS)))]
            self._write_file(year, code, subset, visitors, when, defect)

    def _write_file(self, year, code, persons, visitors, when: dt.datetime, defect: str | None, invalid_code=False):
        folder = self.out / "helse_omsorg" / str(year)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = when.strftime("%Y%m%dT%H%M%S")
        path = folder / f"kpr_ho_{year}_{code}_{stamp}.xml"
        rel = path.relative_to(self.out).as_posix()
        rng = stream(self.seed, "care-file", rel)
        latin1 = rng.random() < 0.1
        encoding = "ISO-8859-1" if latin1 else "UTF-8"
        fagsystem = model.FAGSYSTEMER[int(rng.integers(0, len(model.FAGSYSTEMER)))] + (" (Tromsø)" if latin1 else "")
        everyone = [(p, code) for p in persons] + [(p, code) for p in visitors]
        header_code = code
        if defect == "header_mismatch":
            header_code = "0301" if code != "0301" else "4601"
        antall = len(everyone) + (1 if defect == "antall_mismatch" else 0)
        parts = [f'<?xml version="1.0" encoding="{encoding}"?>\n']
        if defect == "xxe":
            parts.append('<!DOCTYPE kprHelseOmsorg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')
        elif defect == "billion_laughs":
            lol = '<!ENTITY lol "lol">' + "".join(
                f'<!ENTITY lol{i} "{"&lol{};".format("" if i == 1 else i - 1) * 10}">' for i in range(1, 10))
            parts.append(f"<!DOCTYPE kprHelseOmsorg [{lol}]>\n")
        parts.append(f'<kprHelseOmsorg xmlns="{NS}" versjon="1.0">\n')
        fag = "&xxe;" if defect == "xxe" else ("&lol9;" if defect == "billion_laughs" else escape(fagsystem))
        parts.append(
            f"  <hode><kommunenummer>{header_code}</kommunenummer><rapporteringsaar>{year}</rapporteringsaar>"
            f"<uttrekkstidspunkt>{when.isoformat()}</uttrekkstidspunkt><fagsystem>{fag}</fagsystem>"
            f"<antallBrukere>{antall}</antallBrukere></hode>\n"
        )
        persons_arr = np.array([p for p, _ in everyone], dtype=np.int64)
        all_decisions = decisions(self.pop, persons_arr, year) if len(persons_arr) else []
        ids = self.pop.identifiers(persons_arr) if len(persons_arr) else []
        types = self.pop.id_types(persons_arr) if len(persons_arr) else []
        bosted_codes = self.pop.codes_in_year(year)
        record_rng = stream(self.seed, "care-record-defects", rel)
        for index, (person, _) in enumerate(everyone, start=1):
            ds = all_decisions[index - 1]
            if person in visitors:
                ds = ds[:1]
            parts.append(self._bruker(year, code, rel, index, person, ids[index - 1], types[index - 1],
                                      bosted_codes[person], ds, record_rng, defect is None and not invalid_code))
        if defect == "schema_invalid" and len(parts) > 3:
            parts.insert(3, "  <ukjentElement>1</ukjentElement>\n")
        elif defect == "schema_invalid":
            parts[-1] = parts[-1].replace("</hode>", "</hode><ukjentElement/>")
        parts.append("</kprHelseOmsorg>\n")
        payload = "".join(parts).encode("iso-8859-1" if latin1 else "utf-8")
        if defect == "not_well_formed":
            payload = payload[: max(60, len(payload) // 2)]
        path.write_bytes(payload)
        self.files_written += 1
        if defect:
            self.truth.add(dataset="helse_omsorg", level="file", file=rel, reporting_year=year, kommunenummer=code,
                           defect=defect, expected="quarantine", reason=CARE_FILE_DEFECTS[defect])
        if invalid_code:
            self.truth.add(dataset="helse_omsorg", level="file", file=rel, reporting_year=year, kommunenummer=code,
                           defect="municipality_not_valid", expected="quarantine", reason="municipality_not_valid_in_year")

    def _bruker(self, year, code, rel, index, person, ident, id_type, bosted, ds: list[Decision], rng, may_damage) -> str:
        pop = self.pop
        birth_year = int(pop.birth_year[person])
        death_day = int(pop.death[person])
        death = dt.date(1970, 1, 1) + dt.timedelta(days=death_day) if death_day < 60_000 else None
        death = death if death and death.year == year else None
        if hash_uniform(np.array([person]), 6)[0] < 0.02:
            others = [c for c in self.municipalities(year) if c != code]
            bosted = others[int(hash_uniform(np.array([person]), 8)[0] * len(others))]
        services = [(d.kode, d.fra, d.til, d.timer) for d in ds]
        defect = None
        if may_damage and self.rate > 0 and services:
            roll = rng.random()
            if self.record_kinds_left and roll < 0.2:  # every kind at least once, then at the rate
                defect = self.record_kinds_left[0]
            elif roll < 0.2 + self.rate:
                defect = list(CARE_RECORD_DEFECTS)[int(rng.integers(0, len(CARE_RECORD_DEFECTS)))]
        service_index = 1
        level, outcome, reason = CARE_RECORD_DEFECTS.get(defect, (None, None, None))
        if defect:
            services, ident, id_type, death, ok = _damage(defect, services, ident, id_type, death, year)
            if not ok:
                if defect in self.record_kinds_left:  # not applicable here: try the next kind first
                    self.record_kinds_left.append(self.record_kinds_left.pop(self.record_kinds_left.index(defect)))
                defect = None
            else:
                if defect in self.record_kinds_left:
                    self.record_kinds_left.remove(defect)
                service_index = 1 if level == "service" else None
                if defect == "overlapping_stays":
                    service_index = len(services)
        lines = [f'  <bruker><personId type="{id_type}">{ident}</personId><kjonn>{pop.sex[person]}</kjonn>'
                 f"<fodselsaar>{birth_year}</fodselsaar><bostedskommune>{bosted}</bostedskommune>"]
        if death:
            lines.append(f"<dodsdato>{death.isoformat()}</dodsdato>")
        age = year - birth_year
        newest = max(s[1] for s in services)
        assessed = min(dt.date(year, 12, 31), newest + dt.timedelta(days=30))
        scores = function_scores(np.array([person]), np.array([age]))[0]
        lines.append(f'<funksjonsvurdering dato="{assessed.isoformat()}">' + "".join(
            f'<variabel navn="{n}" skaar="{s}"/>' for n, s in zip(model.FUNCTION_VARIABLES, scores)) + "</funksjonsvurdering>")
        for kode, fra, til, timer in services:
            lines.append(f"<tjeneste><tjenestekode>{kode}</tjenestekode><fraDato>{fra.isoformat()}</fraDato>"
                         + (f"<tilDato>{til.isoformat()}</tilDato>" if til else "")
                         + (f"<timerPerUke>{timer:g}</timerPerUke>" if timer is not None else "") + "</tjeneste>")
        if age >= 67:
            lines.append('<diagnose kodeverk="ICD10" kode="F03"/>')
        lines.append("</bruker>\n")
        if defect:
            self.truth.add(dataset="helse_omsorg", level=level, file=rel, reporting_year=year, kommunenummer=code,
                           person_index=index, service_index=service_index, defect=defect, expected=outcome,
                           reason=reason)
        return "".join(lines)


def _damage(defect, services, ident, id_type, death, year):
    """Break the first service (or the person) as ``defect`` says; False when it does not apply."""
    kode, fra, til, timer = services[0]
    jan1, dec31 = dt.date(year, 1, 1), dt.date(year, 12, 31)
    first = None
    if defect == "fra_after_til":
        first = (kode, dec31, dec31 - dt.timedelta(days=10), timer)
    elif defect == "fra_after_year_end":
        first = (kode, dec31 + dt.timedelta(days=5), None, timer)
    elif defect == "fra_too_early":
        first = (kode, dt.date(1975, 1, 1), til, timer)
    elif defect == "til_before_year_start":
        first = (kode, min(fra, jan1 - dt.timedelta(days=60)), jan1 - dt.timedelta(days=3), timer)
    elif defect == "unknown_tjenestekode":
        first = (99, fra, til, None)
    elif defect == "timer_missing":
        first = (15, fra, til, None)
    elif defect == "timer_not_expected":
        first = (6, fra, til, 3.0)
    elif defect == "timer_out_of_range":
        first = (15, fra, til, 200.0)
    elif defect == "recoded_12":
        if year < 2019:
            return services, ident, id_type, death, False
        first = (12, fra, til, None)
    elif defect == "overlapping_stays":
        stay = (21, max(fra, jan1), None, None)
        overlap = (21, max(fra, jan1) + dt.timedelta(days=20), None, None)
        return services + [stay, overlap], ident, id_type, None, True
    elif defect == "died_before_year":
        return services, ident, id_type, jan1 - dt.timedelta(days=30), True
    elif defect == "bad_check_digits":
        return services, ident[:10] + str((int(ident[10]) + 1) % 10), id_type, death, True
    elif defect == "id_type_mismatch":
        return services, ident, "HNR", death, True
    return [first] + services[1:], ident, id_type, death, True
