"""Recordings from tables: CSV, TSV and Parquet files, read by pyarrow (no Python loop).

Rows are time steps. Channels are the numeric columns in their order (or `columns`); a time
column (`time_column`, else one of timestamp type, else one named time, timestamp, date or
datetime) gives the time stamps and is not a channel; a sequence column (`sequence_column`)
splits the table into several recordings, in the order each first appears. A states column
(`states_column`) holds the known hidden state of each row, as whole numbers or as names
(numbered in sorted order); it is not a channel, and is read for evaluation. Empty cells are
an error naming their row and column unless `fill` says what to do: "ffill" (the value
above; a recording's first rows take the first value below) or "drop" (drop the row).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nld.errors import DataError

TABLES = (".csv", ".tsv", ".parquet")
TIME_NAMES = ("time", "timestamp", "date", "datetime")


@dataclass(frozen=True)
class TableOptions:
    time_column: str | None = None
    columns: list[str] | None = None  # the channels, in this order (default: every numeric)
    sequence_column: str | None = None
    fill: Literal["ffill", "drop"] | None = None
    states_column: str | None = None  # the known state of each row (not a channel)


@dataclass(frozen=True)
class Table:
    """A table's recordings: channels float32 [T_i, D], with their time stamps and ids."""

    arrays: list[np.ndarray]
    columns: list[str]
    times: list[np.ndarray] | None  # per recording [T_i] (None without a time column)
    ids: list[Any]  # per recording: its value in the sequence column (0 without one)
    states: list[np.ndarray] | None = None  # per recording [T_i] int64 (states column)


def read_table(path: Path, options: TableOptions | None = None) -> Table:
    """The recordings of a CSV, TSV or Parquet file (DataError naming any problem)."""
    options = options or TableOptions()
    table = _read(path)
    if table.num_rows < 2:
        raise DataError(f"{path}: {table.num_rows} row(s); a recording needs at least 2 steps")
    names = table.column_names
    given_columns = [options.time_column, options.sequence_column, options.states_column]
    for given in [*given_columns, *(options.columns or [])]:
        if given is not None and given not in names:
            raise DataError(f"{path}: no column {given!r} (the columns: {', '.join(names)})")
    time = options.time_column or _time_column(table)
    skip = {time, options.sequence_column, options.states_column}
    channels = options.columns or [n for n in names if n not in skip]
    if options.states_column is not None and options.states_column in channels:
        raise DataError(
            f"{path}: column {options.states_column!r} is the states column and also a channel "
            "(given with --columns, or one the model was trained on): it cannot be both"
        )
    bad = [n for n in channels if not _numeric(table.schema.field(n).type)]
    if bad:
        kinds = ", ".join(f"{n!r} ({table.schema.field(n).type})" for n in bad)
        raise DataError(
            f"{path}: column(s) {kinds} are not numeric; choose the channels with --columns "
            "(or columns=...), name a time column with --time-column"
        )
    if not channels:
        raise DataError(f"{path}: no numeric columns to take as channels")
    x = np.column_stack(
        [table.column(n).to_numpy(zero_copy_only=False).astype(np.float32) for n in channels]
    )
    times = None if time is None else table.column(time).to_numpy(zero_copy_only=False)
    states = None
    if options.states_column is not None:
        states = _states(table, options.states_column, path)
    groups: list[tuple[Any, np.ndarray]] = [(0, np.arange(len(x)))]
    if options.sequence_column is not None:
        ids = table.column(options.sequence_column).to_numpy(zero_copy_only=False)
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        groups = [(ids[first[g]], np.flatnonzero(inverse == g)) for g in np.argsort(first)]
    arrays, stamps, keys, known = [], [], [], []
    for key, rows in groups:
        a, kept = _filled(x[rows], rows, channels, options.fill, path)
        if len(a) < 2:
            where = "" if options.sequence_column is None else f" (sequence {key})"
            raise DataError(f"{path}{where}: fewer than 2 steps left to read")
        arrays.append(a)
        keys.append(key)
        if times is not None:
            stamps.append(times[kept])
        if states is not None:
            known.append(states[kept])
    return Table(
        arrays,
        list(channels),
        stamps if times is not None else None,
        keys,
        known if states is not None else None,
    )


def _states(table: Any, name: str, path: Path) -> np.ndarray:
    """The states column as numbers: whole numbers as they are, names numbered 0..K-1 in
    sorted order."""
    import pyarrow as pa

    column = table.column(name)
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0]) + 1
        raise DataError(
            f"{path}: the states column {name!r} has {column.null_count} empty cell(s), the "
            f"first in data row {row}; every step needs its state"
        )
    values = column.to_numpy(zero_copy_only=False)
    if pa.types.is_integer(column.type):
        if values.min() < 0:
            raise DataError(f"{path}: the states column {name!r} holds a negative number")
        return values.astype(np.int64)
    return np.unique(values.astype(str), return_inverse=True)[1].astype(np.int64)


def _read(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        delimiter = "\t" if path.suffix == ".tsv" else ","
        return pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowInvalid, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"{path}: not a readable {path.suffix[1:].upper()} table ({first})"
        ) from None


def _numeric(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _time_column(table: Any) -> str | None:
    import pyarrow as pa

    for field in table.schema:
        if pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
            return str(field.name)
    for field in table.schema:
        if str(field.name).lower() in TIME_NAMES:
            return str(field.name)
    return None


def _filled(
    x: np.ndarray, rows: np.ndarray, channels: list[str], fill: str | None, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """x with its empty cells filled as `fill` says, and the rows kept (DataError without)."""
    empty = ~np.isfinite(x)
    if not empty.any():
        return x, rows
    if fill is None:
        r, c = np.argwhere(empty)[0]
        raise DataError(
            f"{path}: {int(empty.sum())} empty or non-finite cell(s), the first in data row "
            f"{int(rows[r]) + 1}, column {channels[c]!r}; pass --fill ffill or --fill drop "
            "(fill= in Python) to fill or drop them"
        )
    if fill == "drop":
        keep = ~empty.any(1)
        return x[keep], rows[keep]
    out = x.copy()
    for c in range(out.shape[1]):
        col, bad = out[:, c], empty[:, c]
        if bad.all():
            raise DataError(f"{path}: column {channels[c]!r} has no values")
        idx = np.where(~bad, np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        first = int(np.flatnonzero(~bad)[0])
        idx[:first] = first
        out[:, c] = col[idx]
    return out, rows
