"""`nld serve`: run the service under uvicorn."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import tempfile
from contextlib import ExitStack, suppress
from functools import cache
from pathlib import Path

import h11
from pydantic import ValidationError
from uvicorn.protocols.http.h11_impl import H11Protocol

from nld.errors import ConfigError


@cache
def _head_timeout() -> float:
    """NLD_REQUEST_READ_TIMEOUT_SECONDS, read once per (worker) process."""
    from service.config import Settings

    return Settings().request_read_timeout_seconds


class ServiceHTTP(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with two additions.

    - Nagle off on every connection. With several workers uvicorn shares a listening socket
      made with proto 0, and asyncio only sets TCP_NODELAY on sockets whose proto is TCP:
      responses written in two parts then waited for the client's delayed ACK, 40 ms a
      request (measured: 48 ms median per request against 4 ms with one worker).
    - A deadline on a request's head: its request line and headers must arrive within
      NLD_REQUEST_READ_TIMEOUT_SECONDS of the connection opening or of the request's first
      byte, else 408 and the connection is closed. uvicorn bounds only idle keep-alive
      connections, so a client sending a byte at a time held a connection (and, under
      --limit-concurrency, a slot everyone else then lacked) for as long as it liked. The
      app bounds the body (`service.middleware.BodyDeadline`).
    """

    head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.head_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of a request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # its head has arrived

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self.head_timer = self.loop.call_later(_head_timeout(), self._head_too_slow)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        body = json.dumps(
            {"detail": f"the request's headers did not arrive within {_head_timeout():g} s"}
        ).encode()
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()


def serve(
    models: str | None,
    host: str,
    port: int,
    workers: int,
    *,
    limit_concurrency: int | None = None,
    graceful_seconds: float = 10.0,
    healthcheck_seconds: int = 10,
) -> None:
    import uvicorn

    from service.config import Settings

    if models is not None:
        if not Path(models).is_dir():
            raise ConfigError(f"{models}: no such models directory")
        # Settings come from the environment in every worker process.
        os.environ["NLD_MODELS_DIR"] = str(Path(models).resolve())
    try:
        settings = Settings()
    except ValidationError as e:
        raise ConfigError(f"invalid NLD_ settings: {e}") from None
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, not {workers}")
    if workers > 1 and settings.session_store == "memory":
        raise ConfigError(
            "sessions are held in process memory: run one worker, or share them between "
            "workers with NLD_SESSION_STORE=redis://HOST:6379/0"
        )
    with ExitStack() as stack:
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Metrics of all workers in one scrape: each writes its values here.
            metrics_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="nld-metrics-"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        uvicorn.run(
            "service.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            limit_concurrency=limit_concurrency,
            http=ServiceHTTP,
            timeout_graceful_shutdown=int(graceful_seconds),
            timeout_worker_healthcheck=healthcheck_seconds,
            log_config=_log_config(),
        )


def _log_config() -> dict:
    """uvicorn's logging, and the service's own messages (each model as it loads, where its
    analysis came from, ready) beside them."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["nld"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
