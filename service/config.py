"""Service settings: every one can be set by an environment variable NLD_<NAME>."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NLD_", extra="forbid")

    models_dir: Path = Field(
        ROOT / "models", description="one checkpoint directory per model; its name is the model's"
    )
    default_model: str | None = Field(
        None, description="model used when a request names none (default: the first by name)"
    )
    api_key: SecretStr | None = Field(
        None,
        description="if set, every endpoint but /healthz and /readyz (docs and /metrics "
        "included) needs it, as `X-API-Key: KEY` or `Authorization: Bearer KEY`",
    )
    public_docs: bool = Field(
        False, description="with an API key, leave /docs, /redoc and /openapi.json open"
    )
    cache_dir: Path | None = Field(
        None,
        description="where analyses are stored when a model's directory is read-only "
        "(unset: $XDG_CACHE_HOME/nld, else ~/.cache/nld)",
    )
    session_ttl_seconds: float = Field(600.0, gt=0, description="idle sessions expire after this")
    max_sessions: int = Field(10_000, gt=0, description="open sessions; beyond, 429")
    max_body_bytes: int = Field(1_000_000, gt=0, description="larger request bodies get 413")
    max_observations: int = Field(10_000, gt=0, description="observations per stream chunk")
    max_grid_points: int = Field(250_000, gt=0, description="points of one energy grid")
    max_sample_paths: int = Field(1_000, gt=0, description="paths of one /sample")
    max_sample_steps: int = Field(5_000, gt=0, description="steps of one /sample")
    max_sample_values: int = Field(2_000_000, gt=0, description="paths x (steps + 1) x d")
    analysis_chains: int = Field(256, gt=0, description="MALA chains of the occupancy (a)")
    analysis_steps: int = Field(4_000, gt=0, description="MALA steps of the occupancy (a)")
    threads: int = Field(2, gt=0, description="torch threads of the process")
    device: str = Field(
        "cpu",
        pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$",
        description="where the models compute labels, energies along streams and prior paths: "
        "cpu, auto (a GPU when torch sees one), cuda, cuda:N or mps; the landscape analysis "
        "and energy grids stay on the CPU in float64",
    )
    request_read_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="a request's headers, and then its body, must arrive within this (else 408)",
    )
    session_store: str = Field(
        "memory",
        pattern=r"^(memory|rediss?://.+|unix://.+)$",
        description="`memory` (one worker) or a Redis URL shared by workers and replicas",
    )
    session_key_prefix: str = Field(
        "nld:", min_length=1, description="prefix of the Redis keys (to share one Redis)"
    )
    store_timeout_seconds: float = Field(
        2.0, gt=0, description="a Redis call slower than this answers 503"
    )
    drain_seconds: float = Field(
        3.0, ge=0, description="after SIGTERM, /readyz answers 503 this long before shutdown"
    )
    reload_poll_seconds: float = Field(
        2.0, gt=0, description="how often a worker checks the store for a model reload"
    )

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, v: object) -> object:
        """`NLD_API_KEY=` (as compose passes an unset variable) means no key."""
        return None if v == "" else v
