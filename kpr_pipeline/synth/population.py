"""One synthetic population, sampled from the real SSB 07459 population of 1 January 2017.

Persons are held as compact NumPy columns (about 40 bytes each: 0.2 GB at ``--scale 1.0``), sorted
by (birth year, sex, frailty class) so that a person of a given kind is drawn in O(1). Nobody
moves within Norway; the municipality code a person has in a year follows the real code history from 2017
(forward through mergers and splits, backward for the IPLOS years). Births after 2017 are added
from the size of each municipality's 0-year cohort; immigrants arrive so that the population on
1 January follows SSB's totals for the years SSB has. Deaths follow a Gompertz hazard.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kpr_pipeline.domain import reference
from kpr_pipeline.domain.identifiers import W1, W2
from kpr_pipeline.domain.population import parse_ssb_07459
from kpr_pipeline.synth.rng import stream

BASE_YEAR = 2017
LAST_YEAR = 2026
FRAILTY_CLASSES = 16
FRAILTY_SHAPE = 0.925  # gamma shape that gives 72 % with >= 1 GP consultation at 3.0 a year, with the age profile
EPOCH = dt.date(1970, 1, 1)
DNR_SHARE = 0.02


def to_ordinal(day: dt.date) -> int:
    return (day - EPOCH).days


def from_ordinal(value: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(value))


@dataclass
class Population:
    seed: int
    code_index: np.ndarray  # int16 index into ``codes_2017``
    birth: np.ndarray  # int32 days since 1970-01-01
    arrival: np.ndarray  # int32 days since 1970: living in Norway from (the birth, or the immigration day)
    sex: np.ndarray  # int8, 1 or 2
    frailty: np.ndarray  # uint8 class 0..15
    death: np.ndarray  # int32 days since 1970 (large = alive through LAST_YEAR)
    ident: np.ndarray  # int64: the 11-digit test identity
    dnr: np.ndarray  # bool: identity in D-number form
    u: np.ndarray  # float32 uniform per person, for stable choices (split successors, care)
    codes_2017: np.ndarray  # str codes valid in 2017
    frailty_values: np.ndarray  # mean relative use per frailty class
    cells: np.ndarray  # (birth_year, sex, frailty) of each cell
    cell_start: np.ndarray  # first person of each cell

    def __len__(self) -> int:
        return len(self.birth)

    @cached_property
    def birth_year(self) -> np.ndarray:
        return (self.birth.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970).astype(np.int16)

    def identifiers(self, persons: np.ndarray) -> np.ndarray:
        """The 11-digit strings of ``persons`` (only ever written into the landing zone)."""
        return np.char.zfill(self.ident[persons].astype(str), 11)

    def id_types(self, persons: np.ndarray) -> np.ndarray:
        return np.where(self.dnr[persons], "DNR", "FNR")

    def codes_in_year(self, year: int) -> np.ndarray:
        """The municipality code each person has in ``year`` (a code valid that year)."""
        table = _code_table(year)
        idx = self.code_index
        options, cumulative = table[0][idx], table[1][idx]
        pick = (self.u[:, None] >= cumulative).sum(axis=1)
        pick = np.minimum(pick, options.shape[1] - 1)
        return options[np.arange(len(idx)), pick]


_TABLES: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _code_table(year: int) -> tuple[np.ndarray, np.ndarray]:
    """Per 2017 code: up to three codes in ``year`` with cumulative weights (splits forward, mergers backward)."""
    if year in _TABLES:
        return _TABLES[year]
    from kpr_pipeline.domain.geography import successors

    codes = np.array(reference.municipality_codes_valid(BASE_YEAR), dtype=object)
    options = np.empty((len(codes), 3), dtype=object)
    cumulative = np.ones((len(codes), 3), dtype=np.float64)
    predecessors: dict[int, dict[str, list[str]]] = {}
    for row in reference.municipality_changes().itertuples(index=False):
        predecessors.setdefault(int(row.effective_year), {}).setdefault(row.new_code, []).append(row.old_code)
    for i, code in enumerate(codes):
        if year >= BASE_YEAR:
            found = sorted(successors(code, BASE_YEAR, year).items())
        else:  # before 2017: the predecessors whose merger made this code, with equal weight
            found = [(code, 1.0)]
            for eff in sorted(predecessors, reverse=True):
                if year < eff <= BASE_YEAR:
                    nxt = []
                    for c, w in found:
                        olds = predecessors[eff].get(c, [c])
                        nxt += [(o, w / len(olds)) for o in olds]
                    found = nxt
        found = found[:3]
        cum = np.cumsum([w for _, w in found])
        for k in range(3):
            options[i, k] = found[min(k, len(found) - 1)][0]
            cumulative[i, k] = cum[min(k, len(found) - 1)] if k < len(found) else 2.0
        cumulative[i, len(found) - 1] = 2.0  # the last option takes the rest
    _TABLES[year] = (options, cumulative)
    return _TABLES[year]


def _male_share_by_age() -> np.ndarray:
    sexed = parse_ssb_07459(reference.REFERENCE_DIR / "ssb_07459" / "norway_population_by_age_sex_2020.csv")
    by = sexed.groupby(["age", "sex"])["persons"].sum().unstack()
    return (by["1"] / (by["1"] + by["2"])).reindex(range(106)).to_numpy()


def _check_digits(nine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both mod-11 check digits (10 = none possible) of 9-digit numbers, digit by digit to save memory."""
    s1 = np.zeros(len(nine), dtype=np.int64)
    s2 = np.zeros(len(nine), dtype=np.int64)
    for k in range(9):
        digit = (nine // 10 ** (8 - k)) % 10
        s1 += W1[k] * digit
        s2 += W2[k] * digit
    k1 = (11 - s1 % 11) % 11
    k2 = (11 - (s2 + W2[9] * k1) % 11) % 11
    return k1, k2


def _assign_identities(rng: np.random.Generator, birth: np.ndarray, dnr: np.ndarray) -> np.ndarray:
    """Unique test identities (month + 80, day + 40 for D-numbers) with valid mod-11 check digits."""
    dates = birth.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    months = dates.astype("datetime64[M]").astype(int) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    dd = days + np.where(dnr, 40, 0)
    mm = months + 80
    yy = years % 100
    low = np.where(years >= 2000, 500, np.where(years >= 1900, 0, 500))
    high = np.where(years >= 2000, 999, np.where(years >= 1900, 499, 749))
    ident = np.zeros(len(birth), dtype=np.int64)
    todo = np.arange(len(birth))
    taken = np.empty(0, dtype=np.int64)  # sorted identities already given out
    while len(todo):
        ind = rng.integers(low[todo], high[todo] + 1)
        nine = ((dd[todo] * 100 + mm[todo]) * 100 + yy[todo]) * 1000 + ind
        k1, k2 = _check_digits(nine)
        full = (nine * 10 + k1) * 10 + k2
        ok = (k1 < 10) & (k2 < 10)
        # First occurrence of each number in this batch, and not given out before (sort-based: fast).
        order = np.argsort(full, kind="stable")
        ranked = full[order]
        first_here = np.ones(len(full), dtype=bool)
        first_here[order[1:]] = ranked[1:] != ranked[:-1]
        position = np.minimum(np.searchsorted(taken, full), max(len(taken) - 1, 0))
        already = taken[position] == full if len(taken) else np.zeros(len(full), dtype=bool)
        accepted = ok & first_here & ~already
        ident[todo[accepted]] = full[accepted]
        taken = np.sort(np.concatenate([taken, full[accepted]]))
        todo = todo[~accepted]
    return ident


#: SSB exports with the national population on 1 January of the years after BASE_YEAR.
SSB_LATER_YEARS = ("Personer2015-2018.csv", "Personer2019.csv", "Personer2020.csv", "Personer2021.csv",
                   "Personer2022.csv")
#: Ages at immigration: mostly young adults, some children.
IMMIGRANT_AGES = (0, 45)
GOMPERTZ_A, GOMPERTZ_B = -10.3, 0.094


def _gompertz_death(rng: np.random.Generator, from_day: np.ndarray, age_then: np.ndarray) -> np.ndarray:
    """Death day from ``from_day`` at ``age_then`` (years) with hazard exp(a + b * age)."""
    e = rng.exponential(size=len(from_day))
    remaining = np.log(e * GOMPERTZ_B / np.exp(GOMPERTZ_A) + np.exp(GOMPERTZ_B * age_then)) / GOMPERTZ_B - age_then
    return np.minimum(from_day + remaining * 365.25, 2**31 - 1).astype(np.int32)


def _immigrants(rng, scale, pop_2017, code_index, birth, sex, death, arrival):
    """Net immigration: Norway grew mostly by it, and the statistics divide by SSB's real population, so
    without it the synthetic rates per inhabitant fall behind year by year (by 3 % in 2023). For each year
    SSB has, persons arrive during the year before so that those present on 1 January are SSB's total x
    scale; their ages follow the 2017 population of IMMIGRANT_AGES, their municipalities a random resident's.
    Later years have no SSB figure to meet (the denominators are carried forward), so nobody arrives."""
    totals: dict[int, int] = {}
    for name in SSB_LATER_YEARS:
        table = parse_ssb_07459(reference.REFERENCE_DIR / "ssb_07459" / name)
        totals.update(table.groupby("year")["persons"].sum().astype(int).to_dict())
    low, high = IMMIGRANT_AGES
    ages = pop_2017[(pop_2017.age >= low) & (pop_2017.age <= high)].groupby("age")["persons"].sum()
    age_p = (ages / ages.sum()).to_numpy()
    male = _male_share_by_age()
    for year in sorted(y for y in totals if y > BASE_YEAR):
        jan1 = to_ordinal(dt.date(year, 1, 1))
        present = int(((arrival <= jan1) & (death > jan1)).sum())
        n = int(round(totals[year] * scale)) - present
        if n <= 0:
            continue
        first = to_ordinal(dt.date(year - 1, 1, 1))
        came = (first + rng.random(n) * (jan1 - first)).astype(np.int32)
        age = ages.index.to_numpy()[rng.choice(len(age_p), size=n, p=age_p)]
        born = (came - (age + rng.random(n)) * 365.25).astype(np.int32)
        code_index = np.concatenate([code_index, code_index[rng.integers(0, len(code_index), n)]])
        birth, arrival = np.concatenate([birth, born]), np.concatenate([arrival, came])
        sex = np.concatenate([sex, np.where(rng.random(n) < male[np.clip(age, 0, 105)], 1, 2).astype(np.int8)])
        death = np.concatenate([death, _gompertz_death(rng, came, age.astype(np.float64))])
    return code_index, birth, sex, death, arrival


def build_population(seed: int, scale: float) -> Population:
    rng = stream(seed, "population")
    pop = parse_ssb_07459(reference.REFERENCE_DIR / "ssb_07459" / "Personer2015-2018.csv")
    pop = pop[(pop.year == BASE_YEAR) & (pop.persons > 0)]
    codes = np.array(reference.municipality_codes_valid(BASE_YEAR), dtype=object)
    code_pos = {c: i for i, c in enumerate(codes)}
    pop = pop[pop.kommunenummer.isin(code_pos)]
    pop_2017 = pop
    counts = rng.binomial(pop.persons.to_numpy(), scale)
    code_index = np.repeat(pop.kommunenummer.map(code_pos).to_numpy(), counts).astype(np.int16)
    age = np.repeat(pop.age.to_numpy(), counts)
    birth_year = BASE_YEAR - 1 - age
    # Births 2017..LAST_YEAR, sized and placed like each municipality's 0-year cohort of 2017.
    zero = pop[pop.age == 0]
    for year in range(BASE_YEAR, LAST_YEAR + 1):
        n = rng.binomial(zero.persons.to_numpy(), scale)
        code_index = np.concatenate([code_index, np.repeat(zero.kommunenummer.map(code_pos).to_numpy(), n).astype(np.int16)])
        birth_year = np.concatenate([birth_year, np.full(n.sum(), year)])
    n = len(birth_year)
    start = np.array([to_ordinal(dt.date(int(y), 1, 1)) for y in range(1800, LAST_YEAR + 2)])
    year_len = np.diff(start)
    offset = birth_year - 1800
    birth = (start[offset] + (rng.random(n) * year_len[offset]).astype(np.int64)).astype(np.int32)
    male = _male_share_by_age()[np.clip(BASE_YEAR - 1 - birth_year, 0, 105)]
    sex = np.where(rng.random(n) < male, 1, 2).astype(np.int8)
    # Gompertz remaining life from 1 January 2017 (or birth).
    age_then = np.maximum(BASE_YEAR - birth_year, 0).astype(np.float64)
    death = _gompertz_death(rng, np.maximum(start[BASE_YEAR - 1800], birth), age_then)
    arrival = birth.copy()
    code_index, birth, sex, death, arrival = _immigrants(rng, scale, pop_2017, code_index, birth, sex, death, arrival)
    birth_year = (birth.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970).astype(np.int64)
    n = len(birth)
    # Frailty: a gamma-distributed propensity to use health services, in 16 quantile classes.
    gamma = rng.gamma(FRAILTY_SHAPE, 1 / FRAILTY_SHAPE, size=200_000)
    edges = np.quantile(gamma, np.linspace(0, 1, FRAILTY_CLASSES + 1))
    frailty_values = np.array([gamma[(gamma >= lo) & (gamma <= hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])])
    frailty = rng.integers(0, FRAILTY_CLASSES, size=n).astype(np.uint8)
    dnr = rng.random(n) < DNR_SHARE
    ident = _assign_identities(rng, birth, dnr)
    u = rng.random(n).astype(np.float32)

    order = np.lexsort((frailty, sex, birth_year))
    cols = [code_index, birth, arrival, sex, frailty, death, ident, dnr, u]
    code_index, birth, arrival, sex, frailty, death, ident, dnr, u = (c[order] for c in cols)
    key = (birth_year[order].astype(np.int64) * 4 + sex) * FRAILTY_CLASSES + frailty
    change = np.flatnonzero(np.diff(key)) + 1
    cell_start = np.concatenate([[0], change])
    k = key[cell_start]
    cells = np.column_stack([k // (4 * FRAILTY_CLASSES), (k // FRAILTY_CLASSES) % 4, k % FRAILTY_CLASSES])
    return Population(
        seed=seed, code_index=code_index, birth=birth, arrival=arrival, sex=sex, frailty=frailty, death=death, ident=ident,
        dnr=dnr, u=u, codes_2017=codes, frailty_values=frailty_values, cells=cells, cell_start=cell_start,
    )
