"""Prometheus metrics of one app (a registry per app, so tests can build many)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nld_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "nld_request_seconds",
            "request latency",
            ["route"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
            registry=self.registry,
        )
        self.sessions = Gauge("nld_open_sessions", "open stream sessions", registry=self.registry)
        self.evictions = Gauge(
            "nld_session_evictions", "sessions expired (TTL) so far", registry=self.registry
        )
        self.events = Counter(
            "nld_stream_events", "observations labelled by /segment/stream", registry=self.registry
        )

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        self.latency.labels(path).observe(time.perf_counter() - t0)
        self.requests.labels(request.method, path, str(response.status_code)).inc()
        return response
