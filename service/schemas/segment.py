"""Segmentation: a chunk of a stream in, its labels out; or a whole recording at once."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.schemas.common import (
    MODEL_OUT,
    VERSION,
    ModelName,
    Observations,
    SessionId,
    Strict,
    model_field,
)


class StreamRequest(Strict):
    model: ModelName | None = model_field()
    session_id: SessionId | None = Field(
        None,
        description="continue this session; with `seq` 0, open it under this id (a client's "
        "own id makes the first chunk safe to retry). 8-128 letters, digits, `-` or `_`. "
        "Omitted: open a new session with an id chosen by the service",
        examples=["k3Jd9sPq0aZx-2bQyL7wVA"],
    )
    seq: int | None = Field(
        None,
        ge=0,
        description="this chunk's number in its session: 0, 1, 2, ... A gap or a reordering "
        "is 409; a repeat of the last chunk returns its stored answer without advancing, so "
        "every chunk sent with `seq` is safe to retry. Omitted: chunks are applied as they come",
        examples=[0],
    )
    end: bool = Field(
        False,
        description="the stream ends with this chunk: the session closes (a retry of this chunk "
        "still gets its answer until the session's TTL); a first chunk with `end` needs no "
        "session at all",
        examples=[False],
    )
    observations: Observations = Field(
        min_length=1,
        description="the chunk's observations, [T][D] in stream order, in the units of the "
        "model's training data (D = the model's `obs_dim`)",
        examples=[[[0.12, -1.3, 0.8], [0.15, -1.1, 0.7]]],
    )


class StepResult(BaseModel):
    t: int = Field(
        description="the observation's index in its stream (0 for the first of the session)",
        examples=[41],
    )
    label: int = Field(
        description="its state: the index of a minimum in `GET /landscape/minima`",
        examples=[2],
    )
    z: list[float] = Field(
        description="the latent position read from the stream so far (latent units)",
        examples=[[0.84, 0.31]],
    )
    energy: float = Field(description="E(z), in energy units", examples=[34.6])
    probabilities: list[float] | None = Field(
        None,
        description="each state's probability given the stream so far, in the order of the "
        "minima (the state chain's filter, or the basin head's probabilities); null for a "
        "model that labels by the basin of its readout position",
        examples=[[0.02, 0.05, 0.93]],
    )


class StreamResponse(BaseModel):
    session_id: str = Field(
        description="the session: send it with the next chunk", examples=["k3Jd9sPq0aZx-2bQyL7wVA"]
    )
    seq: int = Field(description="this chunk's number in the session", examples=[0])
    model: str = MODEL_OUT
    version: str = VERSION
    closed: bool = Field(
        description="the session is closed (the request's `end`)", examples=[False]
    )
    results: list[StepResult] = Field(description="one result per observation, in order")


class SegmentRequest(Strict):
    model: ModelName | None = model_field()
    observations: Observations = Field(
        min_length=2,
        description="one recording, [T][D] in time order, in the units of the model's training "
        "data (D = the model's `obs_dim`)",
        examples=[[[0.12, -1.3, 0.8], [0.15, -1.1, 0.7]]],
    )
    offline: bool = Field(
        False,
        description="label each step from the whole recording (the state chain over the "
        "model's minima) instead of from the steps before it (online, as a stream is labelled)",
        examples=[True],
    )
    method: Literal["smooth", "viterbi"] = Field(
        "smooth",
        description="offline: each step's most probable state (smooth) or the most probable "
        "sequence of states (viterbi)",
        examples=["smooth"],
    )


class SegmentResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    offline: bool = Field(description="labelled from the whole recording", examples=[True])
    labels: list[int] = Field(
        description="each step's state: the index of a minimum in `GET /landscape/minima`",
        examples=[[0, 0, 2]],
    )
    probabilities: list[list[float]] | None = Field(
        description="[T][K] each state's probability at each step (online: given the steps so "
        "far; offline: given the whole recording); null for a model that gives none",
        examples=[[[0.97, 0.01, 0.02], [0.95, 0.01, 0.04], [0.1, 0.0, 0.9]]],
    )
    z: list[list[float]] = Field(
        description="[T][d] the latent position read at each step (latent units)",
        examples=[[[0.84, 0.31], [0.83, 0.3], [-0.5, 1.2]]],
    )
