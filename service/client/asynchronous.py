"""The asyncio client: the same calls as NLDClient, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from typing import Any

import httpx

from service.client.base import M, Observation, _Base, _new_session_id, _retryable
from service.client.errors import NotReady, TransportError, _raise_for
from service.schemas import (
    EnergyResponse,
    MinimaResponse,
    ModelDetail,
    ModelsResponse,
    OccupancyResponse,
    SampleResponse,
    SegmentResponse,
    StepResult,
    StreamResponse,
    TransitionsResponse,
)


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

    async def landscape_image(self, model: str | None = None) -> bytes:
        """The landscape as a PNG (E on the plane through the minima, minima numbered)."""
        return (await self._call("GET", "/landscape/image", params={"model": model})).content

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

    async def segment(
        self,
        observations: Sequence[Observation],
        *,
        offline: bool = False,
        method: str = "smooth",
        model: str | None = None,
    ) -> SegmentResponse:
        body = self._segment_body(observations, offline, method, model)
        return await self._post(SegmentResponse, "/segment", body, idempotent=True)

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
