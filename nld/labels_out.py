"""Labels out: what a model says about recordings, one row per step, as a table.

Columns: `sequence` (a table's sequence id, else the recording's index), `step` (its index in
the recording), `time` (the time stamps, where the recordings had them), `label` (an index of
the model's minima), `regime` (the label's regime, nld.regimes, where the model has a chain
over its minima), `p_0` ... `p_{K-1}` (each state's probability, where the model gives them)
and `z_0` ... `z_{d-1}` (the latent position). Or, for those who want change points rather
than steps, one row per run of equal labels (`segment_table`): `sequence`, `start`, `end`
(exclusive), `steps`, `state`, `regime`, `start_time` / `end_time` (the time stamps of its
first and last step) and `mean_probability` (of its state over its steps). Written by its suffix as
CSV, TSV, Parquet or NPZ, atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from nld.data.recordings import Recordings
from nld.errors import DataError
from nld.io import write_bytes

FORMATS = (".csv", ".tsv", ".parquet", ".npz")


def step_table(
    recs: Recordings,
    labels: list[np.ndarray],
    latent: list[np.ndarray],
    proba: list[np.ndarray] | None = None,
    regime_of_state: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The columns of the per-step table (per recording: labels [T_i], latent [T_i, d],
    proba [T_i, K]; the regime of each state [K])."""
    ids = recs.ids if recs.ids is not None else list(range(len(recs.arrays)))
    out: dict[str, np.ndarray] = {
        "sequence": np.concatenate(
            [np.full(len(a), i) for a, i in zip(recs.arrays, ids, strict=True)]
        ),
        "step": np.concatenate([np.arange(len(a)) for a in recs.arrays]),
    }
    if recs.times is not None:
        out["time"] = np.concatenate(recs.times)
    out["label"] = np.concatenate(labels).astype(np.int64)
    if regime_of_state is not None:
        out["regime"] = np.asarray(regime_of_state, dtype=np.int64)[out["label"]]
    if proba is not None:
        p = np.concatenate(proba)
        out.update({f"p_{k}": p[:, k] for k in range(p.shape[1])})
    z = np.concatenate(latent)
    out.update({f"z_{j}": z[:, j] for j in range(z.shape[1])})
    return out


def segment_table(
    recs: Recordings,
    labels: list[np.ndarray],
    proba: list[np.ndarray] | None = None,
    regime_of_state: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The columns of the table of runs: one row per maximal run of one label."""
    ids = recs.ids if recs.ids is not None else list(range(len(recs.arrays)))
    rows: dict[str, list[Any]] = {k: [] for k in ("sequence", "start", "end", "steps", "state")}
    extra: dict[str, list[Any]] = {}
    for n, lab in enumerate(labels):
        cut = np.flatnonzero(np.diff(lab)) + 1
        starts, ends = np.r_[0, cut], np.r_[cut, len(lab)]
        rows["sequence"] += [ids[n]] * len(starts)
        rows["start"] += starts.tolist()
        rows["end"] += ends.tolist()
        rows["steps"] += (ends - starts).tolist()
        rows["state"] += lab[starts].tolist()
        if regime_of_state is not None:
            extra.setdefault("regime", []).extend(np.asarray(regime_of_state)[lab[starts]])
        if recs.times is not None:
            extra.setdefault("start_time", []).extend(recs.times[n][starts])
            extra.setdefault("end_time", []).extend(recs.times[n][ends - 1])
        if proba is not None:
            mine = proba[n][np.arange(len(lab)), lab]
            means = [float(mine[s:e].mean()) for s, e in zip(starts, ends, strict=True)]
            extra.setdefault("mean_probability", []).extend(means)
    return {k: np.asarray(v) for k, v in {**rows, **extra}.items()}


def write_steps(path: str | os.PathLike[str], columns: dict[str, Any]) -> None:
    """Write the table by its suffix (DataError naming the formats for another)."""
    p = Path(path)
    if p.suffix not in FORMATS:
        raise DataError(f"{p}: labels are written as {', '.join(FORMATS)}")
    buf = io.BytesIO()
    if p.suffix == ".npz":
        np.savez_compressed(buf, **columns)
    else:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        table = pa.table(columns)
        if p.suffix == ".parquet":
            pq.write_table(table, buf)
        else:
            delimiter = "\t" if p.suffix == ".tsv" else ","
            pcsv.write_csv(table, buf, pcsv.WriteOptions(delimiter=delimiter))
    write_bytes(p, buf.getvalue())
