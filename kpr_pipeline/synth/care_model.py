"""Who receives municipal care, which decisions they have, in a reporting year.

Shared by the KPR-helse og omsorg reports (2017 on) and the IPLOS extracts (2007-2017), so the two
registers describe the same synthetic people and the 2017 vintages agree but for planted differences.
Choices are stable hashes of the person, so a person's care persists across years.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from kpr_pipeline.synth import model
from kpr_pipeline.synth.population import Population, to_ordinal


def hash_uniform(persons: np.ndarray, salt: int) -> np.ndarray:
    """A stable uniform [0, 1) per (person, salt): splitmix64 of the two."""
    x = (persons.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF))
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


HOUR_BASED = {1, 2, 3, 7, 9, 11, 15}


@dataclass
class Decision:
    person: int
    kode: int
    fra: dt.date
    til: dt.date | None
    timer: float | None


def care_users(pop: Population, year: int, codes: np.ndarray) -> np.ndarray:
    """Persons who receive care in ``year``: eligible by age and alive at some time in the year."""
    jan1, dec31 = to_ordinal(dt.date(year, 1, 1)), to_ordinal(dt.date(year, 12, 31))
    alive = (pop.arrival <= dec31) & (pop.death >= jan1)
    age = year - pop.birth_year.astype(np.int64)
    group = np.clip(np.searchsorted(model.AGE_BOUNDS, np.maximum(age, 0), side="right") - 1, 0, 9)
    share = np.asarray(model.CARE_SHARE)[group]
    eligible = hash_uniform(np.arange(len(pop)), 1) < share
    return np.flatnonzero(alive & eligible & (codes != None))  # noqa: E711


def decisions(pop: Population, persons: np.ndarray, year: int) -> list[list[Decision]]:
    """The service decisions active in ``year`` for each person (at least one each)."""
    jan1, dec31 = dt.date(year, 1, 1), dt.date(year, 12, 31)
    age = year - pop.birth_year[persons].astype(np.int64)
    arrival = pop.arrival[persons]
    death = pop.death[persons]
    out: list[list[Decision]] = [[] for _ in persons]
    for s_index, (kode, share, hours, condition) in enumerate(model.CARE_SERVICES):
        h = hash_uniform(persons, 100 + s_index)
        take = h < share
        if condition == "young":
            take &= age < 67
        elif condition == "old":
            take &= age >= 80
        if kode == 29 and year < 2019:
            kode = 12 if s_index % 2 == 0 else 13
        h2 = hash_uniform(persons, 200 + s_index)
        for i in np.flatnonzero(take):
            earliest = max(to_ordinal(dt.date(1980, 1, 1)), int(arrival[i]) + 30)
            if kode == 20:  # short stays: one a year
                fra_o = to_ordinal(jan1) + int(h2[i] * 330)
                til_o = fra_o + 7 + int(h2[i] * 1000) % 36
            else:
                start_span = 6 * 365
                fra_o = to_ordinal(jan1) - int(h2[i] * start_span) + int(h2[i] * 1e6) % 200
                til_o = None
            fra_o = max(fra_o, earliest)
            if til_o is not None or death[i] <= to_ordinal(dec31):
                til_o = min(til_o if til_o is not None else 10**9, int(death[i]))
            if fra_o > to_ordinal(dec31) or (til_o is not None and til_o < to_ordinal(jan1)) or (til_o is not None and til_o < fra_o):
                continue
            timer = round((hours[0] + h2[i] * (hours[1] - hours[0])) * 2) / 2 if hours else None
            out[i].append(Decision(int(persons[i]), kode, _date(fra_o), _date(til_o) if til_o is not None else None, timer))
    for i, ds in enumerate(out):  # everyone eligible has at least a safety alarm
        if not ds:
            fra_o = max(to_ordinal(jan1) - 400, int(arrival[i]) + 30, to_ordinal(dt.date(1980, 1, 1)))
            til_o = int(death[i]) if death[i] <= to_ordinal(dec31) else None
            if til_o is not None and til_o < fra_o:
                continue
            ds.append(Decision(int(persons[i]), 6, _date(fra_o), _date(til_o) if til_o else None, None))
    return out


def function_scores(persons: np.ndarray, ages: np.ndarray) -> np.ndarray:
    """Scores 1-5 (9 = not relevant) of the 17 function variables, rising with age; one row per person."""
    n_var = len(model.FUNCTION_VARIABLES)
    h = hash_uniform((np.asarray(persons, dtype=np.int64)[:, None] * 31 + np.arange(n_var)[None, :]).ravel(), 7)
    h = h.reshape(-1, n_var)
    base = 1 + np.clip((np.asarray(ages, dtype=float)[:, None] - 50) / 15, 0.0, 3.0)
    scores = np.clip(np.round(base + (h - 0.5) * 2.5), 1, 5).astype(int)
    return np.where(h > 0.97, 9, scores)


def _date(ordinal: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(ordinal))


def visiting_users(users: np.ndarray, codes: np.ndarray, valid: list[str]) -> dict[str, list[int]]:
    """A few users are also served by a second municipality in the same county in a year (its first decision):
    visiting municipality -> users. The KPR reports and the IPLOS 2017 extract use the same choice."""
    visitors: dict[str, list[int]] = {}
    for p in users[hash_uniform(users, 3) < model.SECOND_MUNICIPALITY_SHARE]:
        home = codes[p]
        same_county = [c for c in valid if c[:2] == home[:2] and c != home]
        if same_county:
            visitors.setdefault(same_county[int(hash_uniform(np.array([p]), 4)[0] * len(same_county))], []).append(int(p))
    return visitors
