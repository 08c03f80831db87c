"""`nld analyze`: the landscape of a checkpoint, and what it says about a data set."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from nld.analysis import dwell_lengths, many_to_one, match_labels, matched_l1
from nld.chain_split import split_warnings, stored_split
from nld.data import Dataset, HMMSpec
from nld.fitted import Fitted
from nld.fitting.separate import describe
from nld.inference import basin_labels, class_source, head_order, read_path
from nld.landscape import Analysis, analyze
from nld.model import NLDModel
from training.evaluate import chain_report, kinetics_report
from training.markdown import table_head


def _true_dwell(data: Dataset, spec: HMMSpec | None) -> np.ndarray | None:
    """Mean dwell time of each true state in steps: 1 / (1 - P_ss) from a spec, else the
    mean length of the data's complete runs."""
    if spec is not None:
        return 1.0 / (1.0 - np.diag(np.asarray(spec.transition_matrix)))
    if data.states is None:
        return None
    runs = dwell_lengths(data.states, int(data.states.max()) + 1)
    return np.array([r.mean() if len(r) else np.nan for r in runs])


@dataclass(frozen=True)
class RunAnalysis:
    """What `analyze_run` finds: the JSON-ready record, the `Analysis`, and the labels."""

    record: dict[str, Any]
    analysis: Analysis
    labels: np.ndarray | None  # [N, T] of the data analysed (None without data)


def analyze_run(
    model: NLDModel,
    fitted: Fitted,
    data: Dataset | None = None,
    *,
    spec: HMMSpec | None = None,
    fit_data: Dataset | None = None,
    seed: int = 0,
) -> RunAnalysis:
    """The analysis of `model`'s landscape, and what it says about `data` (its labels, and
    with known states: accuracy, many-to-one score, and the Kramers dwell times and
    occupancies set against the truth). The state chain over the
    minima is fitted to `fit_data` (default: `data`; no labels used)."""
    t0 = time.perf_counter()
    latents, classes = read_path(model, fitted, data.x) if data is not None else (None, None)
    encode_s = time.perf_counter() - t0
    res = analyze(model, latents, seed=seed)
    out = res.to_dict()
    out["seconds"]["encode"] = round(encode_s, 3)
    labels = None
    if data is None or latents is None:
        return RunAnalysis(out, res, labels)
    t0 = time.perf_counter()
    assert res.index is not None
    labels, source = basin_labels(
        head_order(fitted, res.minima), classes, latents, res.index.assign, class_source(fitted)
    )
    out["seconds"]["segment"] = round(time.perf_counter() - t0, 3)
    k = len(res.minima)
    seg: dict[str, Any] = {
        "labels_from": source,
        "n_sequences": data.n_sequences,
        "length": data.length,
        "time_in_basin": (np.bincount(labels.ravel(), minlength=k) / labels.size).tolist(),
        "dwell_lengths_mean": [
            float(r.mean()) if len(r) else None for r in dwell_lengths(labels, k)
        ],
    }
    if data.states is not None:
        match = match_labels(labels, data.states, k)
        truth_occ = spec.stationary() if spec is not None else data.state_frequencies()
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
    t0 = time.perf_counter()
    chain, chain_labels = chain_report(model, fitted, res.minima, data, fit_data, seed)
    out["seconds"]["chain"] = round(time.perf_counter() - t0, 3)
    if chain is not None:
        out["chain"] = chain
    out.update(kinetics_report(fitted, res.minima, chain))
    if chain is not None and data.states is not None:
        chained = match_labels(labels if chain_labels is None else chain_labels, data.states, k)
        seg.update(
            chain_accuracy_mean=chained.accuracy_mean, chain_accuracy_std=chained.accuracy_std
        )
    out["segmentation"] = seg
    return RunAnalysis(out, res, labels)


def _joined(record: dict[str, Any], keys: tuple[str, ...], spec: str) -> dict[str, str]:
    """Each list record[k] as one string, its numbers formatted by `spec`."""
    return {k: ", ".join(format(v, spec) for v in record[k]) for k in keys}


def _stopped(meta: dict[str, Any]) -> str:
    """Where the loop stopped early, for the card ("" if it ran every iteration)."""
    stop = meta.get("early_stop") or {}
    if stop.get("stopped_at") is None:
        return ""
    return (
        f" (stopped early: the held-out ELBO's last gain was at iteration {stop['best_at']}; "
        "`nld.fitting.early_stop`)"
    )


def model_card(name: str, res: dict[str, Any], command: str, meta: dict[str, Any]) -> str:
    """A model card in Markdown from `analyze_run`'s output, the checkpoint's training record
    and the command that measured it."""
    train = meta.get("train", {}).get("train", {})
    data = meta.get("data", {})
    lines = [
        f"# {name}",
        "",
        f"{res['dynamics']} NLD model, beta {res['beta']:.4f}, {len(res['minima'])} minima, "
        f"prior clock {res['clock']:.3g} (its dwell times and rates are those of the "
        "landscape run that many times faster than in training: `nld.fitting.clock`).",
        "",
        f"Trained with the preset `{meta.get('preset', '?')}` (seed {train.get('seed', '?')}, "
        f"{meta.get('iteration', '?')} iterations{_stopped(meta)}, "
        f"{meta.get('train_seconds', '?')} s on "
        f"{train.get('threads', '?')} thread(s), {meta.get('rollbacks', '?')} rollbacks) on "
        f"{data.get('n_sequences', '?')} sequences of {data.get('length', '?')} x "
        f"{data.get('dim', '?')}.",
        "",
        "Measured by:",
        "",
        "```bash",
        command,
        "```",
        "",
        *table_head(
            "minimum",
            "position",
            "E",
            "(a) sampling",
            "(b) zeroth",
            "(c) second",
            "(d) quadrature",
            "dwell, Kramers (steps)",
            "dwell, simulated (steps)",
        ),
    ]
    occ = res["occupancy"]
    for i, m in enumerate(res["minima"]):
        pos = ", ".join(f"{v:.3f}" for v in m["position"])
        est = " | ".join("-" if occ[k] is None else f"{occ[k][i]:.3f}" for k in occ)
        dwell = [res[k][i] for k in ("dwell_times", "dwell_times_simulated")]
        lines.append(
            f"| {i} | ({pos}) | {m['energy']:.3f} | {est} | "
            + " | ".join("inf" if v is None else f"{v:.1f}" for v in dwell)
            + " |"
        )
    seg = res.get("segmentation", {})
    if "accuracy_mean" in seg:
        lines += [
            "",
            f"Segmentation of the {seg['n_sequences']} test sequences (length {seg['length']}): "
            f"accuracy {seg['accuracy_mean']:.4f} +- {seg['accuracy_std']:.4f} (best one-to-one "
            f"matching), many-to-one {seg['many_to_one']:.4f}; labels from the "
            f"{seg['labels_from']}.",
            "",
            "Occupancy l1 to the truth "
            + ", ".join(f"{k} {v:.3f}" for k, v in seg["occupancy_l1"].items() if v is not None)
            + f" (truth {', '.join(f'{v:.3f}' for v in seg['occupancy_truth'])}).",
        ]
        if "dwell_times_truth" in seg:
            truth = ", ".join("-" if v is None else f"{v:.1f}" for v in seg["dwell_times_truth"])
            lines.append(f"True mean dwell times of the matched states: {truth} steps.")
    if "chain" in res:
        chain_dwell = ", ".join(f"{v:.1f}" for v in res["chain"]["dwell_steps"])
        emissions = (
            "AR(1) emissions started from the basin head's classes"
            if res["chain"].get("emissions") == "AR(1)"
            else "decoder emissions"
        )
        lines += [
            "",
            f"The hidden Markov chain over these minima (`nld.state_chain`: {emissions}, "
            f"refined by Baum-Welch, no labels; fitted to {res['chain']['fitted_to']}): dwell "
            f"times {chain_dwell} steps"
            + (
                f"; its causal filter labels with accuracy {seg['chain_accuracy_mean']:.4f}."
                if "chain_accuracy_mean" in seg
                else "."
            ),
        ]
    if "n_regimes" in res:
        groups = ", ".join(str(r) for r in res["regime_of_minimum"])
        times = ", ".join(f"{v:.1f}" for v in res["regime_timescales"])
        lines += [
            "",
            f"Regimes (metastable groups of the minima, `nld.regimes`): {res['n_regimes']}; "
            f"the regime of each minimum: {groups}; implied timescales of the chain {times} "
            "steps.",
        ]
    depths = meta.get("depths")
    if depths and not depths.get("skipped"):
        shares = _joined(depths, ("target", "mass_before", "mass_after"), ".3f")
        lines += [
            "",
            f"Depths refitted to the state chain's stationary distribution {shares['target']} "
            f"(`nld.fitting.depths`, {depths['iterations']} steps; states in the stored chain's "
            f"order): "
            + (
                f"the mass of exp(-beta E) in their basins went from {shares['mass_before']} "
                f"to {shares['mass_after']}."
                if depths.get("kept", True)
                else f"the fit did not lower its loss and was undone (basin masses "
                f"{shares['mass_before']})."
            ),
        ]
    clock = meta.get("clock")
    if clock and not clock.get("skipped"):
        steps = _joined(clock, ("chain_dwell", "dwell_before", "dwell_after"), ".1f")
        lines += [
            "",
            f"Prior clock {clock['clock']:.3g}, fitted to the state chain's dwell times on the "
            f"training data (`nld.fitting.clock`; states in the stored chain's order): chain "
            f"{steps['chain_dwell']} steps, the prior simulated "
            f"{steps['dwell_before']} before the clock and {steps['dwell_after']} with it.",
        ]
    split = stored_split(meta)
    if split:
        if not split["preferred"] and split["bic_gain"] > 0:
            verdict = "negative: the held-out sequences do not support it"
        elif not split["preferred"]:
            verdict = "negative: no sign of a merged state"
        elif split.get("merged", True):
            verdict = "positive: the data prefer one more state, see the warning"
        else:
            verdict = (
                "positive, but the halves split again: the state's observations are not one "
                "Gaussian, see the warning"
            )
        lines += [
            "",
            "Split test of the stored chain on the training data (`nld.chain_split`): the best "
            f"split of one state into two changes the BIC by {split['bic_gain']:.0f} nats"
            + (
                f" and the log-likelihood of held-out sequences by {split['held_out_gain']:.0f}"
                if "held_out_gain" in split
                else ""
            )
            + f" ({verdict}).",
        ]
    rounds = describe(meta.get("separation"))
    if rounds:
        lines += ["", *[f"{r[0].upper()}{r[1:]}." for r in rounds]]
    warnings = [*res["warnings"], *split_warnings(split)]
    if warnings:
        lines += ["", *[f"Warning: {w}" for w in warnings]]
    return "\n".join(lines) + "\n"
