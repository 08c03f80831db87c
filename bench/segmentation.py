"""Train and evaluate presets on the pinned benchmarks, one seed at a time; append the rows.

    python bench/segmentation.py --preset exp1-overdamped --seeds 0 1 2 3 4
    python bench/segmentation.py --hmm --experiment exp1        # hmmlearn GaussianHMM baseline
    python bench/segmentation.py --table                         # print the table for RESULTS.md
    python bench/segmentation.py --preset P --set model.substeps=2 --tag substeps2   # a variant

Rows go to bench/results/segmentation.jsonl (one JSON object per run); runs that already
have a row are skipped, so the table can be filled over several sittings. Data come from
../shared/benchmarks; runs are kept under runs/bench/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from record import add_variant_options, append_row, benchmark_split, variant_of

from nld.io import read_jsonl
from training.markdown import table_head

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "segmentation.jsonl"
RUNS = ROOT / "runs" / "bench"
# The training recipe the NLD rows come from: rows of an older recipe stay in the table under
# their own name, and a new recipe trains its runs again (runs/bench/RECIPE/...).
# "calibrated": + nld.fitting.calibrate (2026-11-30); "heads": + the basin head and the predictive
# head (sessions 6-7); rows without a recipe predate the calibration.
RECIPE = "heads"


def _rows() -> list[dict]:
    if not RESULTS.exists():
        return []
    return read_jsonl(RESULTS)


def run_preset(
    preset: str, seed: int, threads: int, overrides: dict[str, object], variant: str | None
) -> None:
    from nld import checkpoint
    from nld.data import load, load_spec
    from nld.fitting.config import load_config, with_overrides
    from nld.fitting.restarts import finished, fit, resumable
    from training.analyze import analyze_run
    from training.evaluate import evaluate

    experiment = preset.split("-")[0]
    cfg = with_overrides(
        load_config(preset), {"train.seed": seed, "train.threads": threads, **overrides}
    )
    out = RUNS / RECIPE / (variant or "") / f"{preset}-s{seed}"
    train_set = load(benchmark_split(experiment, "train"))
    test_set = load(benchmark_split(experiment, "test"))
    if finished(out):
        model, fitted = checkpoint.load(out)
    else:
        model, fitted = fit(cfg, train_set, out, resume=resumable(out))
    meta = checkpoint.read_config(out)[1]
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    if model.cfg.has_energy:  # the full analysis: minima, labels, (a)-(d), dwell times
        full = analyze_run(
            model, fitted, test_set, spec=load_spec(experiment), fit_data=train_set, seed=seed
        ).record
        seg = full["segmentation"]
        l1 = seg["occupancy_l1"]
        metrics = {
            "n_minima": len(full["minima"]),
            "accuracy_mean": seg["accuracy_mean"],
            "accuracy_std": seg["accuracy_std"],
            "occupancy_sampling_l1": l1["sampling"],
            "occupancy_zeroth_l1": l1["zeroth"],
            "occupancy_second_l1": l1["second"],
            "occupancy_quadrature_l1": l1["quadrature"],
            "beta": full["beta"],
            "labels_from": seg["labels_from"],
            "dwell_kramers": full["dwell_times"],
            "dwell_simulated": full["dwell_times_simulated"],
            "dwell_truth": seg.get("dwell_times_truth"),
            "chain_accuracy_mean": seg["chain_accuracy_mean"],
            "dwell_chain": full["chain"]["dwell_steps"],
        }
    else:  # no basins: k-means on the latents (training.evaluate)
        spec = load_spec(experiment)
        res = evaluate(model, fitted, test_set, true_occupancy=spec.stationary(), seed=seed).record
        metrics = {k: res[k] for k in ("accuracy_mean", "accuracy_std", "labels_from")}
    row = {
        "kind": "nld",
        "recipe": RECIPE,
        "preset": preset,
        **({"variant": variant, "overrides": overrides} if variant else {}),
        "seed": seed,
        "train_seconds": meta["train_seconds"],
        "rollbacks": meta["rollbacks"],
        "eval_seconds": round(time.perf_counter() - t0, 1),
        "threads": threads,
        **metrics,
    }
    last = read_jsonl(out / "metrics.jsonl")[-1]
    row["final_elbo_per_step"] = last["elbo"]
    row["calibration"] = meta.get("calibration")
    append_row(RESULTS, row)


def run_hmm(experiment: str, seed: int) -> None:
    from nld.data import load, load_spec
    from training.baseline import hmm_baseline

    spec = load_spec(experiment)
    res = hmm_baseline(
        load(benchmark_split(experiment, "train")),
        load(benchmark_split(experiment, "test")),
        spec.n_states,
        spec.stationary(),
        seed,
    )
    if res is None:
        sys.exit("the HMM baseline needs hmmlearn: pip install -e '.[bench]'")
    append_row(
        RESULTS,
        {
            "kind": "hmm",
            "preset": f"{experiment}-hmm",
            "seed": seed,
            "train_seconds": round(res["fit_seconds"], 1),
            "n_minima": spec.n_states,
            "accuracy_mean": res["accuracy_mean"],
            "accuracy_std": res["accuracy_std"],
            "occupancy_l1": res["occupancy_l1"],
        },
    )


def _name(r: dict) -> str:
    """A row's preset, marked when an NLD row predates the current recipe (the NSDE baseline
    has no energy to calibrate: its rows stand)."""
    old = r["kind"] == "nld" and "nsde" not in r["preset"] and r.get("recipe") != RECIPE
    name = r["preset"] + (f" [{r['variant']}]" if r.get("variant") else "")
    return name + (f" ({r.get('recipe') or 'before calibration'})" if old else "")


def _dwell_error(r: dict, key: str) -> float | None:
    """The largest relative error of a run's dwell times (`key`) against the true ones."""
    got, truth = r.get(key), r.get("dwell_truth")
    if not got or not truth or None in got or None in truth:
        return None
    return max(abs(g / t - 1) for g, t in zip(got, truth, strict=True))


def table() -> str:
    """Medians over seeds per preset (NLD: occupancy (a)-(d) and the Kramers dwell times;
    HMM: its own stationary distribution; NSDE: k-means labels and the ELBO)."""
    rows = _rows()
    for r in rows:
        r["kramers_error"] = _dwell_error(r, "dwell_kramers")
        r["simulated_error"] = _dwell_error(r, "dwell_simulated")
        r["chain_error"] = _dwell_error(r, "dwell_chain")
    lines = [
        *table_head(
            "preset",
            "seeds",
            "accuracy median (min)",
            "chain accuracy median",
            "n_minima",
            "l1 (a)",
            "l1 (b)",
            "l1 (c)",
            "l1 (d)",
            "l1 HMM",
            "dwell error Kramers",
            "dwell error simulated",
            "dwell error chain",
            "ELBO/step",
            "train s median (max)",
            "rollbacks",
        ),
    ]

    def med(rs: list[dict], key: str, fmt: str = ".3f") -> str:
        v = [r[key] for r in rs if r.get(key) is not None]
        return format(statistics.median(v), fmt) if v else "-"

    for name in sorted({_name(r) for r in rows}):
        rs = [r for r in rows if _name(r) == name]
        acc = [r["accuracy_mean"] for r in rs]
        secs = [r["train_seconds"] for r in rs]
        minima = sorted({r.get("n_minima") for r in rs}, key=str)
        lines.append(
            f"| {name} | {len(rs)} | {100 * statistics.median(acc):.1f}% "
            f"({100 * min(acc):.1f}%) | {med(rs, 'chain_accuracy_mean', '.1%')} | {minima} "
            f"| {med(rs, 'occupancy_sampling_l1')} "
            f"| {med(rs, 'occupancy_zeroth_l1')} | {med(rs, 'occupancy_second_l1')} "
            f"| {med(rs, 'occupancy_quadrature_l1')} | {med(rs, 'occupancy_l1')} "
            f"| {med(rs, 'kramers_error', '.0%')} | {med(rs, 'simulated_error', '.0%')} "
            f"| {med(rs, 'chain_error', '.0%')} "
            f"| {med(rs, 'final_elbo_per_step', '.2f')} "
            f"| {statistics.median(secs):.0f} ({max(secs):.0f}) "
            f"| {sum(r.get('rollbacks', 0) for r in rs)} |"
        )
    lines += ["", sampling_floor()]
    return "\n".join(lines)


def sampling_floor() -> str:
    """The l1 distance of each training split's own state frequencies to the stationary
    distribution: what an occupancy estimate fitted perfectly to the training data scores
    against the truth, i.e. the floor the finite sample sets under the l1 columns."""
    from nld.data import load, load_spec

    parts = []
    for experiment in ("exp1", "exp2"):
        truth = load_spec(experiment).stationary()
        freq = load(benchmark_split(experiment, "train")).state_frequencies(len(truth))
        parts.append(f"{experiment} {abs(freq - truth).sum():.3f}")
    return (
        "Sampling floor (l1 of the training split's own state frequencies to the stationary "
        "distribution, what a perfect fit to the training data scores): " + ", ".join(parts)
    )


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset")
    p.add_argument("--hmm", action="store_true")
    p.add_argument("--experiment", default="exp1")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--table", action="store_true")
    add_variant_options(p, "model.substeps=2")
    a = p.parse_args()
    overrides, variant = variant_of(a)
    if a.table:
        print(table())
        return 0
    done = {(_name(r), r["seed"]) for r in _rows()}
    for seed in a.seeds:
        name = f"{a.experiment}-hmm" if a.hmm else a.preset + (f" [{variant}]" if variant else "")
        if (name, seed) in done:
            print(f"skip {name} seed {seed}: already in {RESULTS}")
            continue
        if a.hmm:
            run_hmm(a.experiment, seed)
        else:
            run_preset(a.preset, seed, a.threads, overrides, variant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
