"""What the two clients share: headers, retries and their backoff, chunking a stream."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
Observation = Sequence[float]


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
    def _segment_body(
        observations: Sequence[Observation], offline: bool, method: str, model: str | None
    ) -> dict[str, Any]:
        rows = [list(map(float, o)) for o in observations]
        return {"model": model, "observations": rows, "offline": offline, "method": method}

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
