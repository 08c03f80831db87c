"""Time of one model's full analysis (minima, four occupancies, saddles, rates) and of the
energy on a 256 x 256 grid (what POST /landscape/energy computes).

    python bench/landscape.py [--model models/exp2-underdamped] [--threads 2]

A row goes to bench/results/landscape.jsonl (the analysis' own per-stage seconds included).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from record import append_row

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "landscape.jsonl"


def main() -> None:
    from nld import checkpoint
    from nld.analysis import model_energy
    from nld.analysis.grid import plane_grid, plane_through
    from nld.landscape import analyze

    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(ROOT / "models" / "exp2-underdamped"))
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, _ = checkpoint.load(a.model)
    t0 = time.perf_counter()
    res = analyze(model, None)
    total = time.perf_counter() - t0
    energy = model_energy(model)
    centres = np.stack([m.position for m in res.minima])
    plane = plane_through(centres)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        plane_grid(energy, plane, (-3.0, 3.0, -3.0, 3.0), 256)
        times.append(time.perf_counter() - t0)
    grid_s = statistics.median(times)
    row = {
        "model": Path(a.model).name,
        "latent_dim": model.cfg.latent_dim,
        "threads": a.threads,
        "analysis_seconds": total,
        "stages": res.seconds,
        "n_minima": len(res.minima),
        "n_saddles": len(res.saddles),
        "grid_256_seconds": grid_s,
        "grid_points_per_second": 256 * 256 / grid_s,
    }
    append_row(RESULTS, row)


if __name__ == "__main__":
    main()
