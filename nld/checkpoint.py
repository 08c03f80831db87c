"""Checkpoints: `config.json` (hyperparameters) + `model.safetensors` (the network's weights and
what was fitted beside it, nld.fitted). Never pickle.

`save` writes both files atomically (weights first, so a config never names missing weights);
`load` rebuilds the network from the JSON, fills its weights strictly, and reads the fitted
minima and state chain.
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

from nld.errors import CheckpointError
from nld.fitted import Fitted
from nld.io import file_sha256, write_bytes, write_json
from nld.model import ModelConfig, NLDModel

FORMAT = "nld-checkpoint"
VERSION = 1
CONFIG, WEIGHTS = "config.json", "model.safetensors"


def save(
    run_dir: str | os.PathLike[str],
    model: NLDModel,
    fitted: Fitted,
    meta: dict[str, Any] | None = None,
) -> None:
    d = Path(run_dir)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tensors.update(fitted.to_tensors(model.cfg))
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
    try:
        return file_sha256(Path(run_dir) / WEIGHTS)
    except OSError as e:
        raise CheckpointError(f"{Path(run_dir) / WEIGHTS}: cannot be read ({e})") from None


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


def load(run_dir: str | os.PathLike[str]) -> tuple[NLDModel, Fitted]:
    """Rebuild the network of a checkpoint directory, in eval mode on the CPU, and what was
    fitted beside it."""
    model, fitted, _ = load_with_sha256(run_dir)
    return model, fitted


def load_with_sha256(run_dir: str | os.PathLike[str]) -> tuple[NLDModel, Fitted, str]:
    """`load`, and the SHA-256 of the very bytes the weights were read from."""
    cfg, _ = read_config(run_dir)
    model = NLDModel(cfg)
    path = Path(run_dir) / WEIGHTS
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: missing or unreadable ({e.strerror})") from None
    tensors = read_tensors(path, data)
    fitted = fitted_from(tensors, cfg, run_dir)
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
    return model.eval(), fitted, hashlib.sha256(data).hexdigest()


def fitted_from(tensors: dict[str, torch.Tensor], cfg: ModelConfig, where: object) -> Fitted:
    """The `Fitted` stored among `tensors`, taken out of them (Fitted.from_tensors), with a
    checkpoint error naming `where` if it does not fit the config."""
    try:
        return Fitted.from_tensors(tensors, cfg)
    except ValueError as e:
        raise CheckpointError(f"{where}: {e}") from None
