"""What every dataset shares in the landing zone: quarantine and the registry of processed files."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kpr_pipeline.domain.landing import MANIFEST_SUFFIX, sha256_file
from kpr_pipeline.domain.reasons import ALL_REASONS
from kpr_pipeline.warehouse.engine import bulk_insert

QUARANTINE = "quarantine"


class FileFault(Exception):
    """A whole file cannot be trusted: ``code`` is the quarantine reason code."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail or ALL_REASONS.get(code, code)}")
        self.code = code
        self.detail = detail or ALL_REASONS.get(code, code)


@dataclass(frozen=True)
class Quarantined:
    path: str
    reason: str
    sha256: str | None


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _free_target(target: Path) -> Path:
    """Quarantine never overwrites: a second file of the same name gets a numbered suffix."""
    if not target.exists():
        return target
    for k in range(1, 10_000):
        candidate = target.with_name(f"{target.name}.{k}")
        if not candidate.exists():
            return candidate
    raise RuntimeError(f"too many quarantined copies of {target.name}")


def quarantine(landing: Path, files: list[Path], reason_file: Path, code: str, detail: str,
               data_file: Path | None) -> Quarantined:
    """Move ``files`` (those that exist inside the landing zone) to quarantine/ with a reason file."""
    landing = landing.resolve()
    actual = None
    if data_file is not None and data_file.is_file() and _inside(data_file, landing):
        actual = sha256_file(data_file)
    moved = []
    for f in files:
        if f.exists() and _inside(f, landing) and not f.is_symlink():
            rel = f.resolve().relative_to(landing)
            target = _free_target(landing / QUARANTINE / rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), str(target))
            moved.append(target)
    rel_reason = reason_file.resolve().relative_to(landing) if _inside(reason_file, landing) else Path(reason_file.name)
    reason_path = _free_target(landing / QUARANTINE / rel_reason.parent / f"{rel_reason.name}.reason.json")
    reason_path.parent.mkdir(parents=True, exist_ok=True)
    reason_path.write_text(json.dumps({
        "reason": code, "detail": detail, "quarantined_at": now().isoformat(), "sha256": actual,
        "files": [p.relative_to(landing).as_posix() for p in moved],
    }, indent=2) + "\n", encoding="utf-8")
    return Quarantined(path=rel_reason.as_posix(), reason=code, sha256=actual)


def data_file_fault(data_path: Path) -> tuple[str, str] | None:
    """(reason, message) when the data file a manifest names cannot be read; a symlink is never followed,
    since it may point anywhere outside the landing zone."""
    if data_path.is_symlink():
        return "not_a_regular_file", "the data file named by the manifest is a symbolic link"
    if not data_path.is_file():
        return "data_file_missing", "the data file named by the manifest is missing"
    return None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def record_quarantine(conn: Connection, dataset: str, event: Quarantined) -> None:
    bulk_insert(conn, "quarantine_events", pd.DataFrame({
        "dataset": [dataset], "path": [event.path], "sha256": [event.sha256], "reason": [event.reason],
        "quarantined_at": [now()],
    }))


def register_file(conn: Connection, dataset: str, path: str, sha256: str, size: int | None, status: str,
                  unit_id: str, run_id: str | None) -> None:
    """The registry row of a file, replacing any earlier one for the same path."""
    conn.execute(sa.text("DELETE FROM landing_files WHERE dataset = :d AND path = :p"), {"d": dataset, "p": path})
    bulk_insert(conn, "landing_files", pd.DataFrame({
        "dataset": [dataset], "path": [path], "sha256": [sha256], "size_bytes": [size], "status": [status],
        "unit_id": [unit_id], "run_id": [run_id], "processed_at": [now()],
    }))


def processed_files(conn_or_warehouse, dataset: str) -> dict[str, str]:
    """path -> sha256 of every file of ``dataset`` already processed (loaded or quarantined)."""
    frame = conn_or_warehouse.query("SELECT path, sha256 FROM landing_files WHERE dataset = :d", d=dataset)
    return dict(zip(frame["path"], frame["sha256"]))


def ready_manifests(landing: Path, dataset: str) -> list[Path]:
    """Manifests in ``<landing>/<dataset>/``: a delivery or extract is ready when its manifest exists."""
    folder = landing / dataset
    return sorted(p for p in folder.glob(f"*{MANIFEST_SUFFIX}") if p.is_file()) if folder.is_dir() else []


def manifest_data_file(manifest: Path) -> Path | None:
    """The data file a manifest names, if it is a plain name (read leniently; validation comes later)."""
    try:
        name = json.loads(manifest.read_text(encoding="utf-8")).get("data_file")
    except Exception:  # noqa: BLE001 - an unreadable manifest is still a file to quarantine
        return None
    return manifest.parent / name if isinstance(name, str) and "/" not in name and "\\" not in name else None


def unprocessed_manifests(manifests: list[Path], registry: dict[str, str], dataset: str) -> list[tuple[Path, str]]:
    """(manifest, data file SHA-256) of those whose data file's content the registry does not have."""
    out = []
    for manifest in manifests:
        data = manifest_data_file(manifest)
        sha = sha256_file(data) if data is not None and data.is_file() else "unreadable"
        if data is None or registry.get(f"{dataset}/{data.name}") != sha:
            out.append((manifest, sha))
    return out
