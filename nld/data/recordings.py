"""What users hand the estimator, as recordings: one recording [T, D], a batch [N, T, D], a
list of recordings of different lengths [T_i, D], a pandas DataFrame (one recording: its
numeric columns are the channels, time columns are left out), or the path of a data file:
`.npz` / `.npy` (a batch, `nld.data.dataset`) or a `.csv`, `.tsv` or `.parquet` table (one
recording, or several with a sequence column: `nld.data.tables`).

Training takes equal-length sequences [N, T, D] (`Dataset`); `training_set` cuts recordings
of other lengths into pieces (see there). Outputs per step go back in the caller's shape
(`Recordings.restore`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nld.data.dataset import Dataset, load
from nld.data.tables import TABLES, TableOptions, read_table
from nld.errors import DataError

PIECE_WINDOWS = 4  # a training piece holds this many training windows (at most)


@dataclass(frozen=True)
class Recordings:
    arrays: list[np.ndarray]  # float32 [T_i, D]
    kind: str  # "one" ([T, D] or a DataFrame), "batch" ([N, T, D] or a file), "list"
    columns: list[str] | None = None  # channel names, from a table or a DataFrame
    states: list[np.ndarray] | None = None  # known states per recording [T_i], if given
    times: list[np.ndarray] | None = None  # time stamps per recording, from a table
    ids: list[Any] | None = None  # per recording: its value in a table's sequence column

    @property
    def dim(self) -> int:
        return int(self.arrays[0].shape[1])

    @property
    def steps(self) -> int:
        return sum(len(a) for a in self.arrays)

    def restore(self, per_recording: list[Any]) -> Any:
        """Per-step outputs, one array per recording, in the shape the recordings came in:
        [T, ...] for one, [N, T, ...] for a batch, a list for a list."""
        if self.kind == "one":
            return per_recording[0]
        if self.kind == "batch":
            return np.stack(per_recording)
        return per_recording


def as_recordings(x: Any, *, where: str = "X", table: TableOptions | None = None) -> Recordings:
    """Recordings from an array, a list of arrays, a DataFrame or a path (DataError if the
    input is none of these, or holds no finite real numbers in a consistent shape); `table`
    says how to read a table file."""
    if isinstance(x, Recordings):
        return x
    if isinstance(x, str | os.PathLike):
        return read_file(Path(x), table)
    if isinstance(x, Dataset):
        states = None if x.states is None else list(x.states)
        return Recordings(list(x.x.astype(np.float32, copy=False)), "batch", states=states)
    if hasattr(x, "select_dtypes") and hasattr(x, "columns"):
        return _from_frame(x, where)
    if isinstance(x, list | tuple) and _nested_numbers(x):
        x = np.asarray(x)  # one recording or a batch, as nested lists
    if isinstance(x, list | tuple):
        if not x:
            raise DataError(f"{where}: an empty list; give one or more recordings [T, D]")
        arrays = [_numeric(a, f"{where}[{i}]") for i, a in enumerate(x)]
        for i, a in enumerate(arrays):
            if a.ndim != 2:
                raise DataError(f"{where}[{i}]: a recording is [T, D], got shape {a.shape}")
        recs = Recordings(arrays, "list")
    else:
        arr = _numeric(x, where)
        if arr.ndim == 2:
            recs = Recordings([arr], "one")
        elif arr.ndim == 3:
            recs = Recordings(list(arr), "batch")
        else:
            raise DataError(
                f"{where}: give one recording [T, D], a batch [N, T, D] or a list of "
                f"recordings; got shape {arr.shape}"
            )
    _check(recs, where)
    return recs


def read_file(path: Path, table: TableOptions | None = None) -> Recordings:
    """The recordings of a data file, by its suffix."""
    if path.suffix in TABLES:
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        t = read_table(path, table)
        kind = "list" if table is not None and table.sequence_column else "one"
        ids = t.ids if kind == "list" else None
        return Recordings(t.arrays, kind, t.columns, t.states, t.times, ids)
    if path.suffix not in (".npz", ".npy"):
        raise DataError(f"{path}: not a data file nld reads (.npz, .npy, {', '.join(TABLES)})")
    data = load(path)
    return Recordings(
        list(data.x), "batch", states=None if data.states is None else list(data.states)
    )


def read_for_model(
    path: str | os.PathLike[str],
    obs_dim: int,
    trained_on: list[str] | None = None,
    table: TableOptions | None = None,
    *,
    where: str | None = None,
) -> Recordings:
    """The recordings of a data file for a model of `obs_dim` channels: a table's channels
    are the columns the model was trained on (`trained_on`, its `meta.data.columns`) unless
    `table` names others; DataError when their number is not the model's. `where` names the
    file in messages (default: its path)."""
    options = table or TableOptions()
    if options.columns is None and trained_on:
        options = dataclasses.replace(options, columns=list(trained_on))
    where = where or str(path)
    recs = as_recordings(path, where=where, table=options)
    if recs.dim != obs_dim:
        names = f" ({', '.join(trained_on)})" if trained_on else ""
        raise DataError(
            f"{where}: observations have D = {recs.dim}, the model expects D = {obs_dim}{names}"
        )
    return recs


def training_set(recs: Recordings, window: int | None) -> Dataset:
    """Equal-length sequences to train on. A batch is taken as it is. Recordings of other
    lengths are cut into pieces of L = min(shortest recording, PIECE_WINDOWS * window) steps
    (the shortest recording's length without a window), the last piece of each ending at its
    recording's end, so that no step is left out (it overlaps the piece before it)."""
    flat = np.concatenate(recs.arrays)
    constant = np.flatnonzero(flat.std(0) == 0)
    if len(constant):
        names = [recs.columns[c] if recs.columns else f"channel {c}" for c in constant]
        raise DataError(
            f"{', '.join(names)}: constant, so it cannot be standardised (divided by its "
            "standard deviation of 0); leave it out"
        )
    if recs.kind == "batch":
        return Dataset(np.stack(recs.arrays), _stacked(recs.states))
    shortest = min(len(a) for a in recs.arrays)
    n = shortest if window is None else min(shortest, PIECE_WINDOWS * window)
    if n < 2:
        raise DataError("a recording has 1 step: training needs at least 2 per recording")
    pieces: list[np.ndarray] = []
    for a in recs.arrays:
        starts = list(range(0, len(a) - n + 1, n))
        if starts[-1] + n < len(a):
            starts.append(len(a) - n)
        pieces.extend(a[s : s + n] for s in starts)
    return Dataset(np.stack(pieces))


LABEL_VALUES = 16  # a channel of at most this many whole-number values looks like labels


def label_warning(recs: Recordings) -> str | None:
    """A warning naming the channels that look like known states rather than measurements
    (whole numbers, at most LABEL_VALUES of them), or None. Training on the states themselves
    gives a model that only seems right; a table's states go in its states column, which is
    never a channel."""
    flat = np.concatenate(recs.arrays)
    names = []
    for j in range(flat.shape[1]):
        values = np.unique(flat[:, j])
        if len(values) <= LABEL_VALUES and np.array_equal(values, np.round(values)):
            names.append(recs.columns[j] if recs.columns else f"channel {j}")
    if not names:
        return None
    return (
        f"{', '.join(names)}: only a few whole-number values, like labels. If it holds known "
        "states, name it with --states-column (states_column= in Python): the model would "
        "otherwise take the states as an input"
    )


def evaluation_set(recs: Recordings, where: str = "data") -> Dataset:
    """The recordings as they are, with their known states, for the commands that measure a
    model on them (`nld evaluate`, `nld analyze`, `nld plot`): one recording, or several of
    one length (DataError otherwise: cutting them would restart the encoder mid-recording)."""
    lengths = sorted({len(a) for a in recs.arrays})
    if len(lengths) > 1:
        raise DataError(
            f"{where}: recordings of different lengths ({lengths[0]} to {lengths[-1]} steps); "
            "this command takes recordings of one length (label any recordings with "
            "`nld segment`)"
        )
    return Dataset(np.stack(recs.arrays), _stacked(recs.states))


def _stacked(states: list[np.ndarray] | None) -> np.ndarray | None:
    return None if states is None else np.stack(states).astype(np.int64)


def _nested_numbers(x: list[Any] | tuple[Any, ...]) -> bool:
    """Whether x is a rectangular array of numbers as nested Python lists ([T, D] or
    [N, T, D]); a list of arrays is a list of recordings."""
    if any(isinstance(e, np.ndarray) or hasattr(e, "columns") for e in x):
        return False
    try:
        arr = np.asarray(x)
    except ValueError:  # ragged
        return False
    return arr.ndim in (2, 3) and arr.dtype.kind in "iuf"


def _numeric(a: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except ValueError as e:  # ragged nested lists
        raise DataError(f"{where}: not an array of numbers ({e})") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise DataError(f"{where}: must be real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def _from_frame(frame: Any, where: str) -> Recordings:
    """A DataFrame's numeric columns, in order, as one recording; datetime columns are
    time stamps, not channels, and are left out."""
    repeated = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
    if repeated:
        raise DataError(f"{where}: column name(s) {', '.join(repeated)} appear more than once")
    channels = [c for c in frame.columns if not _is_time(frame[c])]
    bad = [str(c) for c in channels if c not in frame.select_dtypes("number").columns]
    if bad:
        raise DataError(f"{where}: column(s) {', '.join(bad)} are not numeric")
    if not channels:
        raise DataError(f"{where}: the table has no numeric columns")
    recs = Recordings(
        [frame[channels].to_numpy(dtype=np.float32)], "one", columns=[str(c) for c in channels]
    )
    _check(recs, where)
    return recs


def _is_time(column: Any) -> bool:
    kind = getattr(column.dtype, "kind", "")
    return kind in "mM"


def _check(recs: Recordings, where: str) -> None:
    dims = {a.shape[1] for a in recs.arrays}
    if len(dims) > 1:
        raise DataError(f"{where}: recordings have different numbers of channels {sorted(dims)}")
    for i, a in enumerate(recs.arrays):
        name = where if recs.kind == "one" else f"{where}[{i}]"
        if 0 in a.shape:
            raise DataError(f"{name}: empty, shape {a.shape}")
        bad = ~np.isfinite(a)
        if bad.any():
            t, d = np.argwhere(bad)[0]
            channel = recs.columns[d] if recs.columns else f"channel {d}"
            raise DataError(
                f"{name}: {int(bad.sum())} values are NaN or infinite (first at step {t}, "
                f"{channel})"
            )
