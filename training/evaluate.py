"""Evaluation of a checkpoint on a data set: minima, segmentation accuracy, occupancies."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster.vq import kmeans2

from nld.analysis import (
    Minimum,
    match_labels,
    matched_l1,
    model_energy,
    quadrature,
    second_order,
    zeroth_order,
)
from nld.data import Dataset
from nld.fitted import Fitted
from nld.inference import (
    chain_classes,
    class_reading,
    find_landscape,
    head_order,
    landscape_labels,
    read_all,
)
from nld.model import NLDModel
from nld.regimes import regimes
from nld.state_chain import TooManyDimensions, fit_state_chain


def chain_report(
    model: NLDModel,
    fitted: Fitted,
    minima: list[Minimum],
    data: Dataset,
    fit_data: Dataset | None,
    seed: int = 0,
) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """The state chain's summary, its states in the order of `minima`, and its labels of
    `data` (None where they are the model's own labels): the model's own chain (fitted in
    training, `fitted.chain`) when its states are these minima, else a chain over `minima`
    fitted to `fit_data` (default `data`; no labels used); (None, None) above MAX_DIM observed
    dimensions."""
    order = head_order(fitted, minima) if fitted.chain is not None else None
    if fitted.chain is not None and order is not None:
        chain = fitted.chain.reordered(np.argsort(order))
        return {"fitted_to": "the training data (stored with the model)", **chain.summary()}, None
    positions = np.stack([m.position for m in minima])
    try:
        chain = fit_state_chain(
            model.emissions(positions), (fit_data or data).x, positions, seed=seed
        )
    except TooManyDimensions:
        return None, None
    fitted_to = "the evaluated data" if fit_data is None else "fit_data"
    return {"fitted_to": fitted_to, **chain.summary()}, chain.labels(data.x)


def kinetics_report(
    fitted: Fitted, minima: list[Minimum], chain: dict[str, Any] | None
) -> dict[str, Any]:
    """The minima's regimes (nld.regimes) by the kinetics of the model's chain over them: the
    state chain's (`chain`, chain_report's summary) or, where the model kept none, its head
    chain's (`head_chain`, its states in the order of `minima`); {} without either."""
    out: dict[str, Any] = {}
    kinetics = chain
    order = head_order(fitted, minima)
    if fitted.chain is None and fitted.head_chain is not None and order is not None:
        kinetics = out["head_chain"] = fitted.head_chain.reordered(np.argsort(order)).summary()
    if kinetics is None:
        return out
    groups = regimes(np.asarray(kinetics["transition_matrix"]))
    return out | {
        "n_regimes": groups.count,
        "regime_of_minimum": groups.of_state.tolist(),
        "regime_timescales": groups.timescales.tolist(),
    }


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` measures: a JSON-ready record, and the labels it scored."""

    record: dict[str, Any]
    labels: np.ndarray  # [N, T]


def evaluate(
    model: NLDModel,
    fitted: Fitted,
    data: Dataset,
    *,
    true_occupancy: np.ndarray | None = None,
    n_states: int | None = None,
    fit_data: Dataset | None = None,
    seed: int = 0,
) -> Evaluation:
    """Metrics of `model` (with what was `fitted` beside it) on `data`. Occupancies are
    compared with `true_occupancy` when given, else with the empirical frequencies of
    `data.states`. The state chain over the minima (nld.state_chain) is fitted to `fit_data`
    (default: `data` itself; no labels used)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    latents, head_log_p = read_all(model, fitted, data.x)  # one pass of the encoder
    head_classes = None if head_log_p is None else head_log_p.argmax(-1)
    classes = chain_classes(fitted, data.x, head_classes)
    timings["encode_seconds"] = time.perf_counter() - t0
    out: dict[str, Any] = {"n_sequences": data.n_sequences, "length": data.length}
    if not model.cfg.has_energy:
        # A generic drift has no basins: cluster the latents instead (the baseline's best case).
        k = n_states or (int(data.states.max()) + 1 if data.states is not None else 3)
        _, labels = kmeans2(
            latents.reshape(-1, latents.shape[-1]).numpy().astype(np.float64),
            k,
            seed=seed,
            minit="++",
        )
        labels = labels.reshape(latents.shape[:2])
        out["labels_from"] = "kmeans"
    else:
        t0 = time.perf_counter()
        land = find_landscape(model, latents, seed=seed)
        timings["minima_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        labels, source = landscape_labels(model, fitted, land, latents, classes)
        timings["segment_seconds"] = time.perf_counter() - t0
        occ_b = zeroth_order(land.minima, land.beta)
        occ_c = second_order(land.minima, land.beta)
        occ_d = None
        if model.cfg.latent_dim <= 3 and land.minima:
            # The box of the encoded points, widened by its size on each side.
            flat = latents.reshape(-1, model.cfg.latent_dim).numpy()
            lo, hi = flat.min(0), flat.max(0)
            t0 = time.perf_counter()
            occ_d = quadrature(
                model_energy(model), land.minima, land.beta, 2 * lo - hi, 2 * hi - lo
            )
            timings["quadrature_seconds"] = time.perf_counter() - t0
        out.update(
            labels_from=source,
            n_minima=len(land.minima),
            beta=land.beta,
            minima=[
                {
                    "position": m.position.tolist(),
                    "energy": m.energy,
                    "hessian_eigenvalues": m.hessian_eigenvalues.tolist(),
                }
                for m in land.minima
            ],
            occupancy_zeroth=occ_b.tolist(),
            occupancy_second=occ_c.tolist(),
            occupancy_quadrature=None if occ_d is None else occ_d.tolist(),
            occupancy_segmented=(
                np.bincount(labels.ravel(), minlength=len(land.minima)) / labels.size
            ).tolist(),
        )
        if land.minima:
            t0 = time.perf_counter()
            chain, chain_labels = chain_report(model, fitted, land.minima, data, fit_data, seed)
            if chain is not None:
                out["chain"] = chain
            out.update(kinetics_report(fitted, land.minima, chain))
            timings["chain_seconds"] = time.perf_counter() - t0
    if data.states is not None:
        n_labels = out.get("n_minima")
        match = match_labels(labels, data.states, n_labels)
        out.update(
            accuracy_mean=match.accuracy_mean,
            accuracy_std=match.accuracy_std,
            mapping={str(k): v for k, v in match.mapping.items()},
        )
        if classes is not head_classes:  # the chain labels: what the head alone would
            head_labels, _ = landscape_labels(model, fitted, land, latents, head_classes)
            out["head_accuracy_mean"] = match_labels(
                head_labels, data.states, n_labels
            ).accuracy_mean
        if model.cfg.has_energy and head_classes is not None:
            # offline: the chain's smoothed probabilities, from the whole sequence
            smoothed = class_reading(fitted, data.x, head_log_p, online=False)
            if smoothed is not None:
                offline, _ = landscape_labels(model, fitted, land, latents, smoothed[0])
                found = match_labels(offline, data.states, n_labels)
                out.update(
                    offline_accuracy_mean=found.accuracy_mean,
                    offline_accuracy_std=found.accuracy_std,
                )
        if "n_regimes" in out:  # the labels' regimes, matched to the states as the labels are
            of = np.asarray(out["regime_of_minimum"])
            regime = match_labels(of[labels], data.states, out["n_regimes"])
            out["regime_accuracy_mean"] = regime.accuracy_mean
        if "chain" in out:
            chained = (
                match if chain_labels is None else match_labels(chain_labels, data.states, n_labels)
            )
            out.update(
                chain_accuracy_mean=chained.accuracy_mean,
                chain_accuracy_std=chained.accuracy_std,
            )
        if model.cfg.has_energy:
            truth = (
                np.asarray(true_occupancy, dtype=float)
                if true_occupancy is not None
                else data.state_frequencies()
            )
            out["occupancy_truth"] = truth.tolist()
            for key in ("zeroth", "second", "quadrature"):
                if out[f"occupancy_{key}"] is None:
                    continue
                out[f"occupancy_{key}_l1"] = matched_l1(
                    np.asarray(out[f"occupancy_{key}"]), truth, match.mapping
                )
    out.update({k: round(v, 3) for k, v in timings.items()})
    return Evaluation(out, labels)
