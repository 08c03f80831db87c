"""`nld report`: the paper's tables for our models, regenerated from runs anyone can repeat.

For one experiment it trains (or reuses) `seeds` runs of the overdamped and the underdamped
preset (as Ray tasks, `workers` side by side: `training.schedule`), analyses each on the test split,
fits the hmmlearn baseline, computes the Bayes limits with the true parameters, and writes
DIR/report.md (tables with mean +- sample std over seeds, the paper's numbers beside ours)
with figures of seed 0 embedded.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from nld import checkpoint
from nld.analysis import matched_l1
from nld.data import Dataset, generate_splits, load, load_spec, save
from nld.data.limits import bayes_limits
from nld.device import resolve_device
from nld.errors import NLDError
from nld.io import write_bytes, write_json
from training.baseline import HMM_STARTS, hmm_baseline
from training.markdown import table_head
from training.schedule import Job, ray_or_none, run_jobs

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmarks"
ESTIMATES = ("sampling", "zeroth", "second", "quadrature")
HEADS = tuple(f"({c}) {k}" for c, k in zip("abcd", ESTIMATES, strict=True))

# The paper's Tables 1-6 (best five of its runs; "-" where it reports nothing).
PAPER: dict[int, dict[str, dict[str, Any]]] = {
    1: {
        "overdamped": {
            "accuracy": "92.6 +- 1.6",
            "sampling": ".047",
            "zeroth": ".051",
            "second": ".040",
        },
        "underdamped": {
            "accuracy": "82.2 +- 3.6",
            "sampling": ".072",
            "zeroth": ".041",
            "second": ".021",
        },
    },
    2: {
        "overdamped": {},
        "underdamped": {
            "accuracy": "85.3 +- 4.2",
            "sampling": ".23",
            "zeroth": ".24",
            "second": ".22",
        },
    },
}


def _data(experiment: int, out: Path) -> tuple[Dataset, Dataset]:
    """The pinned benchmark splits when ../shared is there, else fresh draws of the spec."""
    name = f"exp{experiment}"
    if (SHARED / f"{name}-train.npz").exists():
        return load(SHARED / f"{name}-train.npz"), load(SHARED / f"{name}-test.npz")
    splits = generate_splits(load_spec(name))
    for split, ds in splits.items():
        save(out / "data" / f"{split}.npz", ds)
    return splits["train"], splits["test"]


def _fmt(values: Sequence[float | None], digits: int = 3, scale: float = 1.0) -> str:
    vals = [v * scale for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.mean(vals):.{digits}f} +- {statistics.stdev(vals):.{digits}f}"


def run_report(
    experiment: int,
    seeds: int,
    out: str | Path,
    *,
    runs: str | Path = ROOT / "runs" / "bench",
    first_seed: int = 0,
    dynamics: tuple[str, ...] = ("overdamped", "underdamped"),
    train_fn: Callable[..., Any] | None = None,
    workers: int = 1,
    use_ray: bool | None = None,
    address: str | None = None,
    device: str | None = None,
) -> Path:
    """Train the missing runs (as Ray tasks, `workers` at a time on an equal share of the
    cores, where Ray is installed and `use_ray` is not False; on the cluster at `address`
    when given; the training loops on `device`), analyse every run on the test split and
    write DIR/report.md."""
    from nld.fitting.restarts import finished, fit
    from training.analyze import analyze_run
    from training.figures import write_figures

    train_fn = train_fn or fit
    out, runs = Path(out), Path(runs)
    spec = load_spec(f"exp{experiment}")
    train_set, test_set = _data(experiment, out)
    assert test_set.states is not None
    truth = spec.stationary()
    jobs = [(dyn, s) for dyn in dynamics for s in range(first_seed, first_seed + seeds)]
    run_dirs = {job: runs / f"exp{experiment}-{job[0]}-s{job[1]}" for job in jobs}
    missing = [job for job in jobs if not finished(run_dirs[job])]
    _train_all(
        experiment, missing, run_dirs, train_set, train_fn, workers, use_ray, address, device
    )
    rows: dict[str, list[dict[str, Any]]] = {}
    bar = tqdm(jobs, desc=f"analyse exp{experiment}", unit="run")
    for dyn, seed in bar:
        preset = f"exp{experiment}-{dyn}"
        run_dir = run_dirs[dyn, seed]
        bar.set_postfix_str(f"{preset} seed {seed}")
        model, fitted = checkpoint.load(run_dir)
        t0 = time.perf_counter()
        found = analyze_run(model, fitted, test_set, spec=spec, seed=seed)
        res, analysis, labels = found.record, found.analysis, found.labels
        res["analysis_seconds"] = time.perf_counter() - t0
        res["run"] = str(run_dir)
        write_json(out / "analyses" / f"{preset}-s{seed}.json", res)
        rows.setdefault(dyn, []).append(res)
        if seed == first_seed:
            write_figures(
                model,
                run_dir,
                out / "figures" / preset,
                data=test_set,
                analysis=analysis,
                labels=labels,
            )
    bar.close()
    print(
        f"fitting the hmmlearn baseline (best of {HMM_STARTS} EM starts) and the Bayes limits ..."
    )
    hmm = hmm_baseline(train_set, test_set, spec.n_states, truth, starts=HMM_STARTS)
    limits = bayes_limits(spec, test_set.x, test_set.states)
    seen = None if train_set.states is None else train_set.state_frequencies(len(truth))
    text = _markdown(experiment, jobs, rows, truth, hmm, limits, seen)
    write_bytes(out / "report.md", text.encode())
    return out / "report.md"


def _train_one(
    train_fn: Callable[..., Any],
    preset: str,
    seed: int,
    run_dir: Path,
    data: Dataset,
    threads: int | None,
    device: str | None = None,
) -> None:
    """One training run (module level, so that a Ray worker can be handed it)."""
    from nld.fitting.config import load_config, with_overrides
    from nld.fitting.restarts import resumable

    overrides: dict[str, Any] = {"train.seed": seed}
    if threads is not None:  # else the preset's
        overrides["train.threads"] = threads
    if device is not None:  # else the preset's (the CPU)
        overrides["train.device"] = device
    cfg = with_overrides(load_config(preset), overrides)
    train_fn(cfg, data, run_dir, resume=resumable(run_dir), progress_bar=False)


def _train_all(
    experiment: int,
    jobs: list[tuple[str, int]],
    run_dirs: dict[tuple[str, int], Path],
    data: Dataset,
    train_fn: Callable[..., Any],
    workers: int,
    use_ray: bool | None,
    address: str | None,
    device: str | None,
) -> None:
    """Train `jobs` as Ray tasks, `workers` at a time on a local Ray (or as a cluster
    schedules them), each on an equal share of the cores: on 2 cores two runs at one thread
    each finish in about half the time of one after the other at two. Without Ray, one after
    another here on the preset's threads. A run that fails ends the report with its error,
    once the others have finished (and are kept)."""
    if not jobs:
        return
    ray = ray_or_none(use_ray, "the runs go one after another in this process")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = None if ray is None else max(1, (cores or 1) // workers)
    # A training loop on a GPU asks Ray for its share of one (Ray hides the GPUs from a task
    # that asks for none); `auto` only where this machine (or the cluster) has one.
    on_gpu = ray is not None and device not in (None, "cpu", "mps")
    if on_gpu and address is None:
        on_gpu = resolve_device(device).type == "cuda"
    gpus = 1 / workers if on_gpu else 0.0
    tasks = [
        Job(
            f"exp{experiment}-{dyn} seed {seed}",
            _train_one,
            (train_fn, f"exp{experiment}-{dyn}", seed, run_dirs[dyn, seed], data, threads, device),
        )
        for dyn, seed in jobs
    ]
    bar = tqdm(total=len(tasks), desc=f"train exp{experiment}", unit="run")
    failed = []
    for done in run_jobs(tasks, ray=ray, address=address, num_cpus=threads or 1, num_gpus=gpus):
        if done.error is not None:
            failed.append(f"{done.job.key}: {done.error}")
        bar.set_postfix_str(f"finished {done.job.key}")
        bar.update()
    bar.close()
    if failed:
        raise NLDError("training failed: " + "; ".join(failed))


DWELLS = {  # where each run's dwell times are, in the order of its minima
    "Kramers": ("dwell_times",),
    "simulated": ("dwell_times_simulated",),
    "state chain": ("chain", "dwell_steps"),
}


def dwell_ratios(rows: list[dict[str, Any]], path: tuple[str, ...]) -> list[float]:
    """Dwell time (at `path` in a run's analysis) / true dwell time of every matched state of
    every run."""
    out = []
    for r in rows:
        got: Any = r
        for key in path:
            got = got.get(key) if isinstance(got, dict) else None
        truth = r["segmentation"].get("dwell_times_truth", [])
        out += [d / t for d, t in zip(got or [], truth, strict=False) if d and t]
    return out


def _passes(run: dict[str, Any]) -> float | None:
    """The fraction of the simulated prior's exits that go between two wells no saddle
    joins, i.e. past a third well without settling in it (None without the counts)."""
    counts = np.asarray(run.get("transitions_simulated") or [], dtype=float)
    if not counts.size or not counts.sum():
        return None
    joined = np.eye(len(counts), dtype=bool)
    for s in run["saddles"]:
        i, j = s["between"]
        joined[i, j] = joined[j, i] = True
    return float(counts[~joined].sum() / counts.sum())


def _l1_to(run: dict[str, Any], estimate: str, occupancy: np.ndarray) -> float | None:
    """l1 of one run's occupancy `estimate` to `occupancy`, basins matched as in its
    segmentation (None where the estimate was not computed)."""
    est = run["occupancy"][estimate]
    mapping = {int(a): b for a, b in run["segmentation"]["mapping"].items()}
    return None if est is None else matched_l1(np.asarray(est), occupancy, mapping)


def _markdown(
    experiment: int,
    jobs: list[tuple[str, int]],
    rows: dict[str, list[dict[str, Any]]],
    truth: np.ndarray,
    hmm: dict[str, float] | None,
    limits: dict[str, float],
    seen: np.ndarray | None = None,
) -> str:
    """The report; `seen` is the training split's state frequencies, where known."""
    paper = PAPER[experiment]
    seeds = sorted({s for _, s in jobs})
    lines = [
        f"# Experiment {experiment}: NLD against the paper, seeds {seeds}",
        "",
        "Mean +- sample std (ddof 1) over seeds. Occupancy: l1 distance to the true stationary "
        f"distribution ({', '.join(f'{v:.3f}' for v in truth)}) after matching basins to states "
        "by the segmentation. Regenerate with `nld report --experiment "
        f"{experiment} --seeds {len(seeds)} --first-seed {seeds[0]}"
        + ("" if len(rows) == 2 else f" --dynamics {' '.join(rows)}")
        + " --out DIR`.",
        "",
        "## Occupancy l1 error (the paper's Tables 1 and 4)",
        "",
        *table_head("model", *HEADS, "paper (a) / (b) / (c)"),
    ]
    for dyn, rs in rows.items():
        l1 = {k: [r["segmentation"]["occupancy_l1"][k] for r in rs] for k in ESTIMATES}
        p = paper.get(dyn, {})
        ref = " / ".join(p.get(k, "-") for k in ("sampling", "zeroth", "second"))
        lines.append(f"| {dyn} | " + " | ".join(_fmt(l1[k]) for k in ESTIMATES) + f" | {ref} |")
    if hmm:
        lines.append(
            f"| hmmlearn GaussianHMM (best of {HMM_STARTS} EM starts) | | | | "
            f"| stationary distribution: {hmm['occupancy_l1']:.3f} |"
        )
    if seen is not None:
        lines.append(
            "| the training split's own state frequencies (the floor a fit to them meets) "
            f"| | | | | {float(np.abs(seen - truth).sum()):.3f} |"
        )
        lines += [
            "",
            "The same estimates against the training split's state frequencies (what the model "
            "saw) instead of the truth: the model's own error, without the sample's.",
            "",
            *table_head("model", *HEADS),
        ]
        for dyn, rs in rows.items():
            l1 = {k: [_l1_to(r, k, seen) for r in rs] for k in ESTIMATES}
            lines.append(f"| {dyn} | " + " | ".join(_fmt(l1[k]) for k in ESTIMATES) + " |")
    lines += [
        "",
        "## Occupancies, coordinates sorted ascending (the paper's Tables 2 and 5)",
        "",
        *table_head("model", "estimate", "coordinates"),
    ]
    for dyn, rs in rows.items():
        for k in ESTIMATES:
            vecs = [sorted(r["occupancy"][k]) for r in rs if r["occupancy"][k] is not None]
            if not vecs or len({len(v) for v in vecs}) != 1:
                continue
            coords = ", ".join(_fmt([v[i] for v in vecs]) for i in range(len(vecs[0])))
            lines.append(f"| {dyn} | {k} | {coords} |")
    lines.append(f"| truth | | {', '.join(f'{v:.3f}' for v in sorted(truth))} |")
    lines += [
        "",
        "## Segmentation accuracy, online (the paper's Tables 3 and 6)",
        "",
        *table_head(
            "model",
            "accuracy %",
            "minima",
            "prior clock",
            *(f"{name} dwell / true dwell" for name in DWELLS),
            "simulated exits past a well",
            "analysis s",
            "paper",
        ),
    ]
    for dyn, rs in rows.items():
        acc = [r["segmentation"]["accuracy_mean"] for r in rs]
        n_min = ", ".join(str(len(r["minima"])) for r in rs)
        ratios = " | ".join(_fmt(dwell_ratios(rs, path), 2) for path in DWELLS.values())
        secs = [r["analysis_seconds"] for r in rs]
        clocks = _fmt([r["clock"] for r in rs], 2)
        passes = _fmt([_passes(r) for r in rs], 2)
        lines.append(
            f"| {dyn} | {_fmt(acc, 1, 100)} | {n_min} | {clocks} | {ratios} | {passes} | "
            f"{_fmt(secs, 1)} | {paper.get(dyn, {}).get('accuracy', '-')} |"
        )
    if hmm:
        lines.append(
            f"| hmmlearn GaussianHMM, best of {HMM_STARTS} "
            f"| {100 * hmm['accuracy_mean']:.1f} | | | | | | | | |"
        )
    lines.append(
        "| Bayes limits (true parameters) | per step "
        f"{100 * limits['per_step_accuracy_mean']:.1f}, online filter "
        f"{100 * limits['online_filter_accuracy_mean']:.1f}, offline smoother "
        f"{100 * limits['offline_smoother_accuracy_mean']:.1f} | | | | | | | | |"
    )
    lines += ["", f"## Figures (seed {seeds[0]})", ""]
    for dyn in rows:
        preset = f"exp{experiment}-{dyn}"
        for name in ("landscape", "segmentation", "paths"):
            lines.append(f"![{preset} {name}](figures/{preset}/{name}.png)")
        lines.append("")
    lines += ["## Per run", "", "```json"]
    lines += [
        json.dumps({"run": r["run"], "warnings": r["warnings"]}) for rs in rows.values() for r in rs
    ]
    lines.append("```")
    return "\n".join(lines) + "\n"
