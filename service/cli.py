"""`nld serve`: run the service under uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

from nld.errors import ConfigError


def serve(models: str | None, host: str, port: int, workers: int) -> None:
    import uvicorn

    if models is not None:
        if not Path(models).is_dir():
            raise ConfigError(f"{models}: no such models directory")
        # Settings come from the environment in every worker process.
        os.environ["NLD_MODELS_DIR"] = str(Path(models).resolve())
    if workers > 1:
        raise ConfigError(
            "sessions are held in process memory: run one worker (several need a shared "
            "session store)"
        )
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=10,
    )
