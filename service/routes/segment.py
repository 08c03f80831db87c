"""Streaming segmentation, in the manner of Triton's sequence batcher: a session carries one
stream's GRU state from chunk to chunk, so any chunking labels a stream exactly as one pass.

`seq` (optional) numbers a session's chunks 0, 1, 2, ...: a gap or a reorder is 409, and a
repeat of the last chunk returns its stored answer without advancing (a safe retry). That
holds for the first chunk too when the client names the session (`session_id` with `seq`
0), and for the closing chunk (`end`), whose session is kept, closed, until its TTL.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from service.deps import (
    AUTH,
    RegistryDep,
    SettingsDep,
    StoreDep,
    observations_array,
    resolve_model,
)
from service.registry import Registry
from service.schemas import SESSION_ID, Problem, StepResult, StreamRequest, StreamResponse
from service.sessions import (
    KeyedLocks,
    SessionError,
    SessionExists,
    SessionExpired,
    SessionNotFound,
    SessionState,
    TooManySessions,
)

if TYPE_CHECKING:
    from service.loaded import LoadedModel

router = APIRouter(tags=["segment"], dependencies=AUTH)
INLINE_CHUNK = 8  # chunks up to this many observations are labelled on the event loop
CAS_ATTEMPTS = 10  # reads of a session that other requests keep advancing, before a 409

COMMON: dict[int | str, dict] = {
    401: {"model": Problem, "description": "missing or wrong API key"},
    404: {"model": Problem, "description": "no such model, or no such (or an expired) session"},
    503: {
        "model": Problem,
        "description": "the model is loading (see Retry-After), or the session store is down",
    },
}


@router.post(
    "/segment/stream",
    response_model=StreamResponse,
    summary="Label a chunk of a stream",
    description="""\
Labels each observation of a chunk with its state (a minimum of the energy), from the
observations seen so far in its stream only (online, causal): a session keeps the encoder's
state between chunks, so any chunking of a stream gives the labels of one pass.

- First chunk: omit `session_id` (the service picks one) or choose one yourself and send
  `seq` 0, which makes a retry of the first chunk safe. Send the answer's `session_id` with
  the next chunks.
- Number chunks with `seq` 0, 1, 2, ... to make every retry safe: a repeat of the last chunk
  returns its stored answer. A gap or a reorder is 409.
- `end: true` closes the session with its chunk; retrying that chunk still returns its
  answer until the session's TTL. A single chunk with `end: true` needs no session.
- Idle sessions expire after `NLD_SESSION_TTL_SECONDS` (then 404 saying so); beyond
  `NLD_MAX_SESSIONS` open sessions a new one is 429 with Retry-After.""",
    responses={
        **COMMON,
        409: {
            "model": Problem,
            "description": "seq out of order, a closed session, or the model changed",
        },
        413: {"model": Problem, "description": "request body over NLD_MAX_BODY_BYTES"},
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
    x = observations_array(body.observations, settings.max_observations)
    digest = hashlib.sha256(x.tobytes()).hexdigest()
    if body.session_id is None:
        if body.seq not in (None, 0):
            raise HTTPException(409, f"a new session starts at seq 0, not {body.seq}")
        opened = await _open(None, body, reg, x, digest, store, request)
        assert opened is not None  # an id the service picks is nobody else's
        return opened
    locks: KeyedLocks = request.app.state.session_locks
    async with locks.hold(body.session_id):
        # Another worker may advance the session between our read and our write: then the
        # compare-and-set fails and we read again (a repeat of our seq is then a retry).
        for _ in range(CAS_ATTEMPTS):
            try:
                session = await store.get(body.session_id)
            except (SessionNotFound, SessionExpired) as e:
                if body.seq != 0:
                    raise _session_error(e) from None
                opened = await _open(body.session_id, body, reg, x, digest, store, request)
                if opened is not None:
                    return opened
                continue  # another request opened it first: read it
            lm = _session_model(reg, session, body)
            _check(lm, x)
            if body.seq is not None and body.seq == session.seq and session.response is not None:
                if session.digest != digest:
                    raise HTTPException(
                        409, f"seq {body.seq} was already applied with other observations"
                    )
                await store.touch(session.id)
                return _json(session.response)
            if session.closed:
                raise HTTPException(
                    409, f"session {session.id} is closed: open a new one for another stream"
                )
            if body.seq is not None and body.seq != session.seq + 1:
                raise HTTPException(
                    409, f"session {session.id} expects seq {session.seq + 1}, got {body.seq}"
                )
            response = await _advance(session, _Chunk(lm, x, digest, body.end), store, request)
            if response is not None:
                return response
            await asyncio.sleep(random.uniform(0, 0.002))  # de-synchronise the racers
    raise HTTPException(409, f"session {body.session_id} is being advanced by other requests")


@dataclass(frozen=True)
class _Chunk:
    """One request's observations, checked against the model that labels them."""

    lm: LoadedModel
    x: np.ndarray
    digest: str  # of x: a retry must send the same observations
    end: bool


async def _open(
    sid: str | None,
    body: StreamRequest,
    reg: Registry,
    x: np.ndarray,
    digest: str,
    store: StoreDep,
    request: Request,
) -> Response | None:
    """Open a session with its first chunk, under the client's `sid` or under an id the
    service picks; None if another request opened `sid` first. A whole stream in one chunk
    (`end`) needs no session: it is labelled and answered, and nothing is stored."""
    lm = resolve_model(reg, body.model)
    _check(lm, x)
    chunk = _Chunk(lm, x, digest, body.end)
    if body.end:
        one_pass = SessionState(sid or secrets.token_urlsafe(16), lm.name, lm.version)
        new = await _labelled(one_pass, chunk)
        request.app.state.metrics.events.inc(len(x))
        return _json(new.response)
    try:
        session = await store.create(lm.name, lm.version, sid=sid)
    except SessionExists:
        return None
    except TooManySessions as e:
        raise _too_many(e) from None
    try:
        response = await _advance(session, chunk, store, request)
    except Exception:
        with suppress(SessionError):  # its first chunk was refused: no session is left open
            await store.close(session.id)
        raise
    if response is None:  # nobody else knows a new id: only a bug could get here
        raise HTTPException(409, f"session {session.id} was changed while it opened")
    return response


def _too_many(e: TooManySessions) -> HTTPException:
    return HTTPException(429, str(e), headers={"Retry-After": str(e.retry_after)})


def _session_error(e: SessionError) -> HTTPException:
    return HTTPException(
        404, str(e) + (": open a new one" if isinstance(e, SessionExpired) else "")
    )


def _session_model(reg: Registry, session: SessionState, body: StreamRequest) -> LoadedModel:
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


async def _labelled(session: SessionState, chunk: _Chunk) -> SessionState:
    """The session after this chunk, its answer (JSON bytes) in `response`."""
    lm, x = chunk.lm, chunk.x
    if len(x) <= INLINE_CHUNK:
        # Sub-millisecond: a thread hop would cost more than it frees the event loop.
        labelled = lm.label_chunk(x, session.h, session.belief)
    else:
        labelled = await run_in_threadpool(lm.label_chunk, x, session.h, session.belief)
    response = StreamResponse(
        session_id=session.id,
        seq=session.seq + 1,
        model=lm.name,
        version=lm.version,
        closed=chunk.end,
        results=[
            StepResult(
                t=session.t + i,
                label=int(lab),
                z=zi.tolist(),
                energy=float(e),
                probabilities=None if labelled.proba is None else labelled.proba[i].tolist(),
            )
            for i, (lab, zi, e) in enumerate(
                zip(labelled.labels, labelled.positions, labelled.energies, strict=True)
            )
        ],
    )
    return replace(
        session,
        h=labelled.h,
        belief=labelled.belief,
        t=session.t + len(x),
        seq=session.seq + 1,
        digest=chunk.digest,
        response=response.model_dump_json().encode(),
        closed=chunk.end,
    )


async def _advance(
    session: SessionState, chunk: _Chunk, store: StoreDep, request: Request
) -> Response | None:
    """Label the chunk from the session's state and commit the next state (closing the
    session with `end`); None if another request committed first (nothing was changed)."""
    new = await _labelled(session, chunk)
    try:
        if not await store.commit(session.seq, new):
            return None
    except SessionError as e:  # expired while this chunk was labelled
        raise _session_error(e) from None
    request.app.state.metrics.events.inc(len(chunk.x))
    return _json(new.response)


def _json(content: bytes | None) -> Response:
    assert content is not None  # a labelled chunk's, or a session's after one
    return Response(content, media_type="application/json")


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    summary="Close a session",
    description="Closes a stream's session before its TTL (a closed session's last chunk "
    "can still be retried). Closing a closed session does nothing. To close a session with "
    "its last chunk instead, send that chunk with `end: true`.",
    responses={**COMMON, 204: {"description": "closed"}},
)
async def close_session(
    request: Request,
    store: StoreDep,
    session_id: Annotated[
        str,
        PathParam(
            pattern=SESSION_ID,
            description="the session, as `POST /segment/stream` answered it",
            examples=["k3Jd9sPq0aZx-2bQyL7wVA"],
        ),
    ],
) -> Response:
    async with request.app.state.session_locks.hold(session_id):
        try:
            await store.close(session_id)
        except SessionError as e:
            raise _session_error(e) from None
    return Response(status_code=204)
