"""Where Kramers' formula holds: its dwell times against brute-force simulation, by barrier.

    python bench/kramers_regime.py [--separations 3.5 4 4.5 5 5.5 6 6.5] [--threads 1]
    python bench/kramers_regime.py --exact-1d

No training: three equal Gaussian wells of width 1 at the corners of an equilateral triangle
(`nld.data.wells.WellsSpec`, beta 1), farther apart row by row, so the barrier grows. For each,
the analysis' Eyring-Kramers dwell time (`rate_matrix`, `dwell_times`) is set against the mean
dwell time of overdamped Langevin trajectories of the same potential (`sample_wells`:
Euler-Maruyama, 100 steps per time unit), counted by milestoning under two core definitions:
within one width of a well's centre (what `nld data wells` labels), and less than
min(1 / beta, half the lowest barrier) above the minimum (what `nld.landscape` uses on a model's
prior). The learned landscapes of exp1 and exp2 have barriers of 1-2 / beta (bench/RESULTS.md).
`path / Laplace` is `nld.analysis.transitions.barrier_top_ratio`, what the formula assumes of
the barrier top: the integral of exp(beta (E - E_s)) along the minimum energy path over its
Laplace value (near 1 where the top is quadratic).
Rows go to bench/results/kramers_regime.jsonl. `--exact-1d` prints the same comparison in one
dimension without simulation: Kramers' formula over the exact mean first passage time from one
minimum to the other (scipy's quad of the double integral), between two Gaussian wells and in
the quartic double well h (x^2 - 1)^2.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from record import append_row

from nld.analysis.transitions import (
    barrier_top_ratio,
    core_labels,
    dwell_times,
    find_saddles,
    milestone_dwell,
    rate_matrix,
)
from nld.data.wells import WellsSpec, sample_wells
from nld.io import read_jsonl
from training.markdown import table_head

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "kramers_regime.jsonl"


def triangle(separation: float) -> WellsSpec:
    angles = np.pi / 2 + 2 * np.pi * np.arange(3) / 3
    centers = separation / math.sqrt(3) * np.stack([np.cos(angles), np.sin(angles)], 1)
    return WellsSpec(
        centers=centers,
        weights=np.full(3, 1 / 3),
        width=1.0,
        mixing=np.eye(2),
        offset=np.zeros(2),
        noise_std=0.0,
    )


def measure(separation: float, n_paths: int, length: int, seed: int) -> dict:
    spec = triangle(separation)
    minima = spec.minima
    saddles = find_saddles(spec.energy, minima)
    barrier = min(min(s.barrier(minima)) for s in saddles) * spec.beta
    tops = [barrier_top_ratio(spec.energy, s, spec.beta) for s in saddles]
    kramers = dwell_times(rate_matrix(minima, saddles, spec.beta, gamma=1.0)) / spec.interval
    path = sample_wells(spec, n_paths, length, seed).x.astype(np.float64)  # mixing I, no noise
    basins = spec.basins(path)
    centres = np.stack([m.position for m in minima])
    near = np.linalg.norm(path - centres[basins], axis=-1) < spec.width
    by_width = milestone_dwell(np.where(near, basins, -1), len(minima))
    by_energy = milestone_dwell(
        core_labels(spec.energy, minima, saddles, spec.beta, path, basins), len(minima)
    )
    return {
        "separation": separation,
        "barrier_beta": barrier,
        "saddles": len(saddles),
        "barrier_top_ratio": float(np.mean(tops)),
        "kramers": kramers.tolist(),
        "simulated_core_width": by_width.tolist(),
        "simulated_core_energy": by_energy.tolist(),
        "kramers_over_width": float(np.mean(kramers / by_width)),
        "kramers_over_energy": float(np.mean(kramers / by_energy)),
        "paths": n_paths,
        "length": length,
    }


def exact_1d() -> None:
    """Kramers / exact mean first passage time from -m to m in symmetric 1-D double wells
    (beta = gamma = 1; curvatures by central differences)."""
    from scipy.integrate import quad

    def ratio(energy: Callable[[float], float], m: float) -> tuple[float, float]:
        def curvature(x: float, h: float = 1e-4) -> float:
            return (energy(x + h) - 2 * energy(x) + energy(x - h)) / h**2

        def inner(x: float) -> float:
            return quad(lambda y: math.exp(-energy(y)), -np.inf, x)[0]

        exact = quad(lambda x: math.exp(energy(x)) * inner(x), -m, m, limit=200)[0]
        barrier = energy(0.0) - energy(-m)
        kramers = 2 * math.pi / math.sqrt(curvature(-m) * -curvature(0.0)) * math.exp(barrier)
        return barrier, kramers / exact

    def gaussian_wells(a: float) -> Callable[[float], float]:  # width 1, at +-a
        return lambda x: -float(np.logaddexp(-((x - a) ** 2) / 2, -((x + a) ** 2) / 2))

    def quartic(h: float) -> Callable[[float], float]:
        return lambda x: h * (x * x - 1) ** 2

    wells = [("Gaussian wells", gaussian_wells(a), a) for a in (2.0, 2.5, 3.0, 3.5)]
    wells += [("quartic h (x^2 - 1)^2", quartic(h), 1.0) for h in (1.0, 2.0, 4.0, 6.0)]
    for name, energy, m in wells:
        barrier, r = ratio(energy, m)
        print(f"{name}, barrier {barrier:.2f} / beta: Kramers / exact {r:.2f}")


def table() -> None:
    print(
        *table_head(
            "barrier (1/beta)",
            "saddles",
            "path / Laplace",
            "Kramers dwell",
            "simulated, core = 1 width",
            "simulated, core = energy",
            "Kramers / simulated (width)",
            "Kramers / simulated (energy)",
        ),
        sep="\n",
    )
    for r in sorted(read_jsonl(RESULTS), key=lambda r: r["barrier_beta"]):
        print(
            f"| {r['barrier_beta']:.2f} | {r['saddles']} | {r['barrier_top_ratio']:.2f} | "
            f"{np.mean(r['kramers']):.1f} | "
            f"{np.mean(r['simulated_core_width']):.1f} | "
            f"{np.mean(r['simulated_core_energy']):.1f} | "
            f"{r['kramers_over_width']:.2f} | {r['kramers_over_energy']:.2f} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--separations", type=float, nargs="+", default=[3.5, 4, 4.5, 5, 5.5, 6, 6.5])
    p.add_argument("--paths", type=int, default=200)
    p.add_argument("--length", type=int, default=1500, help="time units per path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--table", action="store_true", help="print the rows as a table")
    p.add_argument("--exact-1d", action="store_true", help="the 1-D comparison (no simulation)")
    a = p.parse_args()
    if a.table:
        table()
        return
    if a.exact_1d:
        exact_1d()
        return
    torch.set_num_threads(a.threads)
    for s in a.separations:
        t0 = time.perf_counter()
        row = measure(s, a.paths, a.length, a.seed)
        append_row(RESULTS, {**row, "seconds": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
