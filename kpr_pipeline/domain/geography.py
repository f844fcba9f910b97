"""Municipality code history: follow changes forward to the current division.

A code valid in ``year`` is mapped to the codes of ``CURRENT_DIVISION_YEAR`` by applying every
change with ``effective_year`` after ``year``, in order, splitting by weight where a municipality
was split (1507 Ålesund → 1508/1580 in 2024, for example).
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import pandas as pd

from kpr_pipeline.domain.reference import (
    CURRENT_DIVISION_YEAR,
    municipality_changes,
    municipality_codes_valid,
)


@lru_cache(maxsize=None)
def _changes_by_year() -> dict[int, dict[str, list[tuple[str, float]]]]:
    by_year: dict[int, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in municipality_changes().itertuples(index=False):
        by_year[int(row.effective_year)][row.old_code].append((row.new_code, float(row.weight)))
    return {y: dict(v) for y, v in by_year.items()}


def successors(code: str, year: int, to_year: int = CURRENT_DIVISION_YEAR) -> dict[str, float]:
    """The codes valid in ``to_year`` that ``code`` (as valid in ``year``) became, with weights summing to 1."""
    current = {code: 1.0}
    for effective in sorted(y for y in _changes_by_year() if year < y <= to_year):
        changes = _changes_by_year()[effective]
        nxt: dict[str, float] = defaultdict(float)
        for c, w in current.items():
            for new_code, weight in changes.get(c, [(c, 1.0)]):
                nxt[new_code] += w * weight
        current = dict(nxt)
    return current


def forward_map(year: int, to_year: int = CURRENT_DIVISION_YEAR) -> pd.DataFrame:
    """Mapping of every code valid in ``year`` to ``to_year`` codes: columns code, current_code, weight."""
    rows = [
        (code, new, weight)
        for code in municipality_codes_valid(year)
        for new, weight in sorted(successors(code, year, to_year).items())
    ]
    return pd.DataFrame(rows, columns=["code", "current_code", "weight"])


def broken_chains(from_year: int = 2016, to_year: int = CURRENT_DIVISION_YEAR) -> list[str]:
    """Codes valid in some year since ``from_year`` whose chain does not end in codes valid in ``to_year``."""
    valid_now = set(municipality_codes_valid(to_year))
    broken = set()
    for year in range(from_year, to_year + 1):
        for code in municipality_codes_valid(year):
            ends = successors(code, year, to_year)
            if not ends or not set(ends) <= valid_now or abs(sum(ends.values()) - 1.0) > 1e-9:
                broken.add(code)
    return sorted(broken)
