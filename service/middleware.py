"""Pure ASGI middleware: request metrics, and a deadline on reading a request's body."""

from __future__ import annotations

import asyncio

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics


class Instrument:
    """`Metrics.middleware` in the class form `add_middleware` takes."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.wrapped = metrics.middleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.wrapped(scope, receive, send)


async def _next(receive: Receive) -> Message:
    return await receive()


class BodyDeadline:
    """A request's body must arrive within `seconds` of its headers, else 408 and the
    connection is closed: a client that sends a byte at a time cannot hold a connection (and,
    under `--limit-concurrency`, everyone else's slot) for longer. The server bounds the
    headers themselves (`service.cli.ServiceHTTP`)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_read = False

        async def timed_receive() -> Message:
            nonlocal body_read
            if body_read:  # then only a disconnect can come: no deadline on waiting for it
                return await receive()
            try:
                message = await asyncio.wait_for(_next(receive), max(0.0, deadline - loop.time()))
            except TimeoutError:
                # FastAPI passes an HTTPException raised while reading the body through.
                raise HTTPException(
                    408,
                    f"the request body did not arrive within {self.seconds:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read = True
            return message

        await self.app(scope, timed_receive, send)
