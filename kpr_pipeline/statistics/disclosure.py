"""Disclosure control before publication (spec/statistics.md): primary and complementary suppression.

Primary: a cell with any count from 1 to threshold - 1 is suppressed, and with it every measure of the
cell (rates, shares, means and sums describe the same few persons). Complementary: every published
hierarchy is a set of equations ``total = sum of parts`` (municipality -> county -> country, age groups
-> T, sexes -> T, services -> group, delays -> the month's total); while an equation has exactly one
unknown cell, the smallest other cell in it (non-zero first) is suppressed too, so nothing can be
recovered by subtraction. Person counts are not strictly additive (a person can be in two municipalities
or two services), so treating them as additive is the cautious reading. Cells left empty for another
reason (a split under the ``suppress`` policy) are unknowns to an attacker as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from kpr_pipeline.domain.geography import COUNTRY, NATIONAL_ONLY

TOTAL = "T"


def geography_parent(codes: pd.Series) -> pd.Series:
    """Municipality and ``xx99`` -> county ``xx00``; county and national-only codes -> ``0000``; top: none."""
    codes = codes.astype(str)
    county = codes.str.endswith("00") & (codes != COUNTRY)
    parent = (codes.str[:2] + "00").where(~county & ~codes.isin(NATIONAL_ONLY), COUNTRY)
    return parent.where(codes != COUNTRY, None)


def national_parent(codes: pd.Series) -> pd.Series:
    """Codes as reported (not mapped forward): every municipality -> ``0000``."""
    codes = codes.astype(str)
    return pd.Series(np.where(codes == COUNTRY, None, COUNTRY), index=codes.index, dtype=object)


def total_parent(total: str) -> Callable[[pd.Series], pd.Series]:
    """Every value -> the total row ``total`` (``T``, or ``""`` for a group row); the total row: none."""
    def parent(values: pd.Series) -> pd.Series:
        values = values.astype(str)
        return pd.Series(np.where(values == total, None, total), index=values.index, dtype=object)
    return parent


@dataclass(frozen=True)
class Hierarchy:
    column: str
    parent: Callable[[pd.Series], pd.Series] | None  # None: the parts of a total that is not published


@dataclass(frozen=True)
class TableRules:
    """How one published table is protected: its cells, counts, measures and hierarchies."""

    table: str
    keys: tuple[str, ...]  # identify a cell
    independent: tuple[str, ...]  # equations never cross these (the period, the source)
    counts: tuple[str, ...]  # checked against the threshold
    measures: tuple[str, ...]  # every published measure suppressed with the cell (counts included)
    size: str  # the count that ranks complementary candidates
    hierarchies: tuple[Hierarchy, ...]
    hidden: tuple[str, ...] = ()  # working columns never published
    empty_flag: str | None = "split_suppressed"  # cells left empty for another reason
    #: measure -> the parts (values of a hierarchy column) that must all be published for it to be
    extra_requires: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


@dataclass
class Suppression:
    primary: np.ndarray
    suppressed: np.ndarray  # primary | complementary

    @property
    def complementary(self) -> np.ndarray:
        return self.suppressed & ~self.primary


def combined_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One int64 per row identifying its values of ``columns`` (factorised once each: fast on large tables)."""
    key = np.zeros(len(frame), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(frame[column].astype(str), sort=False)
        key = key * (len(uniques) + 1) + codes
    return key


def _memberships(frame: pd.DataFrame, rules: TableRules, h: Hierarchy) -> tuple[np.ndarray, np.ndarray]:
    """(row, equation) pairs: each row is a part of its parent's equation and the total of its own."""
    others = [k for k in rules.keys if k != h.column]
    rest = combined_codes(frame, others)
    if h.parent is None:  # the parts of an unpublished (but derivable) total
        return np.arange(len(frame)), pd.factorize(rest)[0]
    codes, uniques = pd.factorize(frame[h.column].astype(str))
    parents = h.parent(pd.Series(uniques, dtype=object))  # once per distinct value
    values = pd.Index(uniques).append(pd.Index(parents.dropna().unique())).unique()
    parent_of_unique = np.where(parents.notna(), values.get_indexer(parents.fillna("")), -1)
    part_of = parent_of_unique[codes]
    has_parent = part_of >= 0
    width = len(values) + 1
    keys = np.concatenate([rest * width + codes, rest[has_parent] * width + part_of[has_parent]])
    ids = pd.factorize(keys)[0]
    total_ids, part_ids = ids[:len(codes)], ids[len(codes):]
    published = np.isin(part_ids, total_ids)  # parts of a total the table does not publish constrain nothing
    rows = np.concatenate([np.flatnonzero(has_parent)[published], np.arange(len(frame))])
    return rows, np.concatenate([part_ids[published], total_ids])


def suppress(frame: pd.DataFrame, rules: TableRules, threshold: int) -> Suppression:
    """Primary and complementary suppression of one independent part of a table (one period)."""
    frame = frame.reset_index(drop=True)
    counts = frame[list(rules.counts)].apply(pd.to_numeric, errors="coerce")
    primary = ((counts >= 1) & (counts < threshold)).any(axis=1).to_numpy()
    empty = _empty(frame, rules)
    suppressed = primary.copy()
    size = pd.to_numeric(frame[rules.size], errors="coerce").fillna(0).to_numpy(dtype=float)
    rank = np.where(size > 0, size, np.inf)  # the smallest non-zero cell first, zeros after
    equations = [_memberships(frame, rules, h) for h in rules.hierarchies]
    changed = True
    while changed:
        changed = False
        for rows, ids in equations:
            unknown = (suppressed | empty)[rows]
            per_equation = np.bincount(ids, weights=unknown.astype(float), minlength=ids.max() + 1 if len(ids) else 0)
            open_eq = per_equation[ids] == 1
            candidates = open_eq & ~unknown
            if not candidates.any():
                continue
            pick = (pd.DataFrame({"eq": ids[candidates], "row": rows[candidates], "rank": rank[rows[candidates]],
                                  "size": size[rows[candidates]]})
                    .sort_values(["eq", "rank", "size", "row"]).drop_duplicates("eq"))
            new = pick["row"].to_numpy()
            if (~suppressed[new]).any():
                suppressed[new] = True
                changed = True
    return Suppression(primary=primary, suppressed=suppressed)


def protect(frame: pd.DataFrame, rules: TableRules, threshold: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """The publishable table: suppressed measures empty with ``<name>_suppressed`` flags; with counts of cells."""
    parts, primary_n, complementary_n = [], 0, 0
    groups = frame.groupby(list(rules.independent), sort=True, dropna=False) if rules.independent else [((), frame)]
    for _, part in groups:
        part = part.reset_index(drop=True)
        result = suppress(part, rules, threshold)
        out = part.drop(columns=[c for c in rules.hidden if c in part])
        for measure in rules.measures:
            out[measure] = out[measure].mask(result.suppressed)
            out[f"{measure}_suppressed"] = result.suppressed
        for measure, (column, needed) in rules.extra_requires.items():
            unknown = pd.Series(result.suppressed | _empty(part, rules), index=part.index)
            others = [k for k in rules.keys if k != column]
            blocked = (part.assign(_u=unknown.where(part[column].astype(str).isin(needed), False))
                       .groupby(others, dropna=False)["_u"].transform("any").to_numpy())
            hide = result.suppressed | blocked
            out[measure] = out[measure].mask(hide)
            out[f"{measure}_suppressed"] = hide
        parts.append(out)
        primary_n += int(result.primary.sum())
        complementary_n += int(result.complementary.sum())
    table = pd.concat(parts, ignore_index=True) if parts else frame
    return table, {"cells": len(frame), "cells_primary": primary_n, "cells_complementary": complementary_n}


def _empty(frame: pd.DataFrame, rules: TableRules) -> np.ndarray:
    if rules.empty_flag and rules.empty_flag in frame:
        return frame[rules.empty_flag].fillna(False).astype(bool).to_numpy()
    return np.zeros(len(frame), bool)
