"""Trainer state for `--resume`: model, optimizers and RNG in one safetensors file, no pickle.

Everything lives in a single file written atomically, so a crash leaves either the previous
state or the new one, never a mix. Scalars (iteration, schedules) ride in its JSON metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from nld.checkpoint import fitted_from, read_tensors
from nld.errors import CheckpointError
from nld.fitted import CHAIN_PREFIXES, Fitted
from nld.fitting.early_stop import Stopping
from nld.fitting.step import Optimizers
from nld.io import write_bytes
from nld.model import NLDModel

FILE = "trainer.safetensors"


@dataclass
class Progress:
    iteration: int = 0
    lr_scale: float = 1.0
    clip_scale: float = 1.0
    rollbacks: int = 0
    seconds: float = 0.0
    # The records of the stages done (nld.fitting.pipeline), by their key in `meta`.
    records: dict[str, Any] = field(default_factory=dict)
    stopping: Stopping = field(default_factory=Stopping)  # the held-out ELBO (early_stop)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Progress:
        """From its JSON, also as states written before the records were one dict (a
        field per stage)."""
        doc = dict(doc)
        records = doc.pop("records", {})
        for key in ("calibration", "basin_head", "separation", "depths", "clock"):
            if doc.get(key) is not None:
                records[key] = doc[key]
            doc.pop(key, None)
        stopping = Stopping(**(doc.pop("stopping", None) or {}))
        return cls(**doc, records=records, stopping=stopping)


def save_state(
    run_dir: Path,
    model: NLDModel,
    fitted: Fitted,
    opts: Optimizers,
    gen: torch.Generator,
    progress: Progress,
) -> None:
    tensors = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for k, v in fitted.to_tensors(model.cfg).items():  # the basin table as model.*, as it was
        tensors[k if k.startswith(CHAIN_PREFIXES) else f"model.{k}"] = v
    groups = {}
    for name, opt in opts.items():
        opt_state = opt.state_dict()
        groups[name] = opt_state["param_groups"]
        for idx, st in opt_state["state"].items():
            for key, val in st.items():
                tensors[f"opt.{name}.{idx}.{key}"] = torch.as_tensor(val).cpu().clone()
    tensors["rng"] = gen.get_state().clone()
    meta = {"progress": json.dumps(asdict(progress)), "param_groups": json.dumps(groups)}
    write_bytes(run_dir / FILE, st_save(tensors, metadata=meta))


def load_state(
    run_dir: Path, model: NLDModel, fitted: Fitted, opts: Optimizers, gen: torch.Generator
) -> Progress:
    """Fill `model`, `fitted`, the optimizers and `gen` from the state in `run_dir`; its
    progress."""
    path = run_dir / FILE
    tensors = read_tensors(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    try:
        progress = Progress.from_json(json.loads(meta["progress"]))
        groups = json.loads(meta["param_groups"])
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: trainer metadata missing or damaged ({e})") from None
    if set(groups) != set(opts):
        raise CheckpointError(f"{path}: optimizers {sorted(groups)}, expected {sorted(opts)}")
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    weights |= {k: v for k, v in tensors.items() if k.startswith(CHAIN_PREFIXES)}
    stored = fitted_from(weights, model.cfg, path)
    fitted.restore(stored)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: model weights do not match the config ({e})") from None
    for name, opt in opts.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith(f"opt.{name}."):
                _, _, idx, key = k.split(".", 3)
                state.setdefault(int(idx), {})[key] = v
        opt.load_state_dict({"state": state, "param_groups": groups[name]})
    gen.set_state(tensors["rng"])
    clock = progress.records.get("clock")
    if clock is not None:  # the config rebuilt the model with clock 1
        model.set_clock(clock["clock"])
    return progress
