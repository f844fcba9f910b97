"""Helpers for KUHR tests: a hand-made delivery in the spec format."""

from __future__ import annotations

import datetime as dt
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
