"""The models the service holds, and reloading them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.schemas.common import (
    VERSION,
)


class ModelSummary(BaseModel):
    name: str = Field(
        description="the model's name: its directory's", examples=["exp2-underdamped"]
    )
    version: str = VERSION
    dynamics: str = Field(
        description="`overdamped` or `underdamped` Langevin dynamics (or the NSDE baseline's)",
        examples=["underdamped"],
    )
    obs_dim: int = Field(description="D: the dimension of an observation", examples=[15])
    latent_dim: int = Field(description="d: the dimension of the latent position", examples=[2])
    n_minima: int | None = Field(
        description="minima of its energy: the hidden states (null: no energy)", examples=[3]
    )
    streams: bool = Field(
        description="`POST /segment/stream` serves it (it has an energy and a readout head)",
        examples=[True],
    )
    labels_from: str | None = Field(
        None,
        description="what stream labels are: 'state chain' (the most probable minimum under "
        "the causal filter of the hidden Markov chain over the minima), 'basin head' (the most "
        "probable basin, from a classifier of the context) or 'readout basins' (the basin of "
        "the readout position)",
        examples=["state chain"],
    )
    analysis: str = Field(
        description="where its landscape analysis came from: `stored` (read from the file "
        "beside the model, or from the cache) or `computed` at load; `none` without an energy",
        examples=["stored"],
    )
    load_seconds: float = Field(
        description="seconds it took to load, analysis included", examples=[0.9]
    )


class ModelDetail(ModelSummary):
    config: dict[str, Any] = Field(
        description="its architecture and dynamics (nld.model.ModelConfig)",
        examples=[{"obs_dim": 15, "latent_dim": 2, "dynamics": "underdamped"}],
    )
    meta: dict[str, Any] = Field(
        description="its training record: preset, data, iterations, stages",
        examples=[{"preset": "exp2-underdamped", "iteration": 1500}],
    )
    card: str | None = Field(
        description="its model card (MODEL_CARD.md, Markdown), if it has one",
        examples=["# exp2-underdamped\n..."],
    )


class ModelsResponse(BaseModel):
    default: str | None = Field(
        description="the model a request that names none gets", examples=["exp2-underdamped"]
    )
    models: list[ModelSummary] = Field(description="the models that serve")
    loading: dict[str, str] = Field(
        description="models that do not serve yet: name -> what is being done", examples=[{}]
    )
    failed: dict[str, str] = Field(
        description="models that could not be loaded: name -> why", examples=[{}]
    )


class ReloadOut(BaseModel):
    ok: bool = Field(description="every changed model loaded", examples=[True])
    loaded: dict[str, str] = Field(
        description="models (re)loaded: name -> new version",
        examples=[{"exp2-underdamped": "85ad2582f8b659c6"}],
    )
    unchanged: list[str] = Field(description="models whose weights did not change", examples=[[]])
    removed: list[str] = Field(description="models no longer in the directory", examples=[[]])
    failed: dict[str, str] = Field(
        description="models that failed: name -> why (the old version serves)", examples=[{}]
    )
