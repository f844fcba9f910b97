"""Reading a landing CSV (gzip or plain; UTF-8 with or without BOM; ``;``) in chunks of text columns.

Shared by KUHR deliveries and IPLOS extracts: file-level problems (truncated or undecodable
compression, a file expanding beyond ``MAX_EXPANDED_BYTES``, missing columns, broken quoting)
raise ``FileFault`` with the quarantine reason; every value stays text for the row rules.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Iterator

import pandas as pd

from kpr_pipeline.domain.landing import NUL_REPLACEMENT, NUL_SEEN
from kpr_pipeline.ingest.landing_zone import FileFault

CHUNK_ROWS = 200_000
#: Stop reading a data file that expands beyond this (a gzip bomb); national daily files are far smaller.
MAX_EXPANDED_BYTES = 8 * 1024**3


def read_chunks(data_path: Path, required: tuple[str, ...], chunk_rows: int = CHUNK_ROWS,
                replace_nul: bool = True) -> Iterator[pd.DataFrame]:
    """Rows of the data file as text, in chunks; file-level problems raise ``FileFault``. NUL bytes are replaced
    by U+FFFD (and the chunk marked) unless ``replace_nul`` is false (the caller flags them itself)."""
    raw = open(data_path, "rb")
    stream = _LimitedReader(gzip.GzipFile(fileobj=raw) if data_path.name.endswith(".gz") else raw)
    try:
        reader = pd.read_csv(stream, sep=";", quotechar='"', dtype=str, keep_default_na=False, na_filter=False,
                             encoding="utf-8-sig", chunksize=chunk_rows, engine="c")
        first = True
        for chunk in reader:
            if first:
                missing = [c for c in required if c not in chunk.columns]
                if missing:
                    raise FileFault("missing_required_column", f"missing columns: {', '.join(missing)}")
                first = False
            if replace_nul and stream.saw_nul:  # rare: costs nothing for files without NUL bytes
                chunk = chunk.replace("\x00", NUL_REPLACEMENT, regex=True)
                chunk.attrs[NUL_SEEN] = True
            yield chunk
        if first:  # header only, or not even a header
            raise FileFault("missing_required_column", "no header")
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        if isinstance(exc, FileFault):
            raise
        raise FileFault("compression_error", type(exc).__name__) from None
    except UnicodeDecodeError:
        raise FileFault("encoding_error") from None
    except pd.errors.EmptyDataError:
        raise FileFault("missing_required_column", "empty file") from None
    except pd.errors.ParserError as exc:
        if "size limit" in str(exc):
            raise FileFault("file_too_large") from None
        raise FileFault("csv_malformed", "CSV parse error") from None
    finally:
        stream.close()
        raw.close()


class _LimitedReader:
    """A read-only stream that stops a file expanding beyond ``MAX_EXPANDED_BYTES`` (gzip bombs)."""

    def __init__(self, inner):
        self.inner = inner
        self.read_bytes = 0
        self.saw_nul = False

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size if size and size > 0 else 1 << 20)
        self.read_bytes += len(data)
        self.saw_nul = self.saw_nul or b"\x00" in data
        if self.read_bytes > MAX_EXPANDED_BYTES:
            raise pd.errors.ParserError("size limit exceeded")
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.inner.close()

    def __iter__(self):
        return iter(self.readline, b"")

    def readline(self, size: int = -1) -> bytes:
        return self.inner.readline(size)
