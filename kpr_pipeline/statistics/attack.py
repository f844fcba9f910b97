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
import pyarrow as pa
import pyarrow.csv as pacsv

from kpr_pipeline.statistics.disclosure import TableRules, combined_codes


@dataclass
class AttackResult:
    suppressed: int = 0  # suppressed cells attacked
    equations: int = 0  # equations with an unknown cell
    recovered: int = 0  # suppressed cells determined by subtraction


def _equations(part: pd.DataFrame, rules: TableRules) -> list[tuple[np.ndarray, np.ndarray]]:
    """(row, equation id) pairs per hierarchy, built from the published rows alone."""
    out = []
    for h in rules.hierarchies:
        rest = combined_codes(part, [k for k in rules.keys if k != h.column])
        if h.parent is None:
            out.append((np.arange(len(part)), pd.factorize(rest)[0]))
            continue
        values = part[h.column].astype(str)
        codes, uniques = pd.factorize(values)
        parents = h.parent(pd.Series(uniques, dtype=object))
        index = pd.Index(uniques).append(pd.Index(parents.dropna().unique())).unique()
        parent_code = np.where(parents.notna(), index.get_indexer(parents.fillna("")), -1)[codes]
        has_parent = parent_code >= 0
        width = len(index) + 1
        ids = pd.factorize(np.concatenate([rest * width + codes, rest[has_parent] * width + parent_code[has_parent]]))[0]
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


def attack_frame(part: pd.DataFrame, rules: TableRules, measure: str,
                 equations: list[tuple[np.ndarray, np.ndarray]] | None = None) -> AttackResult:
    part = part.reset_index(drop=True)
    known = part[measure].notna().to_numpy().copy()
    flag = f"{measure}_suppressed"
    suppressed = part[flag].astype(str).str.lower().eq("true").to_numpy() if flag in part else ~known
    equations = _equations(part, rules) if equations is None else equations
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


def _attack_part(part: pd.DataFrame, rules: TableRules, measures: list[str], total: AttackResult) -> None:
    part = part.reset_index(drop=True)
    equations = _equations(part, rules)  # the same for every measure of the part
    for measure in measures:
        r = attack_frame(part, rules, measure, equations)
        total.suppressed += r.suppressed
        total.equations += r.equations
        total.recovered += r.recovered


def _read_text(path: Path, chunk_rows: int):
    """The CSV as text columns, in batches (Arrow's reader: the pandas parser is ten times slower here)."""
    with path.open(encoding="utf-8") as handle:
        header = [c.strip('"') for c in handle.readline().rstrip("\n").split(";")]
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=False,
                                   quoted_strings_can_be_null=False)
    reader = pacsv.open_csv(path, parse_options=pacsv.ParseOptions(delimiter=";"), convert_options=convert,
                            read_options=pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * 200)))
    for batch in reader:
        yield batch.to_pandas()


def attack_file(path: Path, rules: TableRules, chunk_rows: int = 500_000) -> AttackResult:
    """Attack a published CSV, one independent part (period) at a time; every published count is tried."""
    total = AttackResult()
    if not path.exists() or path.stat().st_size == 0:
        return total
    measures = [m for m in rules.counts if m not in rules.hidden]
    pending = None
    for chunk in _read_text(path, chunk_rows):  # keys keep "" (a group row's tjenestekode); empty measure: unknown
        for measure in measures:
            chunk[measure] = chunk[measure].replace("", None)
        chunk = pd.concat([pending, chunk]) if pending is not None else chunk
        if rules.independent:  # the file is written period by period: the last period may go on
            last = chunk.iloc[-1]
            tail = np.logical_and.reduce([chunk[c].to_numpy() == last[c] for c in rules.independent])
            pending, chunk = chunk[tail], chunk[~tail]
        groups = chunk.groupby(list(rules.independent), sort=False) if rules.independent else [((), chunk)]
        for _, part in groups:
            _attack_part(part, rules, measures, total)
    if pending is not None and len(pending):
        _attack_part(pending, rules, measures, total)
    return total
