"""Prometheus metrics of one app (a registry per app, so tests can build many).

With several workers (`nld serve --workers N` sets PROMETHEUS_MULTIPROC_DIR), every worker
writes its values to that directory and /metrics sums them over the workers, so a scrape
that lands on any worker sees the whole service."""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Label values come from these sets only, whatever a client sends: a made-up method or path
# must not create a new series (each one grows every scrape, and the workers' files).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in METHODS else "other"


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
        # Both are read from the (shared) session store: the latest reading is the value.
        self.sessions = Gauge(
            "nld_open_sessions",
            "open stream sessions",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.evictions = Gauge(
            "nld_session_evictions",
            "sessions expired (TTL) so far",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.events = Counter(
            "nld_stream_events", "observations labelled by /segment/stream", registry=self.registry
        )

    def exposition(self) -> bytes:
        """The text format of every metric, summed over the workers when there are several."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """A pure ASGI middleware counting requests and timing them by route template."""

        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            t0 = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                # The matched route's template (its path parameters unfilled), never the path.
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                self.latency.labels(path).observe(time.perf_counter() - t0)
                self.requests.labels(_method(scope), path, str(status)).inc()

        return wrapped
