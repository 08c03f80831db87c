"""Refit finished runs' well depths to their state chains; score the occupancies again.

The stage of `nld.fitting.depths` (what `nld train` now does before its clock; `nld depths RUN`
on a run in place), here on copies in memory: each run is refitted for every `--iterations`
given and its occupancy l1 to the truth on the test split set beside the run's own. Rows are
appended to bench/results/depths.jsonl; the runs themselves are not changed. (Rows without a
"stage" key came from this script's first version, commit 8e69bf5, which found the minima on
300 encoded training sequences instead of the stage's readout positions.)

    python bench/depths_to_chain.py runs/report18/exp2-*-s? --experiment 2 --iterations 300 1200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from record import append_row, benchmark_split

from nld import checkpoint
from nld.data import load, load_spec
from nld.fitting.depths import fit_depths
from training.analyze import analyze_run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "depths.jsonl"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--experiment", type=int, choices=(1, 2), required=True)
    p.add_argument("--iterations", type=int, nargs="+", default=[1200])
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    name = f"exp{a.experiment}"
    spec, train, test = (
        load_spec(name),
        load(benchmark_split(name, "train")),
        load(benchmark_split(name, "test")),
    )
    for run in a.runs:
        before = analyze_run(*checkpoint.load(run), test, spec=spec, seed=0).record
        for iterations in a.iterations:
            model, fitted = checkpoint.load(run)
            fit = fit_depths(model, fitted, train, iterations, seed=0, progress_bar=False)
            if fit.skipped:
                print(f"{run}: {fit.skipped}")
                break
            after = analyze_run(model, fitted, test, spec=spec, seed=0).record
            row = {
                "run": run,
                "stage": "nld.fitting.depths",
                "iterations": iterations,
                "seconds": round(fit.seconds, 1),
                "minima": [len(before["minima"]), len(after["minima"])],
                "l1_before": before["segmentation"]["occupancy_l1"],
                "l1_after": after["segmentation"]["occupancy_l1"],
                "accuracy": [
                    before["segmentation"]["accuracy_mean"],
                    after["segmentation"]["accuracy_mean"],
                ],
            }
            append_row(RESULTS, row)


if __name__ == "__main__":
    main()
