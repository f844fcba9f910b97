"""Person keys (spec/pseudonyms.md): ``pid`` for KPR and the IPLOS linkage pseudonym.

Both are HMAC-SHA256 over the 11-digit identifier as ASCII, written as 64 lower-case hex.
The raw identifier lives only inside these calls; no mapping is ever kept.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterable

import numpy as np
import pandas as pd


def pseudonym(identifier: str, key: str) -> str:
    return hmac.new(key.encode("utf-8"), identifier.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def hmac_pads(key: str) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer key pads (RFC 2104): with them, any SHA-256 (DuckDB's ``sha256`` for
    KPR-KUHR deliveries) computes the same pid as :func:`pseudonym`."""
    k = key.encode("utf-8")
    if len(k) > 64:
        k = hashlib.sha256(k).digest()
    k = k.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def pseudonymise(identifiers: Iterable[str] | pd.Series, key: str) -> np.ndarray:
    """Pseudonyms for a column of identifiers (invalid ones too: they are stored with rejected rows).

    Each distinct identifier is hashed once (a person has many claims in a delivery), and the keyed
    HMAC state is built once and copied per value, which halves the cost of ``hmac.new``.
    """
    values = pd.Series(identifiers, dtype=object).where(lambda v: v.notna(), "")
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    base = hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)
    out = []
    append = out.append
    for value in uniques:
        h = base.copy()
        h.update(str(value).encode("ascii", "replace"))
        append(h.hexdigest())
    return np.array(out, dtype=object)[codes] if len(codes) else np.array([], dtype=object)


def is_pseudonym(values: pd.Series) -> np.ndarray:
    """True where a value has the shape of a pseudonym (64 lower-case hex characters)."""
    return pd.Series(values, dtype="string").str.fullmatch(r"[0-9a-f]{64}").fillna(False).to_numpy(dtype=bool)
