"""The `default` preset on data from a known Langevin process (`nld.data.wells`): trajectories
in a potential of Gaussian wells, seen through a random linear map with noise, whose hidden
states are the wells (milestoning). Unlike the HMM cases of bench/unseen.py, here the data
*are* Langevin dynamics, so the learned landscape has a truth to meet: the number of wells,
the mass of each basin, and each state's mean dwell time, against Kramers' and the simulated
prior's. Rows from before the clock stage (nld.fitting.clock) have no `clock` (1 in the table).

    python bench/wells.py --cases 0 1 2 3 [--threads 2] [--set ... --tag NAME]
    python bench/wells.py --table

Rows go to bench/results/wells.jsonl (cases already there are skipped); runs to runs/wells/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from record import add_variant_options, append_row, case_parser, trained, variant_of

from nld.data import Dataset
from nld.data.wells import WellsSpec, random_wells, sample_wells
from nld.io import read_jsonl
from training.markdown import table_head

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "wells.jsonl"

# (wells, D, latent dimension of the truth, length, sequences)
CASES: list[tuple[int, int, int, int, int]] = [
    (2, 4, 2, 200, 300),
    (3, 6, 2, 150, 400),
    (4, 10, 2, 200, 400),
    (5, 8, 3, 200, 400),
]


def case_spec(case: int) -> WellsSpec:
    k, dim, latent, _, _ = CASES[case]
    return random_wells(k, dim, seed=200 + case, latent_dim=latent)


def _ratios(model_dwell: list, truth: list) -> list[float | None]:
    return [
        None if m is None or t is None else round(m / t, 3)
        for m, t in zip(model_dwell, truth, strict=True)
    ]


def oracle_accuracy(spec: WellsSpec, test_set: Dataset) -> float:
    """Accuracy of an online labeller that knows the truth: each record's z estimated from x
    by least squares through the true map, then milestoned between the true wells' cores. A
    reference for the model's accuracy (not a bound: it ignores the dynamics)."""
    from nld.data.wells import milestones

    assert test_set.states is not None
    x = test_set.x.astype(np.float64) - spec.offset
    z = np.linalg.lstsq(spec.mixing, x.reshape(-1, spec.dim).T, rcond=None)[0].T
    z = z.reshape(*x.shape[:2], -1)
    basins = spec.basins(z)
    centres = np.stack([m.position for m in spec.minima])
    in_core = np.linalg.norm(z - centres[basins], axis=-1) < spec.width
    return float((milestones(basins, in_core) == test_set.states).mean())


def truth_kramers_ratio(spec: WellsSpec, states: np.ndarray) -> list[float]:
    """Kramers' dwell time of each well on the *true* potential over the data's mean dwell
    (complete runs): how far the formula itself is from this process, the reference for the
    model's."""
    from nld.analysis import dwell_lengths, find_saddles, rate_matrix
    from nld.analysis.transitions import dwell_times

    saddles = find_saddles(spec.energy, spec.minima)
    kramers = dwell_times(rate_matrix(spec.minima, saddles, spec.beta, gamma=1.0), spec.interval)
    runs = dwell_lengths(states, len(spec.minima))
    return [round(float(k / r.mean()), 3) for k, r in zip(kramers, runs, strict=True)]


def run(case: int, threads: int, overrides: dict[str, object], variant: str) -> dict:
    from nld.analysis import matched_l1
    from nld.fitting.config import load_config, with_overrides
    from training.analyze import analyze_run

    k, dim, latent, length, n = CASES[case]
    spec = case_spec(case)
    train_set = sample_wells(spec, n, length, seed=1)
    test_set = sample_wells(spec, 200, length, seed=2)
    assert test_set.states is not None
    truth = spec.occupancy()
    cfg = with_overrides(load_config("default"), {"train.threads": threads, **overrides})
    out = ROOT / "runs" / "wells" / f"case{case}" / variant
    model, fitted, train_s = trained(cfg, train_set, out)  # a finished run: its own training time
    res = analyze_run(model, fitted, test_set, fit_data=train_set).record
    seg = res["segmentation"]
    mapping = {int(a): b for a, b in seg["mapping"].items()}
    truth_dwell = seg.get("dwell_times_truth", [None] * len(res["minima"]))
    chain = res.get("chain")
    return {
        "case": case,
        "variant": variant,
        "wells": k,
        "dim": dim,
        "latent": latent,
        "length": length,
        "sequences": n,
        "n_minima": len(res["minima"]),
        "clock": res["clock"],
        "accuracy_mean": round(seg["accuracy_mean"], 4),
        "chain_accuracy_mean": round(seg.get("chain_accuracy_mean", seg["accuracy_mean"]), 4),
        "labels_from": seg["labels_from"],
        "occupancy_truth": [round(float(v), 4) for v in truth],
        "occupancy_l1": {
            name: None if est is None else round(matched_l1(np.asarray(est), truth, mapping), 4)
            for name, est in res["occupancy"].items()
        },
        "dwell_truth": truth_dwell,
        "dwell_ratio_kramers": _ratios(res["dwell_times"], truth_dwell),
        "dwell_ratio_simulated": _ratios(res["dwell_times_simulated"], truth_dwell),
        "dwell_ratio_chain": _ratios(chain["dwell_steps"], truth_dwell) if chain else None,
        "truth_kramers_ratio": truth_kramers_ratio(spec, test_set.states),
        "oracle_accuracy": oracle_accuracy(spec, test_set),
        "train_seconds": round(train_s, 1),
    }


def _spread(ratios: list | None) -> str:
    vals = [r for r in ratios or [] if r is not None]
    return "-" if not vals else f"{min(vals):.2f}-{max(vals):.2f}"


def _clocked(ratios: list | None, chain: list | None) -> list | None:
    """Dwell / true after one clock factor fitted to the chain (bench/clock.py)."""
    if not ratios or not chain or None in ratios or None in chain:
        return None
    r, rc = np.asarray(ratios, float), np.asarray(chain, float)
    return list(r / np.exp(np.mean(np.log(r / rc))))


def table() -> str:
    lines = table_head(
        "case",
        "variant",
        "wells",
        "D",
        "latent",
        "n_minima",
        "clock",
        "accuracy",
        "chain",
        "oracle",
        "occupancy l1 (a) / (b) / (c) / (d)",
        "dwell / true: Kramers",
        "Kramers on the true potential",
        "simulated",
        "chain",
        "Kramers / simulated after a clock fitted to the chain",
        "train s",
    )
    for r in sorted(read_jsonl(RESULTS), key=lambda r: (r["case"], r["variant"])):
        occ = " / ".join(
            "-" if v is None else f"{v:.3f}"
            for v in (
                r["occupancy_l1"].get(k) for k in ("sampling", "zeroth", "second", "quadrature")
            )
        )
        lines.append(
            f"| {r['case']} | {r['variant']} | {r['wells']} | {r['dim']} | {r['latent']} "
            f"| {r['n_minima']} | {r.get('clock', 1.0):.2f} | {100 * r['accuracy_mean']:.1f}% "
            f"| {100 * r['chain_accuracy_mean']:.1f}% | {100 * r['oracle_accuracy']:.1f}% "
            f"| {occ} "
            f"| {_spread(r['dwell_ratio_kramers'])} | {_spread(r['truth_kramers_ratio'])} "
            f"| {_spread(r['dwell_ratio_simulated'])} "
            f"| {_spread(r['dwell_ratio_chain'])} "
            f"| {_spread(_clocked(r['dwell_ratio_kramers'], r['dwell_ratio_chain']))} / "
            f"{_spread(_clocked(r['dwell_ratio_simulated'], r['dwell_ratio_chain']))} "
            f"| {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    p = case_parser(__doc__, len(CASES))
    add_variant_options(p, "train.restarts=1")
    a = p.parse_args()
    if a.table:
        print(table())
        return 0
    overrides, name = variant_of(a)
    variant = name or "default"
    done = (
        {r["case"] for r in read_jsonl(RESULTS) if r["variant"] == variant}
        if RESULTS.exists()
        else set()
    )
    for case in a.cases:
        if case in done:
            print(f"skip case {case} ({variant}): already in {RESULTS}")
            continue
        append_row(RESULTS, run(case, a.threads, overrides, variant))
    return 0


if __name__ == "__main__":
    sys.exit(main())
