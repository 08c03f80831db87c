"""Trajectories of a model's prior SDE, as JSON, NDJSON (a path a line) or a NumPy array.

Simulating and encoding run off the event loop: the JSON is written path by path in worker
threads as it is sent, so a large sample never holds up other requests.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from service.deps import AUTH, RegistryDep, SettingsDep, resolve_model
from service.schemas import Problem, SampleRequest, SampleResponse

router = APIRouter(tags=["sample"], dependencies=AUTH)
JSON, NDJSON, NPY = "application/json", "application/x-ndjson", "application/x-npy"
COMPACT = (",", ":")


def _format(accept: str | None) -> str:
    """The encoding the client asked for in its Accept header (JSON by default)."""
    accept = (accept or "").lower()
    for media in (NPY, NDJSON, JSON):
        if media in accept:
            return media
    if not accept or "*/*" in accept or "application/*" in accept:
        return JSON
    raise HTTPException(
        406, f"Accept {accept[:80]!r}: this endpoint answers {JSON}, {NDJSON} or {NPY}"
    )


def _json_body(head: dict, paths: np.ndarray, velocities: np.ndarray | None) -> Iterator[bytes]:
    """SampleResponse's JSON, a path at a time."""
    yield (json.dumps(head, separators=COMPACT)[:-1] + ',"paths":').encode()
    yield from _json_rows(paths)
    yield b',"velocities":'
    yield from (b"null",) if velocities is None else _json_rows(velocities)
    yield b"}"


def _json_rows(arrays: np.ndarray) -> Iterator[bytes]:
    yield b"["
    for i, a in enumerate(arrays):
        yield (b"," if i else b"") + json.dumps(a.tolist(), separators=COMPACT).encode()
    yield b"]"


def _ndjson_body(paths: np.ndarray, velocities: np.ndarray | None) -> Iterator[bytes]:
    for i, path in enumerate(paths):
        line = {"path": i, "positions": path.tolist()}
        if velocities is not None:
            line["velocities"] = velocities[i].tolist()
        yield json.dumps(line, separators=COMPACT).encode() + b"\n"


@router.post(
    "/sample",
    response_model=SampleResponse,
    summary="Paths of the prior dynamics",
    description="""\
Simulates `n_paths` paths of the model's prior SDE (overdamped or underdamped Langevin
dynamics in its learned energy), `n_steps` steps of `dt` model time each, from `start` or
from the prior's initial distribution: what the model believes the hidden dynamics do.
`space: observed` returns the decoder's mean observation along each path instead of the
latent positions; `velocities: true` adds dq/dt (underdamped models).

The encoding follows the Accept header:
- `application/json` (default): the schema below.
- `application/x-ndjson`: one line per path, `{"path": i, "positions": [...],
  "velocities": [...]}`, written as it is encoded.
- `application/x-npy`: a NumPy float32 array [n_paths, n_steps + 1, d] (or D) of the paths,
  `numpy.load(io.BytesIO(body))`; not with `velocities`.

The model, version and dt of the NDJSON and NPY answers are in the headers X-NLD-Model,
X-NLD-Version and X-NLD-dt. Caps: NLD_MAX_SAMPLE_PATHS, NLD_MAX_SAMPLE_STEPS and
NLD_MAX_SAMPLE_VALUES (paths x (steps + 1) x dimension).""",
    responses={
        200: {
            "description": "the paths",
            "content": {
                NDJSON: {"schema": {"type": "string"}},
                NPY: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        401: {"model": Problem, "description": "missing or wrong API key"},
        404: {"model": Problem, "description": "no such model"},
        406: {"model": Problem, "description": "an Accept header this endpoint cannot answer"},
        422: {"model": Problem, "description": "invalid request, over a cap, or diverged"},
        503: {"model": Problem, "description": "the model is loading (see Retry-After)"},
    },
)
async def sample(
    body: SampleRequest, request: Request, reg: RegistryDep, settings: SettingsDep
) -> Response:
    media = _format(request.headers.get("accept"))
    lm = resolve_model(reg, body.model)
    cfg = lm.model.cfg
    width = cfg.obs_dim if body.space == "observed" else cfg.latent_dim
    values = (
        body.n_paths * (body.n_steps + 1) * (width + (cfg.latent_dim if body.velocities else 0))
    )
    for value, cap, name in (
        (body.n_paths, settings.max_sample_paths, "max_sample_paths"),
        (body.n_steps, settings.max_sample_steps, "max_sample_steps"),
        (values, settings.max_sample_values, "max_sample_values"),
    ):
        if value > cap:
            raise HTTPException(422, f"{value} is over the cap {name} = {cap}")
    if body.start is not None and len(body.start) != cfg.latent_dim:
        raise HTTPException(
            422, f"start must have the latent dimension {cfg.latent_dim}, not {len(body.start)}"
        )
    if body.velocities and (cfg.dynamics != "underdamped" or not cfg.has_energy):
        raise HTTPException(
            422, f"model {lm.name!r} is {cfg.dynamics}: its paths have no velocities"
        )
    if body.velocities and media == NPY:
        raise HTTPException(
            406, f"{NPY} holds the paths alone: ask {JSON} or {NDJSON} for velocities"
        )
    paths, velocities = await run_in_threadpool(
        lm.sample,
        body.n_paths,
        body.n_steps,
        body.dt,
        seed=body.seed,
        start=body.start,
        velocities=body.velocities,
        observed=body.space == "observed",
    )
    headers = {"X-NLD-Model": lm.name, "X-NLD-Version": lm.version, "X-NLD-dt": repr(body.dt)}
    if media == NPY:
        buffer = io.BytesIO()
        np.save(buffer, paths.astype(np.float32))
        return Response(buffer.getvalue(), media_type=NPY, headers=headers)
    if media == NDJSON:
        return StreamingResponse(
            _ndjson_body(paths, velocities), media_type=NDJSON, headers=headers
        )
    head = {"model": lm.name, "version": lm.version, "dt": body.dt, "space": body.space}
    return StreamingResponse(_json_body(head, paths, velocities), media_type=JSON, headers=headers)
