"""Declarative data contracts (``data_contracts/*.yaml``): the single source of schema and quality rules.

A contract names a table, its columns (type, required, pattern, allowed values, range, unique) and
table-level rules, each with a severity: ERROR blocks downstream work, WARN is for stewards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "data_contracts"
SEVERITIES = ("ERROR", "WARN")


@dataclass(frozen=True)
class ColumnRule:
    name: str
    type: str = "string"
    required: bool = False
    pattern: str | None = None
    allowed: tuple | None = None
    min: float | None = None
    max: float | None = None
    unique: bool = False
    identifier: bool = False  # a pseudonym or other person key: never sampled into results


@dataclass(frozen=True)
class Contract:
    name: str
    table: str
    description: str
    severity: str
    columns: tuple[ColumnRule, ...]
    rules: tuple[dict, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@lru_cache(maxsize=None)
def load_contract(name: str, directory: Path = CONTRACTS_DIR) -> Contract:
    path = directory / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    severity = data.get("severity", "ERROR")
    if severity not in SEVERITIES:
        raise ValueError(f"{path.name}: severity must be one of {SEVERITIES}")
    columns = tuple(
        ColumnRule(name=col, **{k: (tuple(v) if k == "allowed" else v) for k, v in (spec or {}).items()})
        for col, spec in data["columns"].items()
    )
    return Contract(
        name=name, table=data.get("table", name), description=data.get("description", ""), severity=severity,
        columns=columns, rules=tuple(data.get("rules", ())),
    )


def all_contracts(directory: Path = CONTRACTS_DIR) -> list[Contract]:
    return [load_contract(p.stem, directory) for p in sorted(directory.glob("*.yaml"))]
