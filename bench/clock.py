"""What one clock factor would do to the model's dwell times: a measurement on finished
analyses (`nld analyze` / `nld report` JSON), no training.

The prior's time unit is not pinned by training (README, Kinetics). Rescaling it by a factor c
(gamma / c, and m / c^2 when underdamped) leaves the stationary density, the minima and the
ratios of the rates unchanged and divides every dwell time by c. Here c is fitted without
labels, as the geometric mean over states of (model dwell / state-chain dwell), the chain
being fitted to the training data; the dwell times are then set against the truth. What is
left is what the landscape itself gets wrong: the ratios between its states.

    python bench/clock.py bench/reports/exp1/analyses/*.json bench/reports/exp2/analyses/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def clocked(dwell: np.ndarray, chain: np.ndarray, truth: np.ndarray) -> tuple[float, np.ndarray]:
    """The clock factor fitted to the chain and the dwell / truth ratios after it."""
    c = float(np.exp(np.mean(np.log(dwell / chain))))
    return c, dwell / c / truth


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__)
        return 2
    worst: dict[str, list[float]] = {"Kramers": [], "simulated": []}
    print("| run | estimate | dwell / true | clock c | after the clock | largest error |")
    print("|---|---|---|---|---|---|")
    for path in paths:
        a = json.loads(Path(path).read_text())
        truth = np.asarray(a["segmentation"]["dwell_times_truth"], float)
        chain = np.asarray(a["chain"]["dwell_steps"], float)
        for name, key in (("Kramers", "dwell_times"), ("simulated", "dwell_times_simulated")):
            if not a.get(key):
                continue
            dwell = np.asarray(a[key], float)
            c, after = clocked(dwell, chain, truth)
            err = float(np.abs(after - 1).max())
            worst[name].append(err)
            before = " / ".join(f"{v:.2f}" for v in dwell / truth)
            print(
                f"| {Path(path).stem} | {name} | {before} | {c:.2f} "
                f"| {' / '.join(f'{v:.2f}' for v in after)} | {err:.0%} |"
            )
    for name, errs in worst.items():
        if errs:
            print(
                f"{name}: largest error after the clock, median over runs {np.median(errs):.0%}, "
                f"max {max(errs):.0%}; within 30% in {sum(e <= 0.3 for e in errs)} of {len(errs)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
