"""Engine per URL, migrations on first use, transactions, and the bulk load per dialect."""

from __future__ import annotations

import io
import queue
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from pgpq import ArrowToPostgresBinaryEncoder
from sqlalchemy.engine import Connection, Engine, make_url

from kpr_pipeline.settings import redact_url


#: PostgreSQL type OIDs and the Arrow types their COPY text is parsed as (the rest stays text).
_ARROW_TYPES = {16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 700: pa.float64(),
                701: pa.float64(), 1700: pa.float64(), 1082: pa.date32(), 1114: pa.timestamp("us"),
                1184: pa.timestamp("us", tz="UTC")}


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or used; the message names ``KPR_WAREHOUSE_URL``."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse went away or refused the connection (restarted, failed over, network): the interrupted
    transaction was rolled back, so the same work can be done again once it is back."""


#: DuckDB caches table pages up to its memory limit (80 % of RAM by default), so a process loading a big
#: delivery grew with the file. With a limit, memory stays flat and DuckDB spills to disk beyond it.
#: ``?memory_limit=4GB`` in KPR_WAREHOUSE_URL overrides it. A KPR-KUHR delivery is checked inside this same
#: DuckDB (``ingest/kuhr_check.py``), so it is the whole buffer pool of a load: 768 MB keeps a 2-million-row
#: delivery from spilling half of it, and a process of any delivery size near 1 GB (docs/benchmarks.md).
DUCKDB_MEMORY_LIMIT = "768MB"


def normalise_url(url: str) -> str:
    """A bare ``postgresql://`` (or ``postgres://``) URL uses psycopg2, the driver dagster-postgres brings;
    a relative DuckDB path is made absolute (relative to the working directory when first seen)."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare):]
    if url.startswith("duckdb:///") and not url.startswith("duckdb:////") and not url.startswith("duckdb:///:memory:"):
        path, _, query = url[len("duckdb:///"):].partition("?")
        return f"duckdb:///{Path(path).resolve()}" + (f"?{query}" if query else "")
    return url


class Warehouse:
    """A warehouse at one URL. Migrations are applied on first use (``ensure_schema``)."""

    def __init__(self, url: str):
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except Exception:  # noqa: BLE001
            raise WarehouseError(f"KPR_WAREHOUSE_URL is not a valid SQLAlchemy URL: {redact_url(url)!r}.") from None
        self.dialect = parsed.get_backend_name()
        if self.dialect == "duckdb" and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self._engine: Engine | None = None
        self._migrated = False

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            kwargs = {"pool_pre_ping": True} if self.dialect == "postgresql" else {}
            if self.dialect == "duckdb" and "memory_limit" not in make_url(self.url).query:
                kwargs = {"connect_args": {"config": {"memory_limit": DUCKDB_MEMORY_LIMIT}}}
            self._engine = sa.create_engine(self.url, **kwargs)
            sa.event.listen(self._engine, "handle_error", self._lost)
        return self._engine

    def _lost(self, context: sa.engine.ExceptionContext) -> None:
        """A lost or refused connection becomes a ``WarehouseUnavailable`` that says so in one sentence."""
        refused = context.connection is None and isinstance(context.sqlalchemy_exception, sa.exc.OperationalError)
        if context.is_disconnect or refused:
            raise unavailable(self.url, context.original_exception) from context.original_exception

    @property
    def is_duckdb(self) -> bool:
        return self.dialect == "duckdb"

    def ensure_schema(self) -> None:
        """Create or upgrade the schema to the newest migration (idempotent, cheap once done)."""
        if self._migrated:
            return
        from kpr_pipeline.warehouse.migrate import is_current, upgrade

        try:
            if not is_current(self.engine):
                upgrade(self.engine)
        except (sa.exc.OperationalError, WarehouseUnavailable) as exc:
            raise WarehouseError(
                f"KPR_WAREHOUSE_URL {redact_url(self.url)} cannot be reached: {_first_line(exc)}."
            ) from None
        self._migrated = True

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: everything inside commits together or not at all."""
        self.ensure_schema()
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """One connection for work around a transaction (opened with ``conn.begin()``): a delivery's check keeps
        its temporary tables on a DuckDB warehouse's connection until its transaction has published them."""
        self.ensure_schema()
        with self.engine.connect() as conn:
            yield conn

    def query(self, sql: str, **params) -> pd.DataFrame:
        self.ensure_schema()
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(sql), params)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def frame(self, sql: str, **params) -> pd.DataFrame:
        """A large result as a DataFrame, the fast way for each engine: DuckDB hands over columns
        (no Python object per value); PostgreSQL streams ``COPY (query) TO STDOUT`` as CSV, which Arrow
        parses with the column types of the query (a row fetch builds a Python object per value: 4x slower)."""
        self.ensure_schema()
        names = set(re.findall(r"(?<![:\w]):(\w+)", sql))
        bound = {k: v for k, v in params.items() if k in names}
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            if conn.dialect.name == "duckdb":
                return raw.execute(re.sub(r"(?<![:\w]):(\w+)", r"$\1", sql), bound).df()
            with raw.cursor() as cursor:
                query = cursor.mogrify(re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql.replace("%", "%%")),
                                       bound).decode()
                cursor.execute(f"SELECT * FROM ({query}) q LIMIT 0")
                columns = [(d[0], _ARROW_TYPES.get(d[1], pa.string())) for d in cursor.description]
                buffer = io.BytesIO()
                with driver_call(conn):
                    cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)", buffer)
        buffer.seek(0)
        table = pacsv.read_csv(buffer, convert_options=pacsv.ConvertOptions(
            column_types=dict(columns), true_values=["t"], false_values=["f"], strings_can_be_null=True,
            quoted_strings_can_be_null=False))
        return table.to_pandas(date_as_object=False)

    @staticmethod
    def query_in(conn: Connection, sql: str, **params) -> pd.DataFrame:
        """A query inside the caller's transaction."""
        result = conn.execute(sa.text(sql), params)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def scalar(self, sql: str, **params):
        self.ensure_schema()
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _first_line(exc: BaseException) -> str:
    exc = exc.__cause__ if isinstance(exc, WarehouseUnavailable) and exc.__cause__ else exc
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def unavailable(url: str, exc: BaseException) -> WarehouseUnavailable:
    return WarehouseUnavailable(
        f"The warehouse at {redact_url(url)} went away or refused the connection ({_first_line(exc)}); "
        "the interrupted transaction was rolled back, nothing of it is kept: the work can be repeated once "
        "the warehouse is back.")


@contextmanager
def driver_call(conn: Connection) -> Iterator[None]:
    """Around a call on the driver's own connection (PostgreSQL's COPY), which SQLAlchemy does not see: a lost
    connection is invalidated (so the rollback does not use it) and reported as ``WarehouseUnavailable``."""
    try:
        yield
    except Exception as exc:
        dbapi = conn.connection.dbapi_connection
        # psycopg2 marks a connection it lost as closed; the error a COPY from a Python stream ends with may
        # be one SQLAlchemy does not recognise ("invalid socket")
        lost = conn.dialect.is_disconnect(exc, dbapi, None) or bool(getattr(dbapi, "closed", 0))
        if conn.dialect.name == "postgresql" and lost:
            conn.invalidate(exc)
            raise unavailable(str(conn.engine.url), exc) from exc
        raise


def hold_lock(conn: Connection, name: str) -> None:
    """Hold the lock ``name`` until the caller's transaction ends, so that writers which must not interleave
    (two deliveries publishing the same resent regning) take turns. PostgreSQL: a transaction-level advisory
    lock. DuckDB allows one writing process, and the pool lets one writer in: nothing to do."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})


LOOKUP_TABLE = "kpr_lookup"


def fill_lookup(conn: Connection, values) -> None:
    """Put ``values`` into the connection's temporary one-column table ``kpr_lookup`` (for set joins with the
    bill ids, so on PostgreSQL in their collation "C", migration 0013): any iterable of values, or an Arrow
    table whose column ``v`` holds distinct strings (a whole delivery's ids, without a Python object each)."""
    collate = ' COLLATE "C"' if conn.dialect.name == "postgresql" else ""
    conn.execute(sa.text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {LOOKUP_TABLE} (v VARCHAR{collate})"))
    conn.execute(sa.text(f"DELETE FROM {LOOKUP_TABLE}"))
    if not isinstance(values, pa.Table):
        values = pd.DataFrame({"v": pd.unique(pd.Series(list(values), dtype="object").astype(str))})
    bulk_insert(conn, LOOKUP_TABLE, values)
    if conn.dialect.name == "postgresql":  # the planner's estimate for the join (a lookup may hold millions)
        conn.execute(sa.text(f"ANALYZE {LOOKUP_TABLE}"))


def bulk_insert(conn: Connection, table: str, data: pd.DataFrame | pa.Table | pa.RecordBatchReader) -> int:
    """Append ``data`` to ``table`` inside the caller's transaction, the fast way for each engine.

    DuckDB reads the DataFrame or Arrow data in one ``INSERT ... SELECT``; PostgreSQL takes it
    through one ``COPY ... FROM STDIN`` in its binary format, cast to the table's own column types
    (PostgreSQL then parses nothing: CSV parsing was a third of the time of loading a delivery).
    Columns are matched by name.
    """
    if isinstance(data, pd.DataFrame):
        if data.empty:
            return 0
        names = [str(c) for c in data.columns]
    else:
        names = data.schema.names
    columns = ", ".join(f'"{c}"' for c in names)
    dialect = conn.dialect.name
    if dialect == "duckdb":
        raw = conn.connection.driver_connection
        view = f"_kpr_bulk_{id(data)}"
        raw.register(view, data)
        try:
            raw.execute(f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM "{view}"')
            return raw.fetchone()[0]
        finally:
            raw.unregister(view)
    if dialect != "postgresql":  # pragma: no cover - only the two engines are supported
        raise WarehouseError(f"KPR_WAREHOUSE_URL uses an unsupported engine {dialect!r}.")
    if isinstance(data, pd.DataFrame):
        data = pa.Table.from_pandas(data, preserve_index=False)
    batches = data.to_batches() if isinstance(data, pa.Table) else data
    stream = _BinaryCopyStream(batches, copy_schema(conn, table, names))
    cursor = conn.connection.driver_connection.cursor()
    try:
        with driver_call(conn):
            cursor.copy_expert(f'COPY "{table}" ({columns}) FROM STDIN WITH (FORMAT binary)', stream, size=1 << 20)
    finally:
        cursor.close()
        stream.close()
    return stream.rows


def _arrow_type(pg_type: str) -> pa.DataType:
    """The Arrow type whose binary COPY form is that of the PostgreSQL type (``format_type``'s spelling)."""
    if pg_type == "text" or pg_type.startswith(("character varying", "character(")):
        return pa.string()
    numeric = re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type)
    if numeric:
        return pa.decimal128(int(numeric[1]), int(numeric[2]))
    try:
        return _COPY_TYPES[pg_type]
    except KeyError:
        raise WarehouseError(f"no binary COPY form for the PostgreSQL type {pg_type!r}") from None


_COPY_TYPES = {"integer": pa.int32(), "bigint": pa.int64(), "smallint": pa.int16(), "boolean": pa.bool_(),
               "date": pa.date32(), "double precision": pa.float64(), "real": pa.float32(),
               "timestamp with time zone": pa.timestamp("us", tz="UTC"), "timestamp without time zone": pa.timestamp("us")}


def copy_schema(conn: Connection, table: str, names: list[str]) -> pa.Schema:
    """The Arrow schema of ``names`` in ``table`` (a temporary table too) that binary COPY needs."""
    types = dict(conn.execute(sa.text(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped"), {"t": f'"{table}"'}).all())
    return pa.schema([pa.field(n, _arrow_type(types[n])) for n in names])


def _cast(column: pa.Array, target: pa.DataType) -> pa.Array:
    """``column`` as ``target``: exactly (a value that does not fit raises), except timestamps, which are cut to
    microseconds. Integers reach a narrow decimal through a wide one (Arrow refuses a direct cast of an int64
    to a decimal of fewer than 21 digits, whatever the values)."""
    if column.type == target:
        return column
    if pa.types.is_decimal(target) and pa.types.is_integer(column.type):
        column = column.cast(pa.decimal128(38, target.scale))
    return column.cast(target, safe=not pa.types.is_timestamp(target))


class _BinaryCopyStream(io.RawIOBase):
    """Arrow batches as one ``COPY ... FROM STDIN (FORMAT binary)`` stream. A thread casts and encodes the next
    batches (``pgpq``) while PostgreSQL takes the current one. Timestamps are cut to microseconds, PostgreSQL's
    precision; every other cast must be exact."""

    _END = object()

    def __init__(self, batches, schema: pa.Schema):
        super().__init__()
        self.rows = 0
        self._schema = schema
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._pending = memoryview(b"")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(batches,), daemon=True)
        self._thread.start()

    def _cast(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([_cast(batch.column(f.name), f.type) for f in self._schema],
                                          schema=self._schema)

    def _produce(self, batches) -> None:
        try:
            encoder = ArrowToPostgresBinaryEncoder(self._schema)
            self._put(encoder.write_header())
            for batch in batches:
                if self._stop.is_set():
                    return
                if batch.num_rows:
                    self._put(encoder.write_batch(self._cast(batch)))
                    self.rows += batch.num_rows
            self._put(encoder.finish())
            self._queue.put(self._END)
        except BaseException as exc:  # noqa: BLE001 - raised again in the reading thread
            self._queue.put(exc)

    def _put(self, data: bytes) -> None:
        """Queue encoded bytes; the encoder buffers, so a batch may give none (an empty read means the end)."""
        if data:
            self._queue.put(bytes(data))

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._pending:
            item = self._queue.get()
            if item is self._END:
                self._queue.put(item)
                return b""
            if isinstance(item, BaseException):
                raise item
            self._pending = memoryview(item)
        size = len(self._pending) if size is None or size < 0 else size
        out, self._pending = self._pending[:size], self._pending[size:]
        return out.tobytes()

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # let a producer blocked on a full queue finish
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.01)
        super().close()


_TABLE_COLUMNS: dict[tuple[str, str], list[str]] = {}


def table_columns(conn: Connection, table: str) -> list[str]:
    """The quoted column names of ``table`` (cached; duckdb-engine cannot reflect columns)."""
    key = (conn.dialect.name, table)
    if key not in _TABLE_COLUMNS:
        _TABLE_COLUMNS[key] = [f'"{c}"' for c in conn.execute(sa.text(f"SELECT * FROM {table} WHERE 1 = 0")).keys()]
    return _TABLE_COLUMNS[key]
