"""Do two runs hold the same checkpoint? For a refactoring that must not change what training
computes: train the same preset, seed and thread count with the code before and after
(`nld train`, the old code from a worktree with PYTHONPATH pointed at it), then

    python bench/same_checkpoint.py BEFORE_RUN AFTER_RUN [--label NAME]

compares the weights tensor by tensor (and the files byte by byte), the model config, and the
training record in `meta` (timings aside), and the training settings as they load today (a
config in an older form migrated). A row goes to bench/results/same_checkpoint.jsonl.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from record import append_row
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "same_checkpoint.jsonl"
TIMINGS = {"seconds", "train_seconds"}


def _untimed(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _untimed(v) for k, v in x.items() if k not in TIMINGS}
    if isinstance(x, list):
        return [_untimed(v) for v in x]
    return x


def _settings(config: dict[str, Any]) -> dict[str, Any] | None:
    from nld.fitting.config import TrainConfig

    train = config["meta"].get("train")
    return None if train is None else TrainConfig.model_validate(train).model_dump()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--label", default="", help="what was compared, for the row")
    a = p.parse_args()
    wa, wb = load_file(a.before / "model.safetensors"), load_file(a.after / "model.safetensors")
    shared = sorted(set(wa) & set(wb))
    diff = max(
        (float(np.abs(wa[k].astype(np.float64) - wb[k].astype(np.float64)).max()) for k in shared),
        default=0.0,
    )
    ca, cb = (json.loads((d / "config.json").read_text()) for d in (a.before, a.after))
    meta = sorted(
        k
        for k in (set(ca["meta"]) | set(cb["meta"])) - TIMINGS
        if _untimed(ca["meta"].get(k)) != _untimed(cb["meta"].get(k))
    )
    append_row(
        RESULTS,
        {
            "label": a.label,
            "before": str(a.before),
            "after": str(a.after),
            "tensors": len(shared),
            "tensors_only_in_one": sorted(set(wa) ^ set(wb)),
            "max_abs_diff": diff,
            "weights_file_identical": (a.before / "model.safetensors").read_bytes()
            == (a.after / "model.safetensors").read_bytes(),
            "model_config_identical": ca["model"] == cb["model"],
            "meta_differs_in": meta,
            # The training config as it loads today (older forms migrated): the same settings?
            "train_settings_identical": _settings(ca) == _settings(cb),
        },
    )


if __name__ == "__main__":
    main()
