"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import httpx

from service.client.base import M, Observation, _Base, _chunks, _new_session_id, _retryable
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

    def landscape_image(self, model: str | None = None) -> bytes:
        """The landscape as a PNG (E on the plane through the minima, minima numbered)."""
        return self._call("GET", "/landscape/image", params={"model": model}).content

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

    def segment(
        self,
        observations: Sequence[Observation],
        *,
        offline: bool = False,
        method: str = "smooth",
        model: str | None = None,
    ) -> SegmentResponse:
        """Labels and each state's probabilities for a whole recording [T][D]: online, or
        `offline` from the whole recording (method "smooth" or "viterbi")."""
        body = self._segment_body(observations, offline, method, model)
        return self._post(SegmentResponse, "/segment", body, idempotent=True)

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
