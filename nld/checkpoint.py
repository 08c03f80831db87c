"""Checkpoints: `config.json` (hyperparameters) + `model.safetensors` (weights). Never pickle.

`save` writes both files atomically (weights first, so a config never names missing weights);
`load` rebuilds the model from the JSON and fills the weights strictly.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from nld import state_chain
from nld.errors import CheckpointError
from nld.io import write_bytes, write_json
from nld.model import ModelConfig, NLDModel

FORMAT = "nld-checkpoint"
VERSION = 1
CONFIG, WEIGHTS = "config.json", "model.safetensors"


def save(
    run_dir: str | os.PathLike[str], model: NLDModel, meta: dict[str, Any] | None = None
) -> None:
    d = Path(run_dir)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if model.chain is not None:
        tensors.update(state_chain.to_tensors(model.chain))
    write_bytes(d / WEIGHTS, st_save(tensors))
    write_json(
        d / CONFIG,
        {"format": FORMAT, "version": VERSION, "model": model.cfg.model_dump(), "meta": meta or {}},
    )


def read_config(run_dir: str | os.PathLike[str]) -> tuple[ModelConfig, dict[str, Any]]:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (is {run_dir} a checkpoint directory?)")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nld checkpoint config (no format {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {doc.get('version')}, expected {VERSION}"
        )
    try:
        cfg = ModelConfig.model_validate(doc.get("model"))
    except ValidationError as e:
        raise CheckpointError(f"{path}: invalid model config: {e}") from None
    return cfg, doc.get("meta") or {}


def weights_sha256(run_dir: str | os.PathLike[str]) -> str:
    """The SHA-256 of a checkpoint's weights file (hex): what a stored analysis belongs to,
    and (its first 16 digits) the model's version in the service."""
    h = hashlib.sha256()
    try:
        with (Path(run_dir) / WEIGHTS).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise CheckpointError(f"{Path(run_dir) / WEIGHTS}: cannot be read ({e})") from None
    return h.hexdigest()


def read_tensors(path: Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file (or of its bytes, `data`, already read), with a
    clear error if it is missing or damaged."""
    if data is None:
        if not path.is_file():
            raise CheckpointError(f"{path}: missing")
        data = path.read_bytes()
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({e})") from None


def load(run_dir: str | os.PathLike[str]) -> NLDModel:
    """Rebuild the model of a checkpoint directory, in eval mode on the CPU."""
    return load_with_sha256(run_dir)[0]


def load_with_sha256(run_dir: str | os.PathLike[str]) -> tuple[NLDModel, str]:
    """The model, and the SHA-256 of the very bytes its weights were read from."""
    cfg, _ = read_config(run_dir)
    model = NLDModel(cfg)
    path = Path(run_dir) / WEIGHTS
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: missing or unreadable ({e.strerror})") from None
    tensors = read_tensors(path, data)
    chain = {k: tensors.pop(k) for k in list(tensors) if k.startswith(state_chain.PREFIX)}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{run_dir}: weights do not match the config "
            f"(missing {missing[:5]}, unexpected {extra[:5]})"
        )
    for k, v in tensors.items():
        if v.shape != expected[k].shape:
            raise CheckpointError(
                f"{run_dir}: weight {k} has shape {tuple(v.shape)}, "
                f"the config implies {tuple(expected[k].shape)}"
            )
        if not torch.isfinite(v).all():
            raise CheckpointError(f"{run_dir}: weight {k} has non-finite values")
    model.load_state_dict(tensors, strict=True)
    attach_chain(model, chain, run_dir)
    return model.eval(), hashlib.sha256(data).hexdigest()


def attach_chain(model: NLDModel, tensors: dict[str, torch.Tensor], where: object) -> None:
    """Give `model`, its weights loaded, the state chain stored in `tensors` (if any)."""
    if not tensors:
        return
    try:
        chain = state_chain.from_tensors(tensors, model.cfg.obs_dim, model.cfg.latent_dim)
    except ValueError as e:
        raise CheckpointError(f"{where}: {e}") from None
    # The chain's states are the basin head's minima (its labels index them): a chain over
    # other positions would label garbage.
    if not torch.equal(torch.as_tensor(chain.positions), model.fitted_minima().double()):
        raise CheckpointError(f"{where}: the state chain's states are not the basin head's minima")
    model.chain = chain
