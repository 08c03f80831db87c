"""Streaming segmentation, in the manner of Triton's sequence batcher: a session carries one
stream's GRU state from chunk to chunk, so any chunking labels a stream exactly as one pass.

`seq` (optional) numbers a session's chunks 0, 1, 2, ...: a gap or a reorder is 409, and a
repeat of the last chunk returns its cached answer without advancing (a safe retry).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from contextlib import suppress
from dataclasses import replace

import numpy as np
import torch
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from service.deps import AUTH, RegistryDep, SettingsDep, StoreDep, resolve_model
from service.registry import LoadedModel
from service.schemas import Problem, StepResult, StreamRequest, StreamResponse
from service.sessions import (
    KeyedLocks,
    SessionError,
    SessionExpired,
    SessionState,
    TooManySessions,
)
from service.streaming import NonFiniteOutput, label_chunk

router = APIRouter(tags=["segment"], dependencies=AUTH)
INLINE_CHUNK = 8  # chunks up to this many observations are labelled on the event loop
CAS_ATTEMPTS = 10  # reads of a session that other requests keep advancing, before a 409

COMMON: dict[int | str, dict] = {
    401: {"model": Problem, "description": "missing or wrong API key"},
    404: {"model": Problem, "description": "no such model, or no such (or an expired) session"},
    503: {"model": Problem, "description": "models still loading, or the session store down"},
}


@router.post(
    "/segment/stream",
    response_model=StreamResponse,
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
) -> Response:
    """The answer is sent as the JSON bytes the session keeps for retries: serialised once."""
    if len(body.observations) > settings.max_observations:
        raise HTTPException(
            422,
            f"{len(body.observations)} observations in one chunk: over the cap "
            f"max_observations = {settings.max_observations}",
        )
    with np.errstate(over="ignore"):
        x = np.asarray(body.observations, dtype=np.float32)
    if not np.isfinite(x).all():
        raise HTTPException(422, "observation values must fit in float32 (|x| < 3.4e38)")
    digest = hashlib.sha256(x.tobytes()).hexdigest()
    if body.session_id is None:
        lm = resolve_model(reg, body.model)
        _check(lm, x)
        if body.seq not in (None, 0):
            raise HTTPException(409, f"a new session starts at seq 0, not {body.seq}")
        try:
            session = await store.create(lm.name, lm.version)
        except TooManySessions as e:
            raise HTTPException(429, str(e), headers={"Retry-After": str(e.retry_after)}) from None
        try:
            response = await _advance(session, lm, x, digest, body, store, request)
        except HTTPException:
            with suppress(SessionError):  # its first chunk was refused: no session is left
                await store.close(session.id)
            raise
        if response is None:  # nobody else knows the new id: only a bug could get here
            raise HTTPException(409, f"session {session.id} was changed while it opened")
        return response
    locks: KeyedLocks = request.app.state.session_locks
    async with locks.hold(body.session_id):
        # Another worker may advance the session between our read and our write: then the
        # compare-and-set fails and we read again (a repeat of our seq is then a retry).
        for _ in range(CAS_ATTEMPTS):
            try:
                session = await store.get(body.session_id)
            except SessionError as e:
                raise _session_error(e) from None
            lm = _session_model(reg, session, body)
            _check(lm, x)
            if body.seq is not None:
                if body.seq == session.seq and session.response is not None:
                    if session.digest != digest:
                        raise HTTPException(
                            409, f"seq {body.seq} was already applied with other observations"
                        )
                    await store.touch(session.id)
                    return _json(session.response)
                if body.seq != session.seq + 1:
                    raise HTTPException(
                        409, f"session {session.id} expects seq {session.seq + 1}, got {body.seq}"
                    )
            response = await _advance(session, lm, x, digest, body, store, request)
            if response is not None:
                return response
            await asyncio.sleep(random.uniform(0, 0.002))  # de-synchronise the racers
    raise HTTPException(409, f"session {body.session_id} is being advanced by other requests")


def _session_error(e: SessionError) -> HTTPException:
    return HTTPException(
        404, str(e) + (": open a new one" if isinstance(e, SessionExpired) else "")
    )


def _session_model(reg: RegistryDep, session: SessionState, body: StreamRequest) -> LoadedModel:
    if body.model is not None and body.model != session.model:
        raise HTTPException(409, f"session {session.id} streams model {session.model!r}")
    lm = reg.models.get(session.model)
    if lm is None or lm.version != session.version:
        raise HTTPException(
            409,
            f"model {session.model!r} changed since this session started "
            f"(version {session.version}): open a new session",
        )
    return lm


def _check(lm: LoadedModel, x: np.ndarray) -> None:
    if not lm.streams:
        raise HTTPException(
            422,
            f"model {lm.name!r} cannot stream: it has no energy or no readout head "
            "(imported and NSDE models are for the landscape endpoints)",
        )
    if x.shape[1] != lm.model.cfg.obs_dim:
        raise HTTPException(
            422,
            f"observations have dimension {x.shape[1]}; "
            f"model {lm.name!r} expects {lm.model.cfg.obs_dim}",
        )


async def _advance(
    session: SessionState,
    lm: LoadedModel,
    x: np.ndarray,
    digest: str,
    body: StreamRequest,
    store: StoreDep,
    request: Request,
) -> Response | None:
    """Label the chunk from the session's state and commit the next state; None if another
    request committed first (nothing was changed)."""
    h0 = torch.from_numpy(session.h) if session.h is not None else None
    try:
        if len(x) <= INLINE_CHUNK:
            # Sub-millisecond: a thread hop would cost more than it frees the event loop.
            chunk = label_chunk(lm, x, h0, session.belief)
        else:
            chunk = await run_in_threadpool(label_chunk, lm, x, h0, session.belief)
    except NonFiniteOutput as e:
        raise HTTPException(422, str(e)) from None
    response = StreamResponse(
        session_id=session.id,
        seq=session.seq + 1,
        model=lm.name,
        version=lm.version,
        closed=body.end,
        results=[
            StepResult(t=session.t + i, label=int(lab), z=zi.tolist(), energy=float(e))
            for i, (lab, zi, e) in enumerate(
                zip(chunk.labels, chunk.positions, chunk.energies, strict=True)
            )
        ],
    )
    content = response.model_dump_json().encode()
    new = replace(
        session,
        h=chunk.h.numpy(),
        belief=chunk.belief,
        t=session.t + len(x),
        seq=session.seq + 1,
        digest=digest,
        response=content,
    )
    try:
        if not await store.commit(session.seq, new):
            return None
        if body.end:
            await store.close(session.id)
    except SessionError as e:  # closed or expired while this chunk was labelled
        raise _session_error(e) from None
    request.app.state.metrics.events.inc(len(x))
    return _json(content)


def _json(content: bytes) -> Response:
    return Response(content, media_type="application/json")


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    responses=COMMON,
)
async def close_session(session_id: str, request: Request, store: StoreDep) -> Response:
    async with request.app.state.session_locks.hold(session_id):
        try:
            await store.close(session_id)
        except SessionError as e:
            raise _session_error(e) from None
    return Response(status_code=204)
