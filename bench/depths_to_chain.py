"""A lead measured, not a stage: refit a finished model's well depths to its state chain.

The calibration stage fits exp(-beta E) to the posterior's sampled positions, whose basin
fractions can sit further from the data's state frequencies than the state chain's stationary
distribution does (bench/occupancy_source.py). Here each finished run is calibrated again,
`--iterations` steps, with its positions weighted so that their basin fractions equal the
chain's stationary distribution (`training.calibrate.calibrate(weigh=...)`), and its
occupancy l1 to the truth on the test split is set beside the run's own. Rows are appended
to bench/results/depths.jsonl; the runs themselves are not changed.

    python bench/depths_to_chain.py runs/report18/exp2-*-s? --experiment 2
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from nld import checkpoint
from nld.analysis import BasinIndex
from nld.data import load, load_spec
from nld.inference import head_order, read_path
from nld.landscape import analyze
from training.analyze import analyze_run
from training.calibrate import calibrate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmarks"


def to_shares(index: BasinIndex, target: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
    """Weights for positions [n, d] that give each basin the share `target` of their mass."""

    def weigh(q: torch.Tensor) -> torch.Tensor:
        basins = index.assign(q.double().numpy(), exact=False)
        share = np.bincount(basins, minlength=len(target)) / len(basins)
        return torch.from_numpy(target / np.maximum(share, 1e-12))[basins]

    return weigh


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--experiment", type=int, choices=(1, 2), required=True)
    p.add_argument("--iterations", type=int, default=1200)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    name = f"exp{a.experiment}"
    spec, train, test = (
        load_spec(name),
        load(SHARED / f"{name}-train.npz"),
        load(SHARED / f"{name}-test.npz"),
    )
    for run in a.runs:
        model = checkpoint.load(run)
        before, _, _ = analyze_run(model, test, spec=spec, seed=0)
        latents, _ = read_path(model, train.x[:300])
        res = analyze(model, latents, seed=0)
        order = head_order(model, res.minima)
        if model.chain is None or order is None or res.index is None:
            print(f"{run}: no state chain over these minima, skipped")
            continue
        target = np.zeros(len(res.minima))
        target[order] = model.chain.stationary()
        t0 = time.perf_counter()
        weigh = to_shares(res.index, target)
        calibrate(model, train, a.iterations, seed=0, progress_bar=False, weigh=weigh)
        seconds = time.perf_counter() - t0
        after, _, _ = analyze_run(model, test, spec=spec, seed=0)
        row = {
            "run": run,
            "iterations": a.iterations,
            "seconds": round(seconds, 1),
            "minima": [len(before["minima"]), len(after["minima"])],
            "l1_before": before["segmentation"]["occupancy_l1"],
            "l1_after": after["segmentation"]["occupancy_l1"],
            "accuracy": [
                before["segmentation"]["accuracy_mean"],
                after["segmentation"]["accuracy_mean"],
            ],
        }
        print(json.dumps(row))
        with (ROOT / "bench" / "results" / "depths.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
