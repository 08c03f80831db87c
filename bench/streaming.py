"""Streaming throughput in process: the service's labelling path against the bare GRU.

    python bench/streaming.py [--model models/exp2-underdamped] [--batches 1 16 256]

For B sessions stepped together one observation at a time (T steps) of data drawn from the
shipped exp2 spec (the default model's data), it times
- the floor: the model's GRU alone on the same batch, one step per call;
- the service path: `service.loaded.LoadedModel.label_chunk` (standardise, embedding MLP, GRU,
  context, readout head, basin lookup by the BasinIndex, energy), one step per call;
- basin assignment of the streams' positions by gradient flow (what the hot path must not
  do) against the index lookup the service uses.
Medians of 5 repeats, one thread; a row per batch size goes to bench/results/streaming.jsonl.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from record import append_row, median_seconds

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "streaming.jsonl"


def measure(lm: Any, b: int, steps: int) -> dict:
    from nld.analysis import assign_basins
    from nld.data import load_spec, sample

    model = lm.model
    spec = load_spec("exp2")
    if model.cfg.obs_dim == spec.dim:
        # Streams like the model's data (random inputs land off the data and in no basin).
        x = sample(spec, b, steps, seed=0).x.astype(np.float32)
    else:
        x = np.random.default_rng(0).standard_normal((b, steps, model.cfg.obs_dim), np.float32)
    # The GRU's own input (the embedding MLP's output width).
    xg = torch.randn(b, steps, model.gru.input_size)

    @torch.no_grad()
    def floor() -> None:
        h = None
        for t in range(steps):
            _, h = model.gru(xg[:, t : t + 1], h)

    def service_path() -> None:
        h, belief = None, None
        for t in range(steps):
            chunk = lm.label_chunk(x[:, t : t + 1], h, belief)
            h, belief = chunk.h, chunk.belief

    t_floor = median_seconds(floor)
    t_service = median_seconds(service_path)
    # Basin lookups of the positions of the whole streams (the first step is atypical).
    z = lm.label_chunk(x, None).positions
    pts = torch.from_numpy(z.reshape(-1, z.shape[-1]))[:2000]
    index = lm.analysis.index
    t_flow = median_seconds(lambda: assign_basins(index.energy, pts, lm.analysis.minima), 3)
    t_lookup = median_seconds(lambda: index.assign(pts.numpy(), exact=False), 3)
    events = b * steps
    return {
        "batch": b,
        "steps": steps,
        "threads": 1,
        "floor_us_per_event": 1e6 * t_floor / events,
        "service_us_per_event": 1e6 * t_service / events,
        "service_events_per_second": events / t_service,
        "ratio_to_floor": t_service / t_floor,
        "flow_us_per_point": 1e6 * t_flow / len(pts),
        "lookup_us_per_point": 1e6 * t_lookup / len(pts),
    }


def main() -> None:
    from service.config import Settings
    from service.loader import load_model

    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(ROOT / "models" / "exp2-underdamped"))
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    p.add_argument("--steps", type=int, default=100)
    a = p.parse_args()
    torch.set_num_threads(1)
    model_dir = Path(a.model).resolve()
    settings = Settings(models_dir=model_dir.parent, analysis_chains=128, analysis_steps=2000)
    lm = load_model(model_dir, settings)
    for b in a.batches:
        row = measure(lm, b, a.steps)
        row["model"] = Path(a.model).name
        append_row(RESULTS, row)


if __name__ == "__main__":
    main()
