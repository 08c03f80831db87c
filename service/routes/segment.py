"""Streaming segmentation, in the manner of Triton's sequence batcher: a session carries one
stream's GRU state from chunk to chunk, so any chunking labels a stream exactly as one pass.

`seq` (optional) numbers a session's chunks 0, 1, 2, ...: a gap or a reorder is 409, and a
repeat of the last chunk returns its cached answer without advancing (a safe retry).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from service.deps import AUTH, RegistryDep, SettingsDep, StoreDep, resolve_model
from service.registry import LoadedModel
from service.schemas import Problem, StepResult, StreamRequest, StreamResponse
from service.sessions import Session, SessionError, SessionExpired, TooManySessions
from service.streaming import NonFiniteOutput, label_chunk

router = APIRouter(tags=["segment"], dependencies=AUTH)
INLINE_CHUNK = 8  # chunks up to this many observations are labelled on the event loop

COMMON: dict[int | str, dict] = {
    401: {"model": Problem, "description": "missing or wrong API key"},
    404: {"model": Problem, "description": "no such model, or no such (or an expired) session"},
    503: {"model": Problem, "description": "models still loading"},
}


def _session_error(e: SessionError) -> HTTPException:
    return HTTPException(
        404, str(e) + (": open a new one" if isinstance(e, SessionExpired) else "")
    )


def _digest(observations: list[list[float]]) -> str:
    return hashlib.sha256(json.dumps(observations).encode()).hexdigest()


@router.post(
    "/segment/stream",
    responses={
        **COMMON,
        409: {"model": Problem, "description": "seq out of order, or the model changed"},
        413: {"model": Problem, "description": "request body over the size limit"},
        422: {"model": Problem, "description": "invalid observations (dimension, values, cap)"},
        429: {"model": Problem, "description": "too many open sessions (see Retry-After)"},
    },
)
async def segment_stream(
    body: StreamRequest,
    request: Request,
    reg: RegistryDep,
    store: StoreDep,
    settings: SettingsDep,
) -> StreamResponse:
    if len(body.observations) > settings.max_observations:
        raise HTTPException(
            422,
            f"{len(body.observations)} observations in one chunk: over the cap "
            f"max_observations = {settings.max_observations}",
        )
    if body.session_id is None:
        lm = resolve_model(reg, body.model)
        _check(lm, body)
        if body.seq not in (None, 0):
            raise HTTPException(409, f"a new session starts at seq 0, not {body.seq}")
        try:
            session = store.create(lm.name, lm.version)
        except TooManySessions as e:
            raise HTTPException(429, str(e), headers={"Retry-After": str(e.retry_after)}) from None
    else:
        try:
            session = store.get(body.session_id)
        except SessionError as e:
            raise _session_error(e) from None
        if body.model is not None and body.model != session.model:
            raise HTTPException(409, f"session {session.id} streams model {session.model!r}")
        lm_now = reg.models.get(session.model)
        if lm_now is None or lm_now.version != session.version:
            raise HTTPException(
                409,
                f"model {session.model!r} changed since this session started "
                f"(version {session.version}): open a new session",
            )
        lm = lm_now
        _check(lm, body)
    async with session.lock:
        response = await _apply(session, lm, body, store, request)
    return response


def _check(lm: LoadedModel, body: StreamRequest) -> None:
    if not lm.streams:
        raise HTTPException(
            422,
            f"model {lm.name!r} cannot stream: it has no energy or no readout head "
            "(imported and NSDE models are for the landscape endpoints)",
        )
    dim = len(body.observations[0])
    if dim != lm.model.cfg.obs_dim:
        raise HTTPException(
            422,
            f"observations have dimension {dim}; model {lm.name!r} expects {lm.model.cfg.obs_dim}",
        )


async def _apply(
    session: Session, lm: LoadedModel, body: StreamRequest, store: StoreDep, request: Request
) -> StreamResponse:
    if session.closed:  # closed or expired while this request waited for the lock
        raise HTTPException(404, f"session {session.id} was closed")
    digest = _digest(body.observations)
    if body.seq is not None:
        cached = session.last_response
        if body.seq == session.seq and cached is not None:
            if cached["digest"] != digest:
                raise HTTPException(
                    409, f"seq {body.seq} was already applied with other observations"
                )
            store.touch(session)
            return StreamResponse.model_validate(cached["response"])
        if body.seq != session.seq + 1:
            raise HTTPException(
                409, f"session {session.id} expects seq {session.seq + 1}, got {body.seq}"
            )
    with np.errstate(over="ignore"):
        x = np.asarray(body.observations, dtype=np.float32)
    if not np.isfinite(x).all():
        raise HTTPException(422, "observation values must fit in float32 (|x| < 3.4e38)")
    try:
        if len(x) <= INLINE_CHUNK:
            # Sub-millisecond: a thread hop would cost more than it frees the event loop.
            labels, z, energy, h = label_chunk(lm, x, session.h)
        else:
            labels, z, energy, h = await run_in_threadpool(label_chunk, lm, x, session.h)
    except NonFiniteOutput as e:
        raise HTTPException(422, str(e)) from None
    t0 = session.t
    session.h, session.t, session.seq = h, t0 + len(x), session.seq + 1
    response = StreamResponse(
        session_id=session.id,
        seq=session.seq,
        model=lm.name,
        version=lm.version,
        closed=body.end,
        results=[
            StepResult(t=t0 + i, label=int(lab), z=zi.tolist(), energy=float(e))
            for i, (lab, zi, e) in enumerate(zip(labels, z, energy, strict=True))
        ],
    )
    session.last_response = {"digest": digest, "response": response.model_dump()}
    store.touch(session)
    request.app.state.metrics.events.inc(len(x))
    if body.end:
        store.close(session.id)
    return response


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    responses=COMMON,
)
async def close_session(session_id: str, store: StoreDep) -> Response:
    try:
        session = store.get(session_id)
    except SessionError as e:
        raise _session_error(e) from None
    async with session.lock:
        try:
            store.close(session_id)
        except SessionError as e:
            raise _session_error(e) from None
    return Response(status_code=204)
