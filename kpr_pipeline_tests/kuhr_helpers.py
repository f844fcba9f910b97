"""Helpers for KUHR tests: a hand-made delivery in the spec format."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pandas as pd

from kpr_pipeline.domain.landing import KUHR_FORMAT
from kpr_pipeline.synth.kuhr import COLUMNS
from kpr_pipeline.synth.output import csv_bytes, manifest_for, write_gzip


def write_delivery(landing: Path, delivery_id: str, day: dt.date, rows: pd.DataFrame, manifest: bool = True) -> Path:
    folder = landing / "kuhr"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{delivery_id}.csv.gz"
    write_gzip(path, csv_bytes(rows[COLUMNS]))
    if manifest:
        m = manifest_for(path, KUHR_FORMAT, delivery_id, day.isoformat(), len(rows), f"{day.isoformat()}T02:00:00+01:00")
        (folder / f"{delivery_id}.manifest.json").write_text(m.to_json(), encoding="utf-8")
    return path


def normal_claims(source_landing: Path, n: int, received_by: dt.date, prefix: str) -> pd.DataFrame:
    """``n`` of the generator's normal claims (no credit notes) received by ``received_by``, repeated as needed
    under new regning_ids ``<prefix>-0000000`` ...: volume for fault and concurrency tests."""
    frames = []
    for path in sorted((source_landing / "kuhr").glob("*.csv.gz"))[:40]:
        try:
            frames.append(pd.read_csv(path, sep=";", dtype=str, keep_default_na=False))
        except (EOFError, OSError, ValueError):  # the generator's damaged files (planted faults)
            continue
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[[c for c in rows.columns if c in COLUMNS]]
    rows = rows[(rows.kreditering == "0") & (rows.mottatt_dato <= received_by.isoformat())]
    rows = rows.iloc[[i % len(rows) for i in range(n)]].reset_index(drop=True)
    rows["regning_id"] = [f"{prefix}-{i:07d}" for i in range(n)]
    return rows


def table_digests(warehouse, tables, ignored: set[str]) -> dict[str, tuple[int, str]]:
    """Per table: rows and a digest of its content in any order, without the ``ignored`` columns."""
    out = {}
    for table in tables:
        frame = warehouse.frame(f'SELECT * FROM "{table}"')
        frame = frame[sorted(c for c in frame.columns if c not in ignored)]
        lines = sorted(frame.to_csv(index=False, header=False, lineterminator="\n").splitlines())
        out[table] = (len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest())
    return out
