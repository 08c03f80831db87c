"""A model's landscape analysis on disk (`analysis.safetensors`), so that it is computed once.

The file holds every array of an `nld.landscape.Analysis` (minima and saddles with their
Hessians and paths, rates, dwell times, and the basin index's reference points and their
basins) and, in its metadata, the rest as JSON together with what it belongs to: the SHA-256
of the model's weights file and `ANALYSIS_VERSION`. `load` refuses a file that belongs to
other weights or to another version of the analysis (`StaleAnalysis`), so a stale analysis is
recomputed, never served. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as np_save

from nld.analysis import BasinIndex, Minimum, Saddle, model_energy
from nld.errors import CheckpointError, NLDError
from nld.io import write_bytes
from nld.landscape import Analysis
from nld.model import NLDModel

FORMAT = "nld-analysis"
FILE = "analysis.safetensors"
# Raise it whenever a change to the analysis changes what it computes: every stored analysis
# is then recomputed (by the service, or `nld analyze`) instead of served.
ANALYSIS_VERSION = 1


class StaleAnalysis(NLDError):
    """The stored analysis belongs to other weights or to another version of the analysis."""


def save(path: str | os.PathLike[str], analysis: Analysis, weights_sha256: str) -> None:
    """Write `analysis` (of the weights whose SHA-256 is `weights_sha256`) atomically."""
    if analysis.index is None:
        raise ValueError("an analysis without its basin index cannot be stored")
    index = analysis.index
    arrays: dict[str, np.ndarray] = {
        "minima.position": np.stack([m.position for m in analysis.minima]),
        "minima.energy": np.array([m.energy for m in analysis.minima]),
        "minima.hessian": np.stack([m.hessian for m in analysis.minima]),
        "minima.hessian_eigenvalues": np.stack([m.hessian_eigenvalues for m in analysis.minima]),
        "gamma": analysis.gamma,
        "rates": analysis.rates,
        "dwell_steps": analysis.dwell_steps,
        "dwell_simulated": analysis.dwell_simulated,
        "transitions_simulated": analysis.transitions_simulated.astype(np.int64),
        "index.labels": index.labels_.astype(np.int32),
    }
    if analysis.mass is not None:
        arrays["mass"] = analysis.mass
    for i, s in enumerate(analysis.saddles):
        for name in ("position", "hessian", "hessian_eigenvalues", "path", "path_energy"):
            arrays[f"saddle.{i}.{name}"] = np.asarray(getattr(s, name), dtype=np.float64)
    if index.box_ is not None:  # a grid: rebuilt from its box
        arrays["index.lo"], arrays["index.hi"] = index.box_[0], index.box_[1]
    else:
        arrays["index.reference"] = index.reference_
    record = {
        "dynamics": analysis.dynamics,
        "beta": analysis.beta,
        "clock": analysis.clock,
        "dt": analysis.dt,
        "occupancy": analysis.occupancy,
        "occupancy_error": analysis.occupancy_error,
        "saddles": [
            {"pair": list(s.pair), "energy": s.energy, "barrier_top_ratio": top}
            for s, top in zip(analysis.saddles, analysis.barrier_tops, strict=True)
        ],
        "warnings": analysis.warnings,
        "seconds": analysis.seconds,
        "index": {"k": index.k, "grid_n": None if index.box_ is None else index.box_[2]},
    }
    metadata = {
        "format": FORMAT,
        "analysis_version": str(ANALYSIS_VERSION),
        "weights_sha256": weights_sha256,
        "analysis": json.dumps(record),
    }
    contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    write_bytes(path, np_save(contiguous, metadata=metadata))


def _read(
    path: str | os.PathLike[str], *, arrays: bool = True
) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The metadata and (unless `arrays` is false) the arrays of one opening of the file."""
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            return meta, {k: f.get_tensor(k) for k in f.keys()} if arrays else {}  # noqa: SIM118
    except (OSError, SafetensorError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable stored analysis ({e})") from None


def check(path: str | os.PathLike[str], weights_sha256: str) -> None:
    """Raise `StaleAnalysis` unless the file at `path` is an analysis of these weights by this
    version of the analysis (its metadata alone is read)."""
    _check(path, _read(path, arrays=False)[0], weights_sha256)


def _check(path: str | os.PathLike[str], meta: dict[str, str], weights_sha256: str) -> None:
    p = {k: meta.get(k, "") for k in ("format", "analysis_version", "weights_sha256")}
    if p["format"] != FORMAT:
        raise StaleAnalysis(f"{path}: not an nld analysis (no format {FORMAT!r})")
    if p["analysis_version"] != str(ANALYSIS_VERSION):
        raise StaleAnalysis(
            f"{path}: made by analysis version {p['analysis_version'] or '?'}, this is "
            f"version {ANALYSIS_VERSION}"
        )
    if p["weights_sha256"] != weights_sha256:
        raise StaleAnalysis(f"{path}: the analysis of other weights")


def load(path: str | os.PathLike[str], model: NLDModel, weights_sha256: str) -> Analysis:
    """The stored analysis of `model` (whose weights file has SHA-256 `weights_sha256`), with
    its basin index rebuilt from the stored basins (no gradient flow)."""
    meta, arrays = _read(path)
    _check(path, meta, weights_sha256)
    try:
        record: dict[str, Any] = json.loads(meta["analysis"])
        minima = [
            Minimum(
                position=arrays["minima.position"][i],
                energy=float(arrays["minima.energy"][i]),
                hessian_eigenvalues=arrays["minima.hessian_eigenvalues"][i],
                hessian=arrays["minima.hessian"][i],
            )
            for i in range(len(arrays["minima.energy"]))
        ]
        saddles = [
            Saddle(
                pair=(int(s["pair"][0]), int(s["pair"][1])),
                position=arrays[f"saddle.{i}.position"],
                energy=float(s["energy"]),
                hessian_eigenvalues=arrays[f"saddle.{i}.hessian_eigenvalues"],
                hessian=arrays[f"saddle.{i}.hessian"],
                path=arrays[f"saddle.{i}.path"],
                path_energy=arrays[f"saddle.{i}.path_energy"],
            )
            for i, s in enumerate(record["saddles"])
        ]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: corrupt or incomplete stored analysis ({e})") from None
    if minima[0].position.shape != (model.cfg.latent_dim,):
        raise StaleAnalysis(f"{path}: minima of dimension {minima[0].position.shape}")
    energy = model_energy(model)
    labels, grid_n = arrays["index.labels"], record["index"]["grid_n"]
    try:
        if grid_n is not None:
            index = BasinIndex.on_grid(
                energy, minima, arrays["index.lo"], arrays["index.hi"], grid_n, labels=labels
            )
        else:
            index = BasinIndex(
                energy, minima, arrays["index.reference"], k=record["index"]["k"], labels=labels
            )
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt stored basin index ({e})") from None
    return Analysis(
        dynamics=record["dynamics"],
        beta=float(record["beta"]),
        clock=float(record["clock"]),
        gamma=arrays["gamma"],
        mass=arrays.get("mass"),
        dt=float(record["dt"]),
        minima=minima,
        occupancy=record["occupancy"],
        occupancy_error=record["occupancy_error"],
        saddles=saddles,
        barrier_tops=[float(s["barrier_top_ratio"]) for s in record["saddles"]],
        rates=arrays["rates"],
        dwell_steps=arrays["dwell_steps"],
        dwell_simulated=arrays["dwell_simulated"],
        transitions_simulated=arrays["transitions_simulated"],
        warnings=list(record["warnings"]),
        index=index,
        seconds=dict(record["seconds"]),
    )
