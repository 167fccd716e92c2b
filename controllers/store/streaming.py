"""Query results as a stream of Arrow tables, in bounded memory.

PostgreSQL: ``COPY (query) TO STDOUT`` as CSV, parsed by Arrow's streaming CSV reader — no Python
object per row. Other databases (SQLite): a streaming cursor, one partition at a time.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Engine, Select

AnySelect = Select[*tuple[Any, ...]]


def stream_tables(engine: Engine, query: AnySelect, batch_rows: int) -> Iterator[pa.Table]:
    """The query's rows as Arrow tables of about ``batch_rows`` rows, in query order, in bounded memory.

    PostgreSQL: ``COPY (query) TO STDOUT`` as CSV, parsed by Arrow's streaming CSV reader — no Python
    object per row at all. Other databases: a streaming cursor, one partition at a time.
    """
    names = [column.name for column in query.selected_columns]
    if engine.dialect.name == "postgresql":
        yield from _copy_stream(engine, query, names, batch_rows)
        return
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=batch_rows).execute(query)
        for partition in result.partitions():
            columns = list(zip(*partition, strict=True))
            yield pa.table({name: pa.array(values) for name, values in zip(names, columns, strict=True)})


class _CopyReader(io.RawIOBase):
    """A readable byte stream over psycopg's COPY TO STDOUT chunks, for Arrow's CSV reader."""

    def __init__(self, chunks: Iterator[memoryview]) -> None:
        self._chunks, self._pending = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = bytes(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


# Arrow's streaming CSV reader pulls blocks on its own I/O thread into a queue up to 32 blocks deep
# (a fixed constant in Arrow, not a read option). Whenever PostgreSQL sends rows faster than the export
# scrubs and writes them, that queue fills, and the longer the export, the fuller it gets: with ~10 MB
# blocks it held up to ~150 MiB of CSV at 0.5M pairs and ~360 MiB at 5M, which was all of the growth in
# peak memory. 1 MiB blocks cap it near 32 MiB; their batches are gathered back into tables of about
# ``batch_rows`` so the consumer still works (and writes Parquet row groups) in large pieces.
_CSV_BLOCK_BYTES = 1 << 20


def _copy_stream(engine: Engine, query: AnySelect, names: list[str], batch_rows: int) -> Iterator[pa.Table]:
    # render_postcompile expands IN (...) lists into one parameter each; COPY takes no expanding ones.
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    types = {
        column.name: (pa.float64() if column.type.python_type is float else pa.string())
        for column in query.selected_columns
    }
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params) as copy,
        ):
            reader = pa_csv.open_csv(
                pa.PythonFile(io.BufferedReader(_CopyReader(iter(copy)), buffer_size=1 << 20), mode="r"),
                read_options=pa_csv.ReadOptions(column_names=names, block_size=_CSV_BLOCK_BYTES),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(column_types=types, quoted_strings_can_be_null=False),
            )
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in reader:
                pending.append(batch)
                pending_rows += batch.num_rows
                if pending_rows >= batch_rows:
                    yield pa.Table.from_batches(pending)
                    pending, pending_rows = [], 0
            if pending_rows:
                yield pa.Table.from_batches(pending)
