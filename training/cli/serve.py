"""`nld serve`: the model service."""

from __future__ import annotations

import argparse

from training.cli.common import positive


def _cmd_serve(a: argparse.Namespace) -> None:
    from service.cli import serve

    serve(
        a.models,
        a.host,
        a.port,
        a.workers,
        limit_concurrency=a.limit_concurrency,
        graceful_seconds=a.graceful_seconds,
        healthcheck_seconds=a.healthcheck_seconds,
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    sv = sub.add_parser("serve", help="run the model service (FastAPI on uvicorn)")
    sv.add_argument("--models", help="directory of checkpoint directories (default: models/)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument(
        "--workers", type=int, default=1, help="processes (> 1 needs NLD_SESSION_STORE=redis://)"
    )
    sv.add_argument(
        "--limit-concurrency", type=int, help="connections per worker beyond which 503 answers"
    )
    sv.add_argument(
        "--graceful-seconds",
        type=float,
        default=10.0,
        help="after the drain, how long requests in flight may take before exit",
    )
    sv.add_argument(
        "--healthcheck-seconds",
        type=positive,
        default=10,
        help="with several workers, one that does not answer its supervisor's ping this long "
        "is killed and restarted (the supervisor handles SIGTERM only after the ping)",
    )
    sv.set_defaults(fn=_cmd_serve)
