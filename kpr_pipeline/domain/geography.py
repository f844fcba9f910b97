"""Municipality code history: follow changes forward to the current division.

A code valid in ``year`` is mapped to the codes of ``CURRENT_DIVISION_YEAR`` by applying every
change with ``effective_year`` after ``year``, in order, splitting by weight where a municipality
was split (1507 Ålesund → 1508/1580 in 2024, for example). ``CodeHistory`` works on any pair of
tables, so the same logic checks the warehouse copy that it uses on the project's files.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import pandas as pd

from kpr_pipeline.domain import reference
from kpr_pipeline.domain.reference import CURRENT_DIVISION_YEAR
from kpr_pipeline.settings import SPLIT_POLICIES


class CodeHistory:
    def __init__(self, municipalities: pd.DataFrame, changes: pd.DataFrame):
        self.municipalities = municipalities
        by_year: dict[int, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
        for row in changes.itertuples(index=False):
            by_year[int(row.effective_year)][str(row.old_code)].append((str(row.new_code), float(row.weight)))
        self.changes = {y: dict(v) for y, v in by_year.items()}
        valid_to = pd.to_numeric(municipalities["valid_to"], errors="coerce").fillna(CURRENT_DIVISION_YEAR)
        spans = pd.DataFrame({"code": municipalities["code"].astype(str),
                              "first": pd.to_numeric(municipalities["valid_from"]), "last": valid_to})
        #: code -> (first, last) year of validity (over all its periods)
        self.validity = {r.code: (int(r.first), int(r.last)) for r in spans.groupby("code").agg(
            first=("first", "min"), last=("last", "max")).reset_index().itertuples(index=False)}

    def valid_codes(self, year: int) -> list[str]:
        m = self.municipalities
        valid_to = pd.to_numeric(m["valid_to"], errors="coerce")
        mask = (pd.to_numeric(m["valid_from"]) <= year) & (valid_to.isna() | (valid_to >= year))
        return sorted(m.loc[mask, "code"].astype(str))

    def successors(self, code: str, year: int, to_year: int = CURRENT_DIVISION_YEAR) -> dict[str, float]:
        """The codes valid in ``to_year`` that ``code`` (as valid in ``year``) became, with weights summing to 1."""
        current = {code: 1.0}
        for effective in sorted(y for y in self.changes if year < y <= to_year):
            nxt: dict[str, float] = defaultdict(float)
            for c, w in current.items():
                for new_code, weight in self.changes[effective].get(c, [(c, 1.0)]):
                    nxt[new_code] += w * weight
            current = dict(nxt)
        return current

    def forward_map(self, year: int, to_year: int = CURRENT_DIVISION_YEAR) -> pd.DataFrame:
        """Every code valid in ``year`` mapped to ``to_year`` codes: columns code, current_code, weight."""
        rows = [
            (code, new, weight)
            for code in self.valid_codes(year)
            for new, weight in sorted(self.successors(code, year, to_year).items())
        ]
        return pd.DataFrame(rows, columns=["code", "current_code", "weight"])

    def broken_chains(self, from_year: int = 2016, to_year: int = CURRENT_DIVISION_YEAR) -> list[str]:
        """Codes valid in a year since ``from_year`` whose chain does not end in codes valid in ``to_year``."""
        valid_now = set(self.valid_codes(to_year))
        broken = set()
        for year in range(from_year, to_year + 1):
            for code in self.valid_codes(year):
                ends = self.successors(code, year, to_year)
                if not ends or not set(ends) <= valid_now or abs(sum(ends.values()) - 1.0) > 1e-9:
                    broken.add(code)
        return sorted(broken)


UNKNOWN = "9999"


def code_map(codes: list[str], year: int, policy: str = "weight", history: CodeHistory | None = None) -> pd.DataFrame:
    """Each code (as used in ``year``) mapped to current codes: columns code, current_code, weight, suppressed.

    A code not valid in ``year`` (an export made on a later or earlier division) is followed from the
    nearest year in which it was valid. 9999 stays 9999. Split municipalities follow the policy
    (spec/statistics.md): ``weight`` distributes by the change table's weights, ``rollup`` reports the
    pre-split data on the county's unknown-municipality code ``xx99``, ``suppress`` distributes them like
    ``weight`` but sets ``suppressed``: the successors' cells are left empty wherever a municipality is
    shown, while county and national totals stay whole.
    """
    if policy not in SPLIT_POLICIES:
        raise ValueError(f"split policy must be one of {', '.join(SPLIT_POLICIES)}, not {policy!r}")
    history = history or default_history()
    rows = []
    for code in sorted(set(codes)):
        if code == UNKNOWN:
            rows.append((code, code, 1.0, False))
            continue
        ends = history.successors(code, _nearest_valid_year(history, code, year))
        if len(ends) > 1 and policy == "rollup":
            rows.append((code, f"{next(iter(ends))[:2]}99", 1.0, False))
        elif len(ends) > 1 and policy == "suppress":
            rows += [(code, new, weight, True) for new, weight in sorted(ends.items())]
        else:
            rows += [(code, new, weight, False) for new, weight in sorted(ends.items())]
    return pd.DataFrame(rows, columns=["code", "current_code", "weight", "suppressed"])


def _nearest_valid_year(history: CodeHistory, code: str, year: int) -> int:
    span = history.validity.get(code)
    if span is None:
        return year
    first, last = span
    return min(max(year, first), last)


def apportion(frame: pd.DataFrame, value: str, group: list[str]) -> pd.Series:
    """``value`` * ``weight`` rounded to integers so that each group's total is preserved (largest remainder).
    An empty key (a group row's tjenestekode) is a key like any other."""
    exact = frame[value] * frame["weight"]
    floor = exact.floordiv(1)
    remainder = exact - floor
    missing = (frame.assign(_f=floor).groupby(group, dropna=False)["_f"].transform("sum")
               - frame.assign(_e=exact).groupby(group, dropna=False)["_e"].transform("sum")).round().abs()
    rank = remainder.groupby([frame[g] for g in group], dropna=False).rank(method="first", ascending=False)
    return (floor + (rank <= missing).astype(int)).astype("int64")


COUNTRY = "0000"
#: Codes counted in the national row only: unknown (9999), Svalbard (2100) and Jan Mayen (2200) are in no
#: county (and 2100 would collide with a county row ``2100``).
NATIONAL_ONLY = ("2100", "2200", UNKNOWN)


def county_code(code: str) -> str:
    """The county row of a statistic: ``xx00``."""
    return f"{code[:2]}00"


def statistics_geography(policy: str, years: range, history: CodeHistory | None = None
                         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The warehouse's geography tables for one split policy, so statistics map codes in SQL.

    Returns three frames:
    - ``units``: the rows a statistic has on the current division: municipalities, counties (``xx00``),
      the country (``0000``), the codes counted nationally only (``NATIONAL_ONLY``) and, under ``rollup``,
      each county's unknown-municipality code ``xx99``;
    - ``code_units``: per year, every code (as used in that year) to the unit it is counted in and that
      unit's county (none for 9999). A split municipality is its own unit (counted once in its county),
      later apportioned to its successors; under ``rollup`` it is ``xx99``;
    - ``split_weights``: per year, each split unit's successors and weights, with ``suppressed`` under
      the ``suppress`` policy.
    """
    history = history or default_history()
    current = [c for c in history.valid_codes(CURRENT_DIVISION_YEAR) if c not in NATIONAL_ONLY]
    counties = sorted({c[:2] for c in current})
    units = [(c, "municipality", c[:2]) for c in current] + [(county_code(c), "county", c) for c in counties]
    units += [(COUNTRY, "country", None)] + [(c, "national_only", None) for c in NATIONAL_ONLY]
    if policy == "rollup":
        units += [(f"{c}99", "rollup", c) for c in counties]
    all_codes = sorted(set(history.validity) | {UNKNOWN})
    code_units, split_weights = [], []
    for year in years:
        mapped = code_map(all_codes, year, policy, history)
        for code, part in mapped.groupby("code", sort=True):
            successors = part["current_code"].tolist()
            if successors[0] in NATIONAL_ONLY:
                code_units.append((year, code, successors[0], None))
            elif len(successors) == 1:
                code_units.append((year, code, successors[0], successors[0][:2]))
            else:
                if code in current:  # the statistics tell a split unit from a current row by its code
                    raise ValueError(f"municipality {code} of {year} was split but its code is still current; "
                                     "a split unit needs a code of its own")
                code_units.append((year, code, code, successors[0][:2]))
                split_weights += [(year, code, r.current_code, r.weight, bool(r.suppressed))
                                  for r in part.itertuples(index=False)]
    return (pd.DataFrame(units, columns=["code", "level", "county"]),
            pd.DataFrame(code_units, columns=["year", "code", "unit", "county"]),
            pd.DataFrame(split_weights, columns=["year", "unit", "current_code", "weight", "suppressed"]))


@lru_cache(maxsize=1)
def default_history() -> CodeHistory:
    """The code history of the project's reference files."""
    return CodeHistory(reference.municipalities(), reference.municipality_changes())


def successors(code: str, year: int, to_year: int = CURRENT_DIVISION_YEAR) -> dict[str, float]:
    return default_history().successors(code, year, to_year)
