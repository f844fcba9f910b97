"""Deterministic random streams: one independent generator per named unit of output."""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *keys: object) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (e.g. ``"kuhr", "2017-01-05"``)."""
    words = [seed & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(str(key).encode()) if not isinstance(key, int) else key & 0xFFFFFFFF)
    return np.random.default_rng(np.random.SeedSequence(words))
