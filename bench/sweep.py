"""What scheduling training runs through Ray costs: the same sweep of smoke runs, one after
another in this process and as Ray tasks on a Ray started here, on the same cores.

    python bench/sweep.py [--runs 10]

Three sweeps of `--runs` smoke runs (seeds 0.., exp1's spec, 200 sequences of 100 steps), each
into a fresh directory:
- here: one after another in this process (the preset's one torch thread each);
- ray, one at a time: Ray tasks asking for every core, still one thread each: the same work
  as `here`, so the ratio is Ray's own cost (start, workers, shipping the runs and rows);
- ray, side by side: Ray tasks asking for one core each, as many at a time as there are cores.
Each sweep's results are checked to be the same runs (minima and accuracy per seed). A row
goes to bench/results/sweep.jsonl.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from record import ROOT, append_row

from nld.data import load_spec, sample, save
from training.sweep import run_sweep
from training.sweep_spec import read_sweep

RESULTS = ROOT / "bench" / "results" / "sweep.jsonl"


def sweep_file(root: Path, name: str, runs: int, cpus: int) -> Path:
    path = root / f"{name}.toml"
    path.write_text(
        f'out = "{name}"\ntest = "test.npz"\n[base]\npreset = "smoke"\ndata = "train.npz"\n'
        f'"train.threads" = 1\n[grid]\nseed = {list(range(runs))}\n'
        f"[resources]\nnum_cpus = {cpus}\n"
    )
    return path


def timed(path: Path, use_ray: bool) -> tuple[float, list[tuple]]:
    t0 = time.perf_counter()
    rows = run_sweep(read_sweep(path), use_ray=use_ray, progress=False)
    seconds = time.perf_counter() - t0
    assert all(r["status"] == "trained" for r in rows), rows
    return seconds, [(r["seed"], r["n_minima"], r["accuracy_mean"]) for r in rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    spec = load_spec("exp1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save(root / "train.npz", sample(spec, 200, 100, seed=0))
        save(root / "test.npz", sample(spec, 50, 200, seed=1))
        here, runs_here = timed(sweep_file(root, "here", a.runs, 1), use_ray=False)
        print(f"here: {here:.1f} s", flush=True)
        serial, runs_serial = timed(sweep_file(root, "ray-serial", a.runs, cores), use_ray=True)
        print(f"ray, one at a time: {serial:.1f} s", flush=True)
        wide, runs_wide = timed(sweep_file(root, "ray-wide", a.runs, 1), use_ray=True)
        print(f"ray, side by side: {wide:.1f} s", flush=True)
    assert runs_here == runs_serial == runs_wide, (runs_here, runs_serial, runs_wide)
    append_row(
        RESULTS,
        {
            "runs": a.runs,
            "cores": cores,
            "here_seconds": here,
            "ray_one_at_a_time_seconds": serial,
            "ray_side_by_side_seconds": wide,
            "ray_overhead_ratio": serial / here,
            "side_by_side_ratio": wide / here,
            "same_results": True,
        },
    )


if __name__ == "__main__":
    main()
