"""The Python API: what `import nld` costs, and the shipped model used through it.

    python bench/api.py [--model models/exp2-underdamped] [--repeats 5] [--threads 2]
                        [--data ../shared/benchmarks/exp2-test.npz]

- `import nld` in a fresh interpreter: median wall seconds over the repeats, and which of
  torch, fastapi, matplotlib, training and service it imported (none, by design); beside it
  the first use of `nld.NLD`, which imports torch and the fitting code;
- `nld.load(MODEL)` (reading the stored analysis), then `predict` online, offline (smoothed)
  and offline by Viterbi on the data with known states: accuracy after the best one-to-one
  matching, beside the Bayes limits of the HMM that drew the data (its true parameters), and
  whether the online labels equal those of `nld.inference.label` (minima searched from the
  data themselves).
A row goes to bench/results/api.jsonl.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from record import append_row, median_seconds

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "api.jsonl"
HEAVY = ("torch", "fastapi", "matplotlib", "training", "service")


def _seconds(code: str, repeats: int) -> float:
    """Median wall seconds of `python -c code` in a fresh interpreter."""
    run = [sys.executable, "-c", code]
    return median_seconds(lambda: subprocess.run(run, check=True, cwd=ROOT), repeats)


def _as_model_minima(model: Any, x: np.ndarray) -> np.ndarray:
    """`nld segment`'s labels of x (nld.inference.label: minima searched from x itself),
    renumbered as the nearest of the model's own minima."""
    from nld.inference import label

    found = label(model.model_, model.fitted_, x)
    positions = np.stack([m.position for m in found.landscape.minima])
    nearest = np.linalg.norm(positions[:, None] - model.minima_[None], axis=-1).argmin(1)
    return nearest[found.labels]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "exp2-underdamped")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared/benchmarks/exp2-test.npz")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--spec", default="exp2", help="the HMM that drew --data: its Bayes limits")
    a = p.parse_args()

    probe = f"import sys, nld; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    row: dict = {
        "import_nld_seconds": round(_seconds("import nld", a.repeats), 3),
        "import_nld_loads": loaded.split(",") if loaded else [],
        "first_use_seconds": round(_seconds("import nld; nld.NLD", a.repeats), 3),
        "python": sys.version.split()[0],
    }

    import torch

    import nld
    from nld.analysis import match_labels
    from nld.data import bayes_limits, load, load_spec

    torch.set_num_threads(a.threads)
    data = load(a.data)
    assert data.states is not None, f"{a.data} has no states to score against"
    t0 = time.perf_counter()
    model = nld.load(a.model)
    row["load_seconds"] = round(time.perf_counter() - t0, 3)
    k = model.n_states_
    t0 = time.perf_counter()
    online = model.predict(data.x)
    row["predict_seconds"] = round(time.perf_counter() - t0, 3)
    offline = model.predict(data.x, online=False)
    viterbi = model.predict(data.x, online=False, method="viterbi")
    limits = bayes_limits(load_spec(a.spec), data.x, data.states)
    row.update(
        model=str(a.model.relative_to(ROOT) if a.model.is_relative_to(ROOT) else a.model),
        data=a.data.name,
        shape=list(data.x.shape),
        threads=a.threads,
        n_states=k,
        accuracy_online=round(match_labels(online, data.states, k).accuracy_mean, 4),
        accuracy_offline=round(match_labels(offline, data.states, k).accuracy_mean, 4),
        accuracy_viterbi=round(match_labels(viterbi, data.states, k).accuracy_mean, 4),
        limit_online=round(limits["online_filter_accuracy_mean"], 4),
        limit_offline=round(limits["offline_smoother_accuracy_mean"], 4),
        online_equals_nld_segment=bool((online == _as_model_minima(model, data.x)).all()),
    )
    append_row(RESULTS, row)


if __name__ == "__main__":
    main()
