"""Labels, probabilities and latent path of a long recording: `NLD.segment` (one pass of the
encoder, as `nld segment` and the service's POST /segment use it) against `predict`,
`predict_proba` and `transform` called one after another, in the same process.

    python bench/label_pass.py [--model models/exp2-underdamped] [--steps 250000] [--threads 2]

The recording is drawn from the exp2 HMM (or, for a model of another dimension, from a
standard normal). Each way is timed `--repeats` times, alternating; the medians and their
ratio go to bench/results/label_pass.jsonl.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from record import append_row

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "label_pass.jsonl"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "exp2-underdamped")
    p.add_argument("--steps", type=int, default=250_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--offline", action="store_true")
    a = p.parse_args()
    import torch

    import nld
    from nld.data import load_spec, sample

    torch.set_num_threads(a.threads)
    model = nld.load(a.model)
    if model.n_features_in_ == 15:
        x = sample(load_spec("exp2"), 1, a.steps, seed=0).x[0]
    else:
        x = np.random.default_rng(0).normal(size=(a.steps, model.n_features_in_))
    online = not a.offline

    def three() -> None:
        model.predict(x, online=online)
        model.predict_proba(x, online=online)
        model.transform(x)

    def one() -> None:
        model.segment(x, online=online)

    times: dict[str, list[float]] = {"separate": [], "segment": []}
    for _ in range(a.repeats):
        for name, fn in (("separate", three), ("segment", one)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    row = {
        "model": str(a.model.relative_to(ROOT) if a.model.is_relative_to(ROOT) else a.model),
        "steps": a.steps,
        "online": online,
        "threads": a.threads,
        "separate_seconds": round(med["separate"], 2),
        "segment_seconds": round(med["segment"], 2),
        "ratio": round(med["separate"] / med["segment"], 2),
        "repeats": a.repeats,
        "command": "python bench/label_pass.py " + " ".join(sys.argv[1:]),
    }
    append_row(RESULTS, row)
    print(row)


if __name__ == "__main__":
    main()
