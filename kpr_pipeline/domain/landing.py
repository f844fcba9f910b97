"""Landing-zone basics shared by every dataset: manifests and checksums (spec/landing.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

MANIFEST_SUFFIX = ".manifest.json"
KUHR_FORMAT = "kpr-kuhr-delivery"
IPLOS_FORMAT = "iplos-extract"
FORMAT_VERSION = "1.0"
KNOWN_FORMATS = frozenset({KUHR_FORMAT, IPLOS_FORMAT})
#: What a NUL byte in a CSV field becomes: PostgreSQL cannot store NUL in text, and a NUL is binary data in a
#: text file. The row rules reject a row holding it (``nul_character``); its record is stored with this instead.
NUL_REPLACEMENT = "\ufffd"
#: ``DataFrame.attrs`` key of a chunk in which NUL bytes were replaced (the rules look for them only then)
NUL_SEEN = "nul_bytes_seen"


def nul_rows(rows) -> np.ndarray:
    """Per row: does any field hold a (replaced) NUL byte? All False, at no cost, for a chunk without any."""
    if not rows.attrs.get(NUL_SEEN):
        return np.zeros(len(rows), dtype=bool)
    return np.logical_or.reduce([rows[c].astype(str).str.contains(NUL_REPLACEMENT, regex=False).to_numpy(dtype=bool)
                                 for c in rows.columns])


class ManifestError(ValueError):
    """The manifest cannot be trusted: ``code`` is the reason code, the message says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Manifest:
    format: str
    format_version: str
    delivery_id: str
    delivery_date: str
    data_file: str
    sha256: str
    row_count: int
    created_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: Path, expected_format: str) -> Manifest:
    """Parse and validate a manifest; raise ``ManifestError`` with the reason when it cannot be trusted."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError("manifest_unreadable", f"manifest unreadable: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ManifestError("manifest_unreadable", "manifest unreadable: not a JSON object")
    if data.get("format") != expected_format or data.get("format_version") != FORMAT_VERSION:
        raise ManifestError("manifest_unknown_format", "unknown manifest format or format version")
    missing = [f for f in Manifest.__dataclass_fields__ if f not in data]
    if missing:
        raise ManifestError("manifest_invalid", f"manifest lacks {', '.join(missing)}")
    data_file = data["data_file"]
    if not isinstance(data_file, str) or not is_plain_file_name(data_file):
        raise ManifestError("data_file_not_plain", "manifest data_file is not a plain file name")
    row_count = data["row_count"]
    if isinstance(row_count, bool) or not isinstance(row_count, int) or row_count < 0:
        raise ManifestError("manifest_invalid", "manifest row_count is not a non-negative integer")
    try:
        dt.date.fromisoformat(str(data["delivery_date"]))
    except ValueError:
        raise ManifestError("manifest_invalid", "manifest delivery_date is not an ISO date") from None
    if not isinstance(data["sha256"], str) or len(data["sha256"]) != 64:
        raise ManifestError("manifest_invalid", "manifest sha256 is not 64 hex characters")
    return Manifest(**{f: data[f] for f in Manifest.__dataclass_fields__})


def is_plain_file_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\x00" not in name
