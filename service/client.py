"""Typed clients of the nld service (httpx only: no torch on the client side).

    NLDServiceError            base; carries the request (and the response, if there was one)
    ├── TransportError         the service could not be reached (after retries)
    ├── NotReady               `wait_ready`: the service was not ready within the timeout
    └── APIError               the service answered with an error status
        ├── Unauthorized       401: missing or wrong API key
        ├── NotFound           404: no such model or session (or the session expired)
        ├── Conflict           409: seq out of order, or the model changed under a session
        ├── PayloadTooLarge    413
        ├── InvalidRequest     422: bad observations, dimension, values or a cap
        ├── TooManySessions    429: `retry_after` seconds
        └── Unavailable        503: a model still loading, or the session store down

Both clients accept an injected `httpx.Client` / `httpx.AsyncClient` (a Starlette
`TestClient` is one), so they can run in process against the app. Idempotent calls (GET,
DELETE, the landscape's energy, seeded samples, and stream chunks sent with a `seq`, which
the service deduplicates) are retried on transport errors (a refused connection while the
service starts included) and 503, waiting as Retry-After says, else with exponential
backoff. `stream_segment` names its session and numbers its chunks, so every chunk of a
stream, the first and the last included, is safe to retry. `wait_ready(timeout)` waits for
a service that is starting.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from service.schemas import (
    EnergyResponse,
    MinimaResponse,
    ModelDetail,
    ModelsResponse,
    OccupancyResponse,
    SampleResponse,
    StepResult,
    StreamResponse,
    TransitionsResponse,
)

__all__ = [
    "APIError",
    "AsyncNLDClient",
    "Conflict",
    "InvalidRequest",
    "NLDClient",
    "NLDServiceError",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "TooManySessions",
    "TransportError",
    "Unauthorized",
    "Unavailable",
]

M = TypeVar("M", bound=BaseModel)
Observation = Sequence[float]


class NLDServiceError(Exception):
    def __init__(
        self, message: str, request: httpx.Request, response: httpx.Response | None = None
    ) -> None:
        super().__init__(message)
        self.request = request
        self.response = response


class TransportError(NLDServiceError):
    pass


class NotReady(NLDServiceError):
    pass


class APIError(NLDServiceError):
    status_code: int
    detail: Any

    def __init__(self, request: httpx.Request, response: httpx.Response) -> None:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        self.status_code = response.status_code
        self.detail = detail
        super().__init__(
            f"{request.method} {request.url.path}: {response.status_code} {detail}",
            request,
            response,
        )


class Unauthorized(APIError):
    pass


class NotFound(APIError):
    pass


class Conflict(APIError):
    pass


class PayloadTooLarge(APIError):
    pass


class InvalidRequest(APIError):
    pass


class TooManySessions(APIError):
    @property
    def retry_after(self) -> int | None:
        assert self.response is not None
        value = self.response.headers.get("Retry-After")
        return int(value) if value and value.isdigit() else None


class Unavailable(APIError):
    pass


_BY_STATUS: dict[int, type[APIError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: TooManySessions,
    503: Unavailable,
}


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    raise _BY_STATUS.get(response.status_code, APIError)(response.request, response)


def _retryable(method: str, body: dict[str, Any] | None, idempotent: bool) -> bool:
    return (
        idempotent
        or method in ("GET", "DELETE")
        or (body is not None and body.get("seq") is not None)
    )


def _new_session_id() -> str:
    return secrets.token_urlsafe(16)


def _chunks(observations: Iterable[Observation], size: int) -> Iterator[list[list[float]]]:
    it = iter(observations)
    while chunk := [list(map(float, o)) for o in itertools.islice(it, size)]:
        yield chunk


class _Base:
    def __init__(self, api_key: str | None, retries: int, backoff: float) -> None:
        self._headers = {"X-API-Key": api_key} if api_key else {}
        self.retries = retries
        self.backoff = backoff

    MAX_WAIT = 5.0  # seconds between two attempts, at most

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds before the next attempt: the service's Retry-After if it sent one, else
        exponential backoff."""
        after = None if response is None else response.headers.get("Retry-After", "")
        if after and after.isdigit():
            return min(float(after), self.MAX_WAIT)
        return min(self.backoff * 2**attempt, self.MAX_WAIT)

    @staticmethod
    def _readiness(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {"ready": False, "status": response.status_code}
        return body if isinstance(body, dict) else {"ready": False}

    @staticmethod
    def _box_body(
        lo: Sequence[float], hi: Sequence[float], resolution: int, model: str | None
    ) -> dict[str, Any]:
        grid = {"kind": "box", "lo": list(lo), "hi": list(hi), "resolution": resolution}
        return {"model": model, "grid": grid}

    @staticmethod
    def _plane_body(resolution: int, margin: float, model: str | None) -> dict[str, Any]:
        return {
            "model": model,
            "grid": {"kind": "plane", "resolution": resolution, "margin": margin},
        }

    @staticmethod
    def _sample_body(
        n_paths: int,
        n_steps: int,
        dt: float,
        seed: int,
        start: Sequence[float] | None,
        model: str | None,
        velocities: bool,
        space: str,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "n_paths": n_paths,
            "n_steps": n_steps,
            "dt": dt,
            "seed": seed,
            "velocities": velocities,
            "space": space,
        }
        if start is not None:
            body["start"] = [float(v) for v in start]
        if model is not None:
            body["model"] = model
        return body

    @staticmethod
    def _stream_body(
        observations: Sequence[Observation],
        session_id: str | None,
        seq: int | None,
        end: bool,
        model: str | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"observations": [list(map(float, o)) for o in observations]}
        for key, value in (("session_id", session_id), ("seq", seq), ("model", model)):
            if value is not None:
                body[key] = value
        if end:
            body["end"] = True
        return body


class NLDClient(_Base):
    """Blocking client. `NLDClient("http://127.0.0.1:8000")` or `NLDClient(client=...)`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.25,
    ) -> None:
        super().__init__(api_key, retries, backoff)
        self._client = client or httpx.Client(base_url=base_url, timeout=timeout)
        self._owns = client is None

    def close(self) -> None:
        if self._owns:
            self._client.close()

    def __enter__(self) -> NLDClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = 1 + (self.retries if _retryable(method, json, idempotent) else 0)
        for attempt in range(attempts):
            request = self._client.build_request(
                method, url, json=json, params=params, headers=self._headers
            )
            response = None
            try:
                response = self._client.send(request)
            except httpx.TransportError as e:
                if attempt + 1 == attempts:
                    raise TransportError(f"{method} {url}: {e}", request) from e
            else:
                if response.status_code != 503 or attempt + 1 == attempts:
                    _raise_for(response)
                    return response
            time.sleep(self._wait(attempt, response))
        raise AssertionError("unreachable")

    def _get(self, schema: type[M], url: str, /, **params: Any) -> M:
        return schema.model_validate(self._call("GET", url, params=params).json())

    def _post(
        self, schema: type[M], url: str, body: dict[str, Any], *, idempotent: bool = False
    ) -> M:
        response = self._call("POST", url, json=body, idempotent=idempotent)
        return schema.model_validate(response.json())

    # -- health and models ------------------------------------------------------------------
    def healthz(self) -> bool:
        return self._call("GET", "/healthz").json().get("status") == "ok"

    def readyz(self) -> dict[str, Any]:
        """The readiness report (`ready` false while models load), whatever its status."""
        request = self._client.build_request("GET", "/readyz", headers=self._headers)
        try:
            return self._readiness(self._client.send(request))
        except httpx.TransportError as e:
            raise TransportError(f"GET /readyz: {e}", request) from e

    def wait_ready(self, timeout: float = 120.0, interval: float = 0.25) -> dict[str, Any]:
        """Wait until the service is ready (its port open, its models loaded); its readiness
        report, or NotReady with the last one after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            request = self._client.build_request("GET", "/readyz", headers=self._headers)
            try:
                last = self._readiness(self._client.send(request))
            except httpx.TransportError as e:
                last = {"ready": False, "error": str(e)}
            if last.get("ready"):
                return last
            if time.monotonic() + interval > deadline:
                raise NotReady(f"not ready after {timeout:g} s: {last}", request)
            time.sleep(interval)

    def models(self) -> ModelsResponse:
        return self._get(ModelsResponse, "/models")

    def model(self, name: str) -> ModelDetail:
        return self._get(ModelDetail, f"/models/{name}")

    # -- landscape --------------------------------------------------------------------------
    def minima(self, model: str | None = None) -> MinimaResponse:
        return self._get(MinimaResponse, "/landscape/minima", model=model)

    def occupancy(self, method: str = "quadrature", model: str | None = None) -> OccupancyResponse:
        return self._get(OccupancyResponse, "/landscape/occupancy", model=model, method=method)

    def transitions(self, model: str | None = None) -> TransitionsResponse:
        return self._get(TransitionsResponse, "/landscape/transitions", model=model)

    def energy_box(
        self,
        lo: Sequence[float],
        hi: Sequence[float],
        resolution: int = 64,
        model: str | None = None,
    ) -> EnergyResponse:
        body = self._box_body(lo, hi, resolution, model)
        return self._post(EnergyResponse, "/landscape/energy", body, idempotent=True)

    def energy_plane(
        self, resolution: int = 64, margin: float = 0.5, model: str | None = None
    ) -> EnergyResponse:
        body = self._plane_body(resolution, margin, model)
        return self._post(EnergyResponse, "/landscape/energy", body, idempotent=True)

    def sample(
        self,
        n_paths: int = 16,
        n_steps: int = 200,
        dt: float = 0.1,
        seed: int = 0,
        start: Sequence[float] | None = None,
        model: str | None = None,
        *,
        velocities: bool = False,
        space: str = "latent",
    ) -> SampleResponse:
        """Prior paths (seeded: the same arguments give the same paths)."""
        body = self._sample_body(n_paths, n_steps, dt, seed, start, model, velocities, space)
        return self._post(SampleResponse, "/sample", body, idempotent=True)

    # -- streaming --------------------------------------------------------------------------
    def segment_chunk(
        self,
        observations: Sequence[Observation],
        *,
        session_id: str | None = None,
        seq: int | None = None,
        end: bool = False,
        model: str | None = None,
    ) -> StreamResponse:
        body = self._stream_body(observations, session_id, seq, end, model)
        return self._post(StreamResponse, "/segment/stream", body)

    def close_session(self, session_id: str) -> None:
        self._call("DELETE", f"/sessions/{session_id}")

    def stream_segment(
        self, observations: Iterable[Observation], chunk_size: int = 1, model: str | None = None
    ) -> Iterator[StepResult]:
        """Label a stream of observations as they come, `chunk_size` at a time, in one
        session that this client names and whose chunks it numbers by `seq`, so that every
        chunk (the first and the last included) is safe to retry and never applied twice;
        the session is closed with the last chunk."""
        session_id = _new_session_id()
        chunks = _chunks(observations, chunk_size)
        current = next(chunks, None)
        seq = 0
        while current is not None:
            following = next(chunks, None)
            out = self.segment_chunk(
                current, session_id=session_id, seq=seq, end=following is None, model=model
            )
            yield from out.results
            current, seq = following, seq + 1


class AsyncNLDClient(_Base):
    """The same API for asyncio: every method is a coroutine (`stream_segment` an async
    iterator)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.25,
    ) -> None:
        super().__init__(api_key, retries, backoff)
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._owns = client is None

    async def aclose(self) -> None:
        if self._owns:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncNLDClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = 1 + (self.retries if _retryable(method, json, idempotent) else 0)
        for attempt in range(attempts):
            request = self._client.build_request(
                method, url, json=json, params=params, headers=self._headers
            )
            response = None
            try:
                response = await self._client.send(request)
            except httpx.TransportError as e:
                if attempt + 1 == attempts:
                    raise TransportError(f"{method} {url}: {e}", request) from e
            else:
                if response.status_code != 503 or attempt + 1 == attempts:
                    _raise_for(response)
                    return response
            await asyncio.sleep(self._wait(attempt, response))
        raise AssertionError("unreachable")

    async def _get(self, schema: type[M], url: str, /, **params: Any) -> M:
        return schema.model_validate((await self._call("GET", url, params=params)).json())

    async def _post(
        self, schema: type[M], url: str, body: dict[str, Any], *, idempotent: bool = False
    ) -> M:
        response = await self._call("POST", url, json=body, idempotent=idempotent)
        return schema.model_validate(response.json())

    async def healthz(self) -> bool:
        return (await self._call("GET", "/healthz")).json().get("status") == "ok"

    async def readyz(self) -> dict[str, Any]:
        """The readiness report (`ready` false while models load), whatever its status."""
        request = self._client.build_request("GET", "/readyz", headers=self._headers)
        try:
            return self._readiness(await self._client.send(request))
        except httpx.TransportError as e:
            raise TransportError(f"GET /readyz: {e}", request) from e

    async def wait_ready(self, timeout: float = 120.0, interval: float = 0.25) -> dict[str, Any]:
        """As `NLDClient.wait_ready`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            request = self._client.build_request("GET", "/readyz", headers=self._headers)
            try:
                last = self._readiness(await self._client.send(request))
            except httpx.TransportError as e:
                last = {"ready": False, "error": str(e)}
            if last.get("ready"):
                return last
            if loop.time() + interval > deadline:
                raise NotReady(f"not ready after {timeout:g} s: {last}", request)
            await asyncio.sleep(interval)

    async def models(self) -> ModelsResponse:
        return await self._get(ModelsResponse, "/models")

    async def model(self, name: str) -> ModelDetail:
        return await self._get(ModelDetail, f"/models/{name}")

    async def minima(self, model: str | None = None) -> MinimaResponse:
        return await self._get(MinimaResponse, "/landscape/minima", model=model)

    async def occupancy(
        self, method: str = "quadrature", model: str | None = None
    ) -> OccupancyResponse:
        return await self._get(
            OccupancyResponse, "/landscape/occupancy", model=model, method=method
        )

    async def transitions(self, model: str | None = None) -> TransitionsResponse:
        return await self._get(TransitionsResponse, "/landscape/transitions", model=model)

    async def energy_box(
        self,
        lo: Sequence[float],
        hi: Sequence[float],
        resolution: int = 64,
        model: str | None = None,
    ) -> EnergyResponse:
        body = self._box_body(lo, hi, resolution, model)
        return await self._post(EnergyResponse, "/landscape/energy", body, idempotent=True)

    async def energy_plane(
        self, resolution: int = 64, margin: float = 0.5, model: str | None = None
    ) -> EnergyResponse:
        body = self._plane_body(resolution, margin, model)
        return await self._post(EnergyResponse, "/landscape/energy", body, idempotent=True)

    async def sample(
        self,
        n_paths: int = 16,
        n_steps: int = 200,
        dt: float = 0.1,
        seed: int = 0,
        start: Sequence[float] | None = None,
        model: str | None = None,
        *,
        velocities: bool = False,
        space: str = "latent",
    ) -> SampleResponse:
        body = self._sample_body(n_paths, n_steps, dt, seed, start, model, velocities, space)
        return await self._post(SampleResponse, "/sample", body, idempotent=True)

    async def segment_chunk(
        self,
        observations: Sequence[Observation],
        *,
        session_id: str | None = None,
        seq: int | None = None,
        end: bool = False,
        model: str | None = None,
    ) -> StreamResponse:
        body = self._stream_body(observations, session_id, seq, end, model)
        return await self._post(StreamResponse, "/segment/stream", body)

    async def close_session(self, session_id: str) -> None:
        await self._call("DELETE", f"/sessions/{session_id}")

    async def stream_segment(
        self,
        observations: Iterable[Observation] | AsyncIterable[Observation],
        chunk_size: int = 1,
        model: str | None = None,
    ) -> AsyncIterator[StepResult]:
        """As `NLDClient.stream_segment`, for a sync or async iterable of observations."""
        session_id = _new_session_id()
        seq = 0
        buffer: list[list[float]] = []

        async def send(chunk: list[list[float]], end: bool) -> list[StepResult]:
            nonlocal seq
            out = await self.segment_chunk(
                chunk, session_id=session_id, seq=seq, end=end, model=model
            )
            seq += 1
            return out.results

        pending: list[list[float]] | None = None
        async for obs in _aiter(observations):
            buffer.append(list(map(float, obs)))
            if len(buffer) == chunk_size:
                if pending is not None:
                    for r in await send(pending, end=False):
                        yield r
                pending, buffer = buffer, []
        if buffer:
            if pending is not None:
                for r in await send(pending, end=False):
                    yield r
            pending = buffer
        if pending is not None:
            for r in await send(pending, end=True):
                yield r


async def _aiter(
    items: Iterable[Observation] | AsyncIterable[Observation],
) -> AsyncIterator[Observation]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
