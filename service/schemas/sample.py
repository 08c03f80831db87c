"""Prior sampling: paths of the learned Langevin dynamics."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.schemas.common import (
    MODEL_OUT,
    VERSION,
    ModelName,
    Strict,
    Vector,
    model_field,
)


class SampleRequest(Strict):
    model: ModelName | None = model_field()
    n_paths: int = Field(16, ge=1, description="paths to draw", examples=[16])
    n_steps: int = Field(
        200,
        ge=1,
        description="steps of dt after the start: each path has n_steps + 1 rows",
        examples=[200],
    )
    dt: float = Field(
        0.1,
        gt=0,
        le=10,
        allow_inf_nan=False,
        description="model time between two rows, on the prior's clock (see "
        "`GET /landscape/transitions`); the model's own step between observations is its "
        "config's `dt`",
        examples=[0.1],
    )
    seed: int = Field(
        0, ge=0, lt=2**63, description="the same seed draws the same paths", examples=[0]
    )
    start: Vector | None = Field(
        None,
        description="the start position (latent units) of every path, at rest; omitted: "
        "draws of the prior's initial distribution",
        examples=[[0.84, 0.31]],
    )
    velocities: bool = Field(
        False,
        description="also return dq/dt of every row (underdamped models only)",
        examples=[False],
    )
    space: Literal["latent", "observed"] = Field(
        "latent",
        description="`latent`: positions in latent units; `observed`: the decoder's mean "
        "observation at each position, in the units of the training data (no observation noise)",
        examples=["latent"],
    )


class SampleResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    dt: float = Field(description="model time between two rows (the request's)", examples=[0.1])
    space: Literal["latent", "observed"] = Field(
        description="what `paths` holds (the request's `space`)", examples=["latent"]
    )
    paths: list[list[list[float]]] = Field(
        description="[n_paths][n_steps + 1][d] latent positions, or [..][..][D] observations",
        examples=[[[[0.84, 0.31], [0.86, 0.29]]]],
    )
    velocities: list[list[list[float]]] | None = Field(
        None,
        description="[n_paths][n_steps + 1][d] dq/dt in latent units per unit of model time, "
        "when asked for",
        examples=[None],
    )
