"""Training configs: TOML files validated by pydantic (unknown or mistyped keys are errors)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nld.errors import ConfigError
from nld.model import ModelConfig


class TrainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(1500, gt=0)
    batch_size: int = Field(64, gt=0)
    window: int | None = Field(
        100, gt=1, description="train on random windows of this many steps (None: whole sequences)"
    )
    lr: float = Field(3e-3, gt=0)
    lr_final: float = Field(3e-4, gt=0, description="cosine decay ends here")
    weight_decay: float = Field(0.0, ge=0)
    kl_warmup: int = Field(300, ge=0, description="iterations to anneal the KL weight to kl_final")
    kl_start: float = Field(0.1, ge=0, le=1)
    kl_final: float = Field(
        1.0, gt=0, le=1, description="KL weight after the warm-up (1: the true ELBO)"
    )
    rescue_kl: float | None = Field(
        None,
        gt=0,
        le=1,
        description="if training ends with a single energy minimum while the readout positions "
        "are multimodal (training.rescue), continue rescue_iterations more iterations at "
        "this KL weight",
    )
    rescue_iterations: int = Field(750, gt=0)
    prior_steps: int = Field(
        4, ge=1, description="optimizer steps on the prior's drift per iteration (free posterior)"
    )
    calibrate_iterations: int = Field(
        300,
        ge=0,
        description="steps of the final stage that fits the wells' depths to the time the "
        "posterior spends in each (training.calibrate; energy models, latent dimension <= 3)",
    )
    basin_head_iterations: int = Field(
        1500,
        gt=0,
        description="steps of the stage that fits the basin head (training.basin_head; models "
        "with model.basin_head)",
    )
    state_chain: bool = Field(
        True,
        description="with the basin head, also fit the hidden Markov chain over the minima "
        "(nld.state_chain) and label by its causal filter, unless its labels agree with the "
        "basin head's on less than training.basin_head.MIN_AGREEMENT of the training steps",
    )
    separate_rounds: int = Field(
        2,
        ge=0,
        description="when the state chain's split test says a well holds two states, at most "
        "this many rounds of the stage that pulls them apart (training.separate; 0: never)",
    )
    separate_iterations: int = Field(
        1000, gt=0, description="training iterations of one round of training.separate"
    )
    depths_iterations: int = Field(
        300,
        ge=0,
        description="steps of the stage that refits the wells' depths to the state chain's "
        "stationary distribution (training.depths; energy models with a state chain, latent "
        "dimension <= 3; 0: never)",
    )
    clock: bool = Field(
        True,
        description="once the other stages are done, set the prior's clock to the state "
        "chain's dwell times (training.clock; energy models with a state chain)",
    )
    grad_clip: float = Field(10.0, gt=0)
    checkpoint_every: int = Field(200, gt=0)
    log_every: int = Field(10, gt=0)
    max_rollbacks: int = Field(20, ge=0)
    seed: int = 0
    restarts: int = Field(
        1,
        ge=1,
        le=16,
        description="train this many candidates (seeds seed, seed + 1, ...) side by side and "
        "keep the one with the best objective on the training data: the ELBO, at the smallest "
        "KL weight any candidate ended with (training.restarts)",
    )
    threads: int = Field(2, gt=0, description="torch threads (set explicitly: cores are shared)")


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    description: str = ""
    model: dict[str, Any] = Field(
        default_factory=dict, description="ModelConfig fields except obs_dim (from the data)"
    )
    train: TrainSettings = Field(default_factory=TrainSettings)

    def model_config_for(self, obs_dim: int) -> ModelConfig:
        try:
            return ModelConfig.model_validate({**self.model, "obs_dim": obs_dim})
        except ValidationError as e:
            raise ConfigError(f"config {self.name}: [model] {problems(e)}") from None


def problems(e: ValidationError) -> str:
    """A validation error in one line: each invalid setting, what is wrong, what was given."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
        if err["type"] != "missing"
        else f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
        for err in e.errors()
    )


def presets() -> list[str]:
    root = resources.files("training").joinpath("presets")
    return sorted(p.name.removesuffix(".toml") for p in root.iterdir() if p.name.endswith(".toml"))


def load_config(preset: str | None = None, path: str | Path | None = None) -> TrainConfig:
    """A shipped preset by name, or a TOML file (`default` when neither is given)."""
    if preset and path:
        raise ConfigError("give either a preset or a config file, not both")
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file")
        text, where = p.read_text(), str(p)
    else:
        name = preset or "default"
        if name not in presets():
            raise ConfigError(f"no preset {name!r}; available: {', '.join(presets())}")
        text = resources.files("training").joinpath(f"presets/{name}.toml").read_text()
        where = f"preset {name}"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML ({e})") from None
    try:
        cfg = TrainConfig.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(f"{where}: {problems(e)}") from None
    cfg.model_config_for(1)  # validate the [model] table now, not after loading data
    return cfg


def with_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """`cfg` with `{"model.x": value, "train.y": value}` set, validated like a preset file."""
    doc = cfg.model_dump()
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in ("model", "train") or not name:
            raise ConfigError(f"{key!r}: an override is model.NAME or train.NAME")
        doc[section][name] = value
    try:
        out = TrainConfig.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(f"override: {problems(e)}") from None
    out.model_config_for(1)
    return out
