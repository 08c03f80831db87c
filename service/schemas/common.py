"""What the request and response bodies share: strict numbers, names, errors, health."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Vector = Annotated[list[Finite], Field(min_length=1, max_length=4096)]
ModelName = Annotated[str, Field(min_length=1, max_length=128)]


def model_field() -> Any:
    """The `model` field of a request: a model's name, or none for the default."""
    return Field(
        None,
        description="a model's name (its directory's); omitted: the service's default model",
        examples=["exp2-underdamped"],
    )


SESSION_ID = r"^[A-Za-z0-9_-]{8,128}$"
SessionId = Annotated[str, Field(pattern=SESSION_ID)]
VERSION = Field(
    description="the model's version: the first 16 hex digits of the SHA-256 of its weights",
    examples=["85ad2582f8b659c6"],
)
MODEL_OUT = Field(description="the model that answered", examples=["exp2-underdamped"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FieldError(BaseModel):
    loc: list[str | int] = Field(
        description="where: `body`, `query` or `path`, then the field and list indices",
        examples=[["body", "observations", 0, 1]],
    )
    msg: str = Field(description="what is wrong", examples=["Input should be a valid number"])
    type: str = Field(description="the kind of error (pydantic's code)", examples=["float_type"])
    input: Any = Field(
        None,
        description="the rejected value, or the first characters of its JSON when longer",
        examples=["1.0"],
    )


class Problem(BaseModel):
    """The body of every error response."""

    detail: str = Field(
        description="what went wrong and what to do about it",
        examples=["observations have dimension 3; model 'exp2-underdamped' expects 15"],
    )
    errors: list[FieldError] | None = Field(
        None, description="422 for invalid input: one entry per invalid field"
    )


class Health(BaseModel):
    status: Literal["ok"] = Field(description="the process serves HTTP", examples=["ok"])


class Readiness(BaseModel):
    ready: bool = Field(description="send traffic to this process", examples=[True])
    draining: bool = Field(
        description="SIGTERM received: finishing requests in flight before exiting",
        examples=[False],
    )
    models: dict[str, str] = Field(
        description="models that serve: name -> version",
        examples=[{"exp2-underdamped": "85ad2582f8b659c6"}],
    )
    loading: dict[str, str] = Field(
        description="models that do not serve yet: name -> what is being done",
        examples=[
            {"paper": "analysing its landscape (no stored analysis for its weights) (41 s so far)"}
        ],
    )
    failed: dict[str, str] = Field(
        description="models that could not be loaded: name -> why", examples=[{}]
    )
    sessions: str = Field(
        description="the session store and its state when last read", examples=["redis: ok"]
    )
    pid: int = Field(description="the worker process that answered", examples=[4242])


def rectangular(rows: list[list[float]]) -> list[list[float]]:
    """Observations [T][D]: every row of the same length."""
    dims = {len(o) for o in rows}
    if len(dims) > 1:
        raise ValueError(f"observations are ragged: rows of lengths {sorted(dims)}")
    return rows


Observations = Annotated[list[Vector], AfterValidator(rectangular)]
