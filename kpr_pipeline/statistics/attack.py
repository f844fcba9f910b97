"""The subtraction attack on a published table: what could a reader work out from the CSV alone?

For every hierarchy of the table (total row = sum of its parts) the attacker knows every published
cell; while some total-and-parts equation has exactly one unknown cell, that cell becomes known (by
subtraction, or by adding up the parts), and the attack repeats until nothing changes. A total that is
not published but derivable (the month's total in the delay triangle) is taken as known: the cautious
assumption. The attack only reads the published file; a suppressed cell it can determine is a leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kpr_pipeline.statistics.disclosure import TableRules


@dataclass
class AttackResult:
    suppressed: int = 0  # suppressed cells attacked
    equations: int = 0  # equations with an unknown cell
    recovered: int = 0  # suppressed cells determined by subtraction


def _equations(part: pd.DataFrame, rules: TableRules) -> list[tuple[np.ndarray, np.ndarray]]:
    """(row, equation id) pairs per hierarchy, built from the published rows alone."""
    out = []
    for h in rules.hierarchies:
        others = [k for k in rules.keys if k != h.column]
        frame = part[others].astype(str)
        if h.parent is None:
            ids = frame.groupby(others, sort=False, dropna=False).ngroup().to_numpy()
            out.append((np.arange(len(part)), ids))
            continue
        parent = h.parent(part[h.column].astype(str)).to_numpy()
        has_parent = pd.notna(parent)
        totals = frame.assign(_v=part[h.column].astype(str).to_numpy())
        parts = frame[has_parent].assign(_v=parent[has_parent])
        ids = pd.concat([totals, parts]).groupby(others + ["_v"], sort=False, dropna=False).ngroup().to_numpy()
        total_ids, part_ids = ids[:len(part)], ids[len(part):]
        keep = np.isin(part_ids, total_ids)  # only totals the table publishes
        rows = np.concatenate([np.arange(len(part)), np.flatnonzero(has_parent)[keep]])
        out.append((rows, np.concatenate([total_ids, part_ids[keep]])))
    return [_with_parts(rows, ids) for rows, ids in out]


def _with_parts(rows: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop equations of one cell (a total nothing adds up to): they tell the attacker nothing."""
    rows, ids = rows.astype(np.int64), ids.astype(np.int64)
    if not len(ids):
        return rows, ids
    members = np.bincount(ids)
    keep = members[ids] > 1
    return rows[keep], ids[keep]


def attack_frame(part: pd.DataFrame, rules: TableRules, measure: str) -> AttackResult:
    part = part.reset_index(drop=True)
    known = part[measure].notna().to_numpy().copy()
    flag = f"{measure}_suppressed"
    suppressed = part[flag].astype(str).str.lower().eq("true").to_numpy() if flag in part else ~known
    equations = _equations(part, rules)
    result = AttackResult(suppressed=int(suppressed.sum()))
    result.equations = sum(len(np.unique(ids[~known[rows]])) for rows, ids in equations)
    changed = True
    while changed:
        changed = False
        for rows, ids in equations:
            unknown = ~known[rows]
            if not unknown.any():
                continue
            count = np.bincount(ids, weights=unknown.astype(float))
            solvable = rows[(count[ids] == 1) & unknown]
            if len(solvable):
                known[solvable] = True
                changed = True
    result.recovered = int((known & suppressed).sum())
    return result


def attack_file(path: Path, rules: TableRules, chunk_rows: int = 500_000) -> AttackResult:
    """Attack a published CSV, one independent part (period) at a time; every published count is tried."""
    total = AttackResult()
    if not path.exists() or path.stat().st_size == 0:
        return total
    measures = [m for m in rules.counts if m not in rules.hidden]
    pending = None
    reader = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, chunksize=chunk_rows)
    for chunk in reader:  # keys keep "" (a group row's tjenestekode); an empty measure is unknown
        for measure in measures:
            chunk[measure] = chunk[measure].replace("", None)
        chunk = pd.concat([pending, chunk]) if pending is not None else chunk
        if rules.independent:
            last = tuple(chunk.iloc[-1][list(rules.independent)])
            tail = (chunk[list(rules.independent)].apply(tuple, axis=1) == last) if len(chunk) else None
            pending, chunk = chunk[tail], chunk[~tail]
        groups = chunk.groupby(list(rules.independent), sort=False) if rules.independent else [((), chunk)]
        for _, part in groups:
            for measure in measures:
                r = attack_frame(part, rules, measure)
                total.suppressed += r.suppressed
                total.equations += r.equations
                total.recovered += r.recovered
    if pending is not None and len(pending):
        for measure in measures:
            r = attack_frame(pending, rules, measure)
            total.suppressed += r.suppressed
            total.equations += r.equations
            total.recovered += r.recovered
    return total
