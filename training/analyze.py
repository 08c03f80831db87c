"""`nld analyze`: the landscape of a checkpoint, and what it says about a data set."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nld.analysis import dwell_lengths, many_to_one, match_labels, matched_l1
from nld.data import Dataset, HMMSpec
from nld.inference import readout_path
from nld.landscape import Analysis, analyze
from nld.model import NLDModel


def _true_dwell(data: Dataset, spec: HMMSpec | None) -> np.ndarray | None:
    """Mean dwell time of each true state in steps: 1 / (1 - P_ss) from a spec, else the
    mean length of the data's complete runs."""
    if spec is not None:
        return 1.0 / (1.0 - np.diag(np.asarray(spec.transition_matrix)))
    if data.states is None:
        return None
    runs = dwell_lengths(data.states, int(data.states.max()) + 1)
    return np.array([r.mean() if len(r) else np.nan for r in runs])


def analyze_run(
    model: NLDModel,
    data: Dataset | None = None,
    *,
    spec: HMMSpec | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], Analysis, np.ndarray | None]:
    """The analysis as JSON-ready data, the `Analysis` itself, and the labels [N, T] of
    `data` (None without data). With known states: accuracy, many-to-one score, and the
    Kramers dwell times and occupancies set against the truth."""
    t0 = time.perf_counter()
    latents = readout_path(model, data.x) if data is not None else None
    encode_s = time.perf_counter() - t0
    res = analyze(model, latents, seed=seed)
    out = res.to_dict()
    out["seconds"]["encode"] = round(encode_s, 3)
    labels = None
    if data is None or latents is None:
        return out, res, labels
    t0 = time.perf_counter()
    assert res.index is not None
    labels = res.index.assign(latents)
    out["seconds"]["segment"] = round(time.perf_counter() - t0, 3)
    k = len(res.minima)
    seg: dict[str, Any] = {
        "n_sequences": data.n_sequences,
        "length": data.length,
        "time_in_basin": (np.bincount(labels.ravel(), minlength=k) / labels.size).tolist(),
        "dwell_lengths_mean": [
            float(r.mean()) if len(r) else None for r in dwell_lengths(labels, k)
        ],
    }
    if data.states is not None:
        match = match_labels(labels, data.states, k)
        truth_occ = (
            spec.stationary()
            if spec is not None
            else np.bincount(data.states.ravel()) / data.states.size
        )
        seg.update(
            accuracy_mean=match.accuracy_mean,
            accuracy_std=match.accuracy_std,
            many_to_one=many_to_one(labels, data.states),
            mapping={str(a): b for a, b in match.mapping.items()},
            occupancy_truth=truth_occ.tolist(),
            occupancy_l1={
                name: (
                    None if est is None else matched_l1(np.asarray(est), truth_occ, match.mapping)
                )
                for name, est in res.occupancy.items()
            },
        )
        true_dwell = _true_dwell(data, spec)
        if true_dwell is not None:
            seg["dwell_times_truth"] = [
                float(true_dwell[match.mapping[i]]) if i in match.mapping else None
                for i in range(k)
            ]
    out["segmentation"] = seg
    return out, res, labels
