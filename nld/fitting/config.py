"""Training configs: TOML files validated by pydantic (unknown or mistyped keys are errors).

    name = "mine"
    [model]               # nld.model.ModelConfig, except obs_dim (from the data)
    latent_dim = 2
    [train]               # the training loop: TrainSettings
    iterations = 1500
    [stages.calibrate]    # each stage after the loop: its module's Settings
    iterations = 300

Configs written before the stages had sections (`train.calibrate_iterations`, ...) still
load: `LEGACY` says where each of their keys went.
"""

from __future__ import annotations

import difflib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
        "are multimodal (nld.fitting.rescue), continue rescue_iterations more iterations at "
        "this KL weight",
    )
    rescue_iterations: int = Field(750, gt=0)
    prior_steps: int = Field(
        4, ge=1, description="optimizer steps on the prior's drift per iteration (free posterior)"
    )
    holdout: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="share of the training sequences the loop does not train on; it stops when "
        "their ELBO has stopped improving (nld.fitting.early_stop; 0: no early stop, all "
        "iterations run)",
    )
    patience: int = Field(
        300, gt=0, description="with a holdout: iterations without a gain of min_gain to stop"
    )
    min_gain: float = Field(
        0.003,
        ge=0,
        description="held-out ELBO gain that counts as improving, in nats per observed value "
        "(per step and channel)",
    )
    holdout_every: int = Field(50, gt=0, description="iterations between two held-out ELBOs")
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
        "KL weight any candidate ended with (nld.fitting.restarts)",
    )
    threads: int = Field(2, gt=0, description="torch threads (set explicitly: cores are shared)")
    device: str = Field(
        "cpu",
        pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$",
        description="where the training loop runs: auto (a GPU when torch sees one), cpu, "
        "cuda, cuda:N or mps; the stages after it and the analysis run on the CPU",
    )


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    description: str = ""
    model: dict[str, Any] = Field(
        default_factory=dict, description="ModelConfig fields except obs_dim (from the data)"
    )
    train: TrainSettings = Field(default_factory=TrainSettings)
    stages: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="each stage's settings by its name (nld.fitting.pipeline.STAGES), "
        "validated by the stage's Settings; every stage's, its defaults filled in",
    )

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, doc: Any) -> Any:
        """Move the stage settings of an older config from [train] to [stages]."""
        if not isinstance(doc, dict) or not isinstance(doc.get("train"), dict):
            return doc
        train, stages = dict(doc["train"]), doc.get("stages") or {}
        if not (isinstance(stages, dict) and all(isinstance(v, dict) for v in stages.values())):
            return doc  # not tables: the field's own validation says so
        stages = {k: dict(v) for k, v in stages.items()}
        for old, (stage, key) in LEGACY.items():
            if old not in train:
                continue
            value, section = train.pop(old), stages.setdefault(stage, {})
            if key in section and section[key] != value:
                raise ValueError(
                    f"train.{old} = {value!r} and stages.{stage}.{key} = {section[key]!r}: "
                    f"give stages.{stage}.{key} only"
                )
            section[key] = value
        return {**doc, "train": train, "stages": stages}

    @model_validator(mode="after")
    def _check_stages(self) -> TrainConfig:
        from nld.fitting.pipeline import STAGES

        names = [s.name for s in STAGES]
        unknown = sorted(set(self.stages) - set(names))
        if unknown:
            raise ValueError(f"no stage {', '.join(unknown)}; the stages are {', '.join(names)}")
        checked = {}
        for stage in STAGES:
            try:
                checked[stage.name] = stage.Settings.model_validate(
                    self.stages.get(stage.name, {})
                ).model_dump()
            except ValidationError as e:
                raise ValueError(f"[stages.{stage.name}] {problems(e, stage.Settings)}") from None
        self.stages = checked
        return self

    def stage_settings(self, name: str) -> Any:
        """The validated settings of the stage `name` (its module's Settings)."""
        from nld.fitting.pipeline import stage_named

        return stage_named(name).Settings.model_validate(self.stages.get(name, {}))

    def model_config_for(self, obs_dim: int) -> ModelConfig:
        try:
            return ModelConfig.model_validate({**self.model, "obs_dim": obs_dim})
        except ValidationError as e:
            raise ConfigError(f"config {self.name}: [model] {problems(e, ModelConfig)}") from None


Schema = TypeVar("Schema", bound=BaseModel)

# Keys of [train] in configs from before [stages]: (stage, key) where they live now.
LEGACY = {
    "calibrate_iterations": ("calibrate", "iterations"),
    "basin_head_iterations": ("basin-head", "iterations"),
    "state_chain": ("basin-head", "state_chain"),
    "separate_rounds": ("separate", "rounds"),
    "separate_iterations": ("separate", "iterations"),
    "depths_iterations": ("depths", "iterations"),
    "clock": ("clock", "enabled"),
}


def problems(e: ValidationError, schema: type[BaseModel] | None = None) -> str:
    """A validation error in one line: each invalid setting, what is wrong, what was given;
    for a setting `schema` does not have, the nearest one it has."""

    def one(err: Any) -> str:
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "value_error":  # a validator's own message says it all
            return err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            return f"{where}: {err['msg']}"
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), _names(schema, err["loc"]), 1)
            return f"{where}: no such setting" + (f" (did you mean {close[0]}?)" if close else "")
        return f"{where}: {err['msg']} (got {err.get('input')!r})"

    return "; ".join(one(err) for err in e.errors())


def _names(schema: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The settings of the table at loc[:-1] of `schema` (none where it is not a schema)."""
    for part in loc[:-1]:
        field = None if schema is None else schema.model_fields.get(str(part))
        kind = None if field is None else field.annotation
        schema = kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None
    return [] if schema is None else list(schema.model_fields)


def presets() -> list[str]:
    root = resources.files("nld.fitting").joinpath("presets")
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
        text = resources.files("nld.fitting").joinpath(f"presets/{name}.toml").read_text()
        where = f"preset {name}"
    cfg = read_toml(text, where, TrainConfig)
    cfg.model_config_for(1)  # validate the [model] table now, not after loading data
    return cfg


def read_toml(text: str, where: str, schema: type[Schema]) -> Schema:
    """`text`, a TOML document, as `schema` validates it; ConfigError naming `where` and each
    problem in one line."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML ({e})") from None
    try:
        return schema.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(f"{where}: {problems(e, schema)}") from None


def with_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """`cfg` with `{"model.x": v, "train.y": v, "stages.calibrate.iterations": v}` set,
    validated like a preset file (older keys, `train.calibrate_iterations`, are migrated)."""
    doc = cfg.model_dump()
    for key, value in overrides.items():
        parts = key.split(".")
        if key == "model.obs_dim":
            raise ConfigError("model.obs_dim is not a setting: it is the data's number of channels")
        if parts[0] in ("model", "train") and len(parts) == 2 and parts[1]:
            if parts[0] == "train" and parts[1] in LEGACY:
                parts = ["stages", *LEGACY[parts[1]]]
            else:
                doc[parts[0]][parts[1]] = value
                continue
        if parts[0] != "stages" or len(parts) != 3 or not all(parts):
            raise ConfigError(
                f"{key!r}: an override is model.NAME, train.NAME or stages.STAGE.NAME"
            )
        doc["stages"].setdefault(parts[1], {})[parts[2]] = value
    try:
        out = TrainConfig.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(f"override: {problems(e, TrainConfig)}") from None
    out.model_config_for(1)
    return out
