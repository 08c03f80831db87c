"""Request and response bodies: every field with its meaning, units and an example.

Requests are strict: a number must be a JSON number (not "1.0", not true), a flag a JSON
boolean, a count a JSON integer; floats must be finite (JSON allows NaN and Infinity; they are
refused with 422); unknown fields are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

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
    observations: list[Vector] = Field(
        min_length=1,
        description="the chunk's observations, [T][D] in stream order, in the units of the "
        "model's training data (D = the model's `obs_dim`)",
        examples=[[[0.12, -1.3, 0.8], [0.15, -1.1, 0.7]]],
    )

    @model_validator(mode="after")
    def _rectangular(self) -> StreamRequest:
        dims = {len(o) for o in self.observations}
        if len(dims) > 1:
            raise ValueError(f"observations are ragged: rows of lengths {sorted(dims)}")
        return self


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


OCCUPANCY = Field(
    description="the share of time spent in each minimum's basin by each estimate: `sampling` "
    "(a), `zeroth` (b), `second` (c), `quadrature` (d) (see `GET /landscape/occupancy`); "
    "null where not computed",
    examples=[{"sampling": 0.446, "zeroth": 0.449, "second": 0.464, "quadrature": 0.45}],
)


class MinimumOut(BaseModel):
    position: list[float] = Field(
        description="the minimum, in latent units", examples=[[0.84, 0.31]]
    )
    energy: float = Field(description="E there, in energy units", examples=[34.58])
    hessian_eigenvalues: list[float] = Field(
        description="curvatures of E there, ascending (energy units per latent unit squared); "
        "all positive at a minimum",
        examples=[[5.2, 14.9]],
    )
    occupancy: dict[str, float | None] = OCCUPANCY


WARNINGS = Field(
    description="caveats of the analysis, in words: low barriers (where the harmonic "
    "estimates and the Kramers rates fail), a single well, barrier tops that are not "
    "quadratic, and the state chain's split test when the training data support one more "
    "state than there are minima",
    examples=[["2 barrier(s) below 2.0/beta: ..."]],
)


class MinimaResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    beta: float = Field(
        description="the inverse temperature: exp(-beta E) is the stationary density",
        examples=[1.36],
    )
    minima: list[MinimumOut] = Field(description="the minima of E: the hidden states, by index")
    warnings: list[str] = WARNINGS


OccupancyMethod = Literal["sampling", "zeroth", "second", "quadrature"]


class OccupancyResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    method: OccupancyMethod = Field(description="the estimate", examples=["quadrature"])
    description: str = Field(
        description="how it is computed",
        examples=["(d) grid quadrature of exp(-beta E) over each basin (latent dim <= 3)"],
    )
    occupancy: list[float] = Field(
        description="the share of time in each minimum's basin (sums to 1), by minimum index",
        examples=[[0.45, 0.344, 0.206]],
    )
    standard_error: list[float] | None = Field(
        description="its standard error by minimum (the sampling estimate only; else null)",
        examples=[[0.004, 0.004, 0.003]],
    )


class SaddleOut(BaseModel):
    between: tuple[int, int] = Field(
        description="the two minima (indices) it joins", examples=[[0, 2]]
    )
    position: list[float] = Field(
        description="the saddle point (latent units)", examples=[[0.1, 0.0]]
    )
    energy: float = Field(description="E there (energy units)", examples=[35.9])
    hessian_eigenvalues: list[float] = Field(
        description="curvatures of E there, ascending: exactly one is negative",
        examples=[[-3.1, 11.0]],
    )
    barriers: tuple[float, float] = Field(
        description="E_saddle - E_minimum seen from each end (energy units; multiply by beta "
        "for thermal units)",
        examples=[[1.32, 0.76]],
    )
    barrier_top_ratio: float = Field(
        description="the path integral of exp(beta (E - E_s)) over its Laplace value: near 1 "
        "where the Kramers rate through this saddle holds, larger at a sharp top",
        examples=[1.17],
    )


class TransitionsResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    saddles: list[SaddleOut] = Field(description="index-1 saddles between pairs of minima")
    clock: float = Field(
        description="the prior's clock (ModelConfig.clock): rates and dwell times are those of "
        "the landscape run this many times faster than in training, fitted to the data's "
        "dwell times when training ended (1: not fitted)",
        examples=[2.52],
    )
    rates: list[list[float | None]] = Field(
        description="the Kramers generator K[i][j], i != j: rate from minimum i to j per unit "
        "of model time (rows sum to 0)",
        examples=[[[-0.41, 0.2, 0.21], [0.3, -0.6, 0.3], [0.2, 0.3, -0.5]]],
    )
    dwell_times: list[float | None] = Field(
        description="mean dwell per state, in observation steps, from the Kramers rates "
        "(null: no exit)",
        examples=[[25.2, 11.8, 19.4]],
    )
    dwell_times_simulated: list[float | None] = Field(
        description="mean dwell per state, in observation steps, from simulating the prior "
        "(milestoning between the wells' cores; valid at any barrier height)",
        examples=[[23.5, 17.9, 20.3]],
    )
    transitions_simulated: list[list[int]] = Field(
        description="exits from state i to state j counted in the same simulation: nonzero "
        "where no saddle joins i and j means the prior passes a third well without settling",
        examples=[[[0, 120, 95], [110, 0, 80], [100, 75, 0]]],
    )
    warnings: list[str] = WARNINGS


RESOLUTION = Field(64, ge=2, le=4096, description="grid points per axis", examples=[64])


class BoxGrid(Strict):
    kind: Literal["box"] = Field(
        "box",
        description="an axis-aligned box of the latent space (the default kind)",
        examples=["box"],
    )
    lo: Vector = Field(
        description="the box's lower corner (latent units, one per latent axis)",
        examples=[[-2.0, -2.0]],
    )
    hi: Vector = Field(
        description="its upper corner, above `lo` on every axis", examples=[[2.0, 2.0]]
    )
    resolution: int = RESOLUTION


class PlaneGrid(Strict):
    kind: Literal["plane"] = Field(
        description="the plane through the minima (their best plane when there are more than "
        "three), centred on them",
        examples=["plane"],
    )
    resolution: int = RESOLUTION
    margin: float = Field(
        0.5,
        ge=0,
        le=10,
        description="extent beyond the minima, as a fraction of their spread",
        examples=[0.5],
    )


def _grid_kind(value: Any) -> str:
    kind = value.get("kind", "box") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) else ""


Grid = Annotated[
    Annotated[BoxGrid, Tag("box")] | Annotated[PlaneGrid, Tag("plane")],
    Discriminator(
        _grid_kind,
        custom_error_type="grid_kind",
        custom_error_message="kind must be 'box' or 'plane'",
    ),
]


class EnergyRequest(Strict):
    model: ModelName | None = model_field()
    grid: Grid = Field(
        description="where to evaluate E: a box (`kind` box, the default) or the plane through "
        "the minima (`kind` plane)",
        examples=[{"kind": "box", "lo": [-2, -2], "hi": [2, 2], "resolution": 64}],
    )


class EnergyResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    axes: list[list[float]] = Field(
        description="grid coordinates along each axis: latent units for a box, plane "
        "coordinates (latent units along `basis`) for a plane",
        examples=[[[-2.0, 0.0, 2.0], [-2.0, 0.0, 2.0]]],
    )
    origin: list[float] | None = Field(
        None,
        description="plane grids: the latent point at plane coordinates (0, 0)",
        examples=[[0.09, 0.44]],
    )
    basis: list[list[float]] | None = Field(
        None,
        description="plane grids: the two unit vectors of the plane in latent space",
        examples=[[[1.0, 0.0], [0.0, 1.0]]],
    )
    energy: list[Any] = Field(
        description="E on the grid (energy units), nested by axis: energy[i][j] at axes[0][i], "
        "axes[1][j]",
        examples=[[[40.1, 37.2, 41.0], [36.5, 35.9, 38.2], [41.3, 36.8, 42.2]]],
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
