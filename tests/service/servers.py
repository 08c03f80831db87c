"""Real processes for the tests: uvicorn servers and private Redis servers on free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from service.client import NLDClient, TransportError, Unavailable

SMALL_ANALYSIS = {"NLD_ANALYSIS_CHAINS": "64", "NLD_ANALYSIS_STEPS": "1000", "NLD_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uvicorn_command(port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "service.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]


@contextmanager
def running_server(
    command: Sequence[str], env: dict[str, str], url: str, timeout: float = 120
) -> Iterator[subprocess.Popen]:
    """Start `command`, wait until `url` answers ready, and stop it (SIGTERM) at the end."""
    proc = subprocess.Popen(
        list(command),
        env={**os.environ, **SMALL_ANALYSIS, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    try:
        # Its connection closed once ready: tests may count the server's connections.
        with NLDClient(url, retries=0) as client:
            while True:
                try:
                    if client.readyz().get("ready"):
                        break
                except (TransportError, Unavailable):
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"{' '.join(command)} did not become ready:\n{out[-3000:]}")
                time.sleep(0.25)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if proc.stdout:
            proc.stdout.close()


@contextmanager
def private_redis(port: int | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """A Redis server of our own (so a test may stop it), keeping nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = port or free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        cwd=Path("/tmp"),
    )
    url = f"redis://127.0.0.1:{port}/0"
    r = redis.Redis.from_url(url, socket_timeout=1)
    for _ in range(100):
        try:
            r.ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    try:
        yield proc, url
    finally:
        r.close()
        proc.kill()
        proc.wait()
