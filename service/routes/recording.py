"""A whole recording labelled at once, online or from the whole recording (offline)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from nld.errors import NLDError
from service.deps import AUTH, RegistryDep, SettingsDep, observations_array, resolve_energy_model
from service.schemas import Problem, SegmentRequest, SegmentResponse

router = APIRouter(tags=["segment"], dependencies=AUTH)


@router.post(
    "/segment",
    response_model=SegmentResponse,
    summary="Label a whole recording",
    description="""\
Labels every step of one recording with its state (a minimum of the energy) and gives each
state's probability at each step. Online (default), a step is labelled from the steps before
it, as `POST /segment/stream` labels a stream; with `offline: true`, from the whole
recording, by the model's hidden Markov chain over its minima (the state chain, or where
that one does not fit the data the basin head's chain): each step's most probable state
(`method: smooth`) or the most probable sequence of states (`method: viterbi`). No session
is kept. Cap: NLD_MAX_OBSERVATIONS steps.""",
    responses={
        401: {"model": Problem, "description": "missing or wrong API key"},
        404: {"model": Problem, "description": "no such model"},
        413: {"model": Problem, "description": "request body over NLD_MAX_BODY_BYTES"},
        422: {
            "model": Problem,
            "description": "invalid observations (dimension, values, cap), or offline labels "
            "for a model without a chain over its minima",
        },
        503: {"model": Problem, "description": "the model is loading (see Retry-After)"},
    },
)
async def segment_recording(
    body: SegmentRequest, reg: RegistryDep, settings: SettingsDep
) -> SegmentResponse:
    lm = resolve_energy_model(reg, body.model)
    x = observations_array(body.observations, settings.max_observations)
    if x.shape[1] != lm.model.cfg.obs_dim:
        raise HTTPException(
            422,
            f"observations have dimension {x.shape[1]}; model {lm.name!r} expects "
            f"{lm.model.cfg.obs_dim}",
        )
    try:
        labels, proba, z = await run_in_threadpool(
            lm.label_recording, x, offline=body.offline, method=body.method
        )
    except NLDError as e:
        raise HTTPException(422, f"model {lm.name!r}: {e}") from None
    return SegmentResponse(
        model=lm.name,
        version=lm.version,
        offline=body.offline,
        labels=labels.tolist(),
        probabilities=None if proba is None else proba.tolist(),
        z=z.tolist(),
    )
