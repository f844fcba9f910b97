"""Deterministic file output: gzip without time stamps, manifests, and the ground-truth log."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pandas as pd

from kpr_pipeline.domain.landing import FORMAT_VERSION, Manifest, sha256_file

GROUND_TRUTH_FILE = "ground_truth.jsonl"


def csv_bytes(frame: pd.DataFrame, header: bool = True) -> bytes:
    return frame.to_csv(sep=";", index=False, header=header, lineterminator="\n").encode("utf-8")


def open_gzip(path: Path) -> gzip.GzipFile:
    """A gzip stream to ``path`` without file name or time stamp in its header (same input, same bytes)."""
    return gzip.GzipFile(filename="", mode="wb", fileobj=open(path, "wb"), mtime=0, compresslevel=6)


def write_gzip(path: Path, payload: bytes) -> None:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as gz:
        gz.write(payload)
    path.write_bytes(buffer.getvalue())


def manifest_for(data_path: Path, fmt: str, delivery_id: str, delivery_date: str, row_count: int,
                 created_at: str) -> Manifest:
    return Manifest(
        format=fmt, format_version=FORMAT_VERSION, delivery_id=delivery_id, delivery_date=delivery_date,
        data_file=data_path.name, sha256=sha256_file(data_path), row_count=row_count, created_at=created_at,
    )


class GroundTruth:
    """The list of every injected fault (and planted difference), one JSON object a line."""

    def __init__(self, out: Path):
        self.path = out / GROUND_TRUTH_FILE
        self.records: list[dict] = []

    def add(self, **record) -> None:
        self.records.append(record)

    def flush(self) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            for r in self.records:
                f.write(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n")
        self.records.clear()
