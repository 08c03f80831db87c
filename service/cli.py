"""`nld serve`: run the service under uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from nld.errors import ConfigError


def serve(
    models: str | None,
    host: str,
    port: int,
    workers: int,
    *,
    limit_concurrency: int | None = None,
    graceful_seconds: float = 10.0,
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
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        limit_concurrency=limit_concurrency,
        timeout_graceful_shutdown=int(graceful_seconds),
    )
