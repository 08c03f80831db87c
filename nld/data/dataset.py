"""Time-series data sets on disk.

`.npz` with `x` float [N, T, D] and optional `states` int [N, T], or a bare `.npy` [N, T, D].
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nld.errors import DataError
from nld.io import atomic_write


@dataclass(frozen=True)
class Dataset:
    """Observations `x` float32 [N, T, D] and, where known, hidden `states` int64 [N, T]."""

    x: np.ndarray
    states: np.ndarray | None = None

    def __post_init__(self) -> None:
        validate(self.x, self.states)

    @property
    def n_sequences(self) -> int:
        return int(self.x.shape[0])

    @property
    def length(self) -> int:
        return int(self.x.shape[1])

    @property
    def dim(self) -> int:
        return int(self.x.shape[2])

    def state_frequencies(self, n_states: int | None = None) -> np.ndarray:
        """The fraction of steps spent in each hidden state (needs `states`)."""
        if self.states is None:
            raise ValueError("the data set has no hidden states")
        return np.bincount(self.states.ravel(), minlength=n_states or 0) / self.states.size


def validate(x: np.ndarray, states: np.ndarray | None = None, *, where: str = "data") -> None:
    """Raise DataError naming the first problem with `x` (and `states`)."""
    if x.dtype == object:
        raise DataError(f"{where}: `x` is ragged or not numeric (dtype object); pad to [N, T, D]")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{where}: `x` must be real numbers, got dtype {x.dtype}")
    if x.ndim != 3:
        raise DataError(f"{where}: `x` must have rank 3 [N, T, D], got shape {x.shape}")
    if 0 in x.shape:
        raise DataError(f"{where}: `x` is empty, shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        n, t, d = np.argwhere(bad)[0]
        raise DataError(
            f"{where}: `x` has {int(bad.sum())} non-finite values (first at sequence {n}, "
            f"step {t}, dim {d})"
        )
    if states is None:
        return
    if states.dtype == object or not np.issubdtype(states.dtype, np.integer):
        raise DataError(f"{where}: `states` must be integers, got dtype {states.dtype}")
    if states.shape != x.shape[:2]:
        raise DataError(
            f"{where}: `states` has shape {states.shape} but `x` has [N, T] = {x.shape[:2]}"
        )
    if states.min() < 0:
        raise DataError(f"{where}: `states` has negative labels (min {states.min()})")


def load(path: str | os.PathLike[str], *, dim: int | None = None) -> Dataset:
    """Load and validate a data set; `dim` checks the observation dimension a model expects."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    try:
        if p.suffix == ".npy":
            x, states = np.load(p, allow_pickle=False), None
        else:
            with np.load(p, allow_pickle=False) as f:
                if "x" not in f.files:
                    raise DataError(f"{p}: no array `x` in the file (found {sorted(f.files)})")
                x = f["x"]
                states = f["states"] if "states" in f.files else None
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as e:
        if "pickle" in str(e):  # numpy's advice (to load it unsafely) is not ours to give
            why = "it holds Python objects, and nld reads arrays of numbers only"
        else:
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        formats = ".npz, .npy" + (
            "" if p.suffix in (".npz", ".npy") else "; tables: .csv, .tsv, .parquet"
        )
        raise DataError(f"{p}: not a readable data file ({why}; nld reads {formats})") from None
    validate(x, states, where=str(p))
    if dim is not None and x.shape[2] != dim:
        raise DataError(f"{p}: observations have D = {x.shape[2]}, the model expects D = {dim}")
    return Dataset(
        x.astype(np.float32, copy=False), None if states is None else states.astype(np.int64)
    )


def save(path: str | os.PathLike[str], data: Dataset) -> None:
    """Write `data` as .npz, atomically."""
    arrays = {"x": data.x} if data.states is None else {"x": data.x, "states": data.states}

    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]
