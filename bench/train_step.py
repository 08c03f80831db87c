"""Seconds per training iteration of a preset: the ELBO step `nld train` repeats (forward
through encoder, posterior SDE and decoder, backward, optimizer step), on a data file.

    python bench/train_step.py --preset exp1-overdamped --data ../shared/benchmarks/exp1-train.npz
        [--threads 2] [--steps 30] [--set model.substeps=1 --tag NAME] [--profile 10]
        [--compile control|drive]

The model is the preset's at initialisation with a KL weight of 1 (the cost of a step hardly
changes during training); three warm-up steps are not timed. Prints the median and quartiles
and appends a row (with the commit) to bench/results/train_step.jsonl. To compare two versions
of the code, run this file from both checkouts alternately, one at a time.

`--compile` runs the step with part of the model compiled by torch.compile (the warm-up steps
compile it): `control`, the posterior's control network; `drive`, the substep loop of one
observation interval (NLDModel._drive). The row's variant names it.

`--profile N` then runs N more steps under torch's profiler and prints the operators with the
most CPU time of their own, with their calls per step; the top 15 go to
bench/results/train_step_profile.jsonl.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch
from record import add_variant_options, append_row, variant_of

from nld.data import load
from nld.fitting.config import load_config, with_overrides
from nld.fitting.step import elbo_step, optimizers, window_index
from nld.fitting.trainer import initial_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "train_step.jsonl"
PROFILES = ROOT / "bench" / "results" / "train_step_profile.jsonl"


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    return git("rev-parse", "--short", "HEAD").strip() + (
        "+" if git("status", "--porcelain") else ""
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="exp1-overdamped")
    p.add_argument("--data", default=str(ROOT.parent / "shared/benchmarks/exp1-train.npz"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--profile", type=int, default=0, metavar="N", help="profile N more steps")
    p.add_argument("--compile", choices=("control", "drive"), help="torch.compile that part")
    add_variant_options(p, "model.substeps=1")
    a = p.parse_args()
    overrides, variant = variant_of(a)
    torch.set_num_threads(a.threads)
    cfg = with_overrides(load_config(a.preset), overrides)
    data = load(a.data)
    t = cfg.train
    torch.manual_seed(0)
    x = torch.from_numpy(data.x)
    model = initial_model(cfg, x).train()
    opts = optimizers(model, t)
    gen = torch.Generator().manual_seed(0)
    if a.compile:
        name = f"_{a.compile}"
        setattr(model, name, torch.compile(getattr(model, name), dynamic=False))
        variant = f"{variant or 'default'}+compile-{a.compile}"

    def batch() -> torch.Tensor:
        rows, steps = window_index(x.shape[0], x.shape[1], t.batch_size, t.window, gen)
        return x[rows, steps]

    def step(xb: torch.Tensor) -> None:
        elbo_step(model, opts, xb, gen, kl_weight=1.0, clip=t.grad_clip, prior_steps=t.prior_steps)

    times = []
    for i in range(3 + a.steps):
        xb = batch()
        start = time.perf_counter()
        step(xb)
        if i >= 3:
            times.append(time.perf_counter() - start)
    if a.profile:
        profile(lambda: step(batch()), a)
    q1, median, q3 = statistics.quantiles(times, n=4)
    append_row(
        RESULTS,
        {
            "preset": a.preset,
            "variant": variant,
            "data": Path(a.data).name,
            "threads": a.threads,
            "steps": a.steps,
            "commit": _commit(),
            "median_s": median,
            "q1_s": q1,
            "q3_s": q3,
            "iterations_s": median * t.iterations,
        },
    )


def profile(step: Callable[[], None], a: argparse.Namespace) -> None:
    """`a.profile` calls of `step` under torch's profiler: the operators by their own CPU
    time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(a.profile):
            step()
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=15))
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    append_row(
        PROFILES,
        {
            "preset": a.preset,
            "threads": a.threads,
            "steps": a.profile,
            "commit": _commit(),
            "self_cpu_seconds_per_step": total / 1e6 / a.profile,
            "top_self_cpu": [
                {
                    "op": e.key,
                    "share": e.self_cpu_time_total / total,
                    "calls_per_step": e.count / a.profile,
                    "us_per_call": e.self_cpu_time_total / e.count,
                }
                for e in top
            ],
        },
        show=False,
    )


if __name__ == "__main__":
    main()
