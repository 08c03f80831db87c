"""The service as a real uvicorn process on a loopback port, driven by the client."""

import os
import socket
import subprocess
import sys
import time

import pytest

from service.client import NLDClient, NotFound, TransportError, Unavailable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(models_dir):
    port = _free_port()
    env = {
        **os.environ,
        "NLD_MODELS_DIR": str(models_dir),
        "NLD_ANALYSIS_CHAINS": "64",
        "NLD_ANALYSIS_STEPS": "1000",
        "NLD_THREADS": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "service.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    client = NLDClient(url, retries=0)
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if client.readyz().get("ready"):
                    break
            except (TransportError, Unavailable):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"uvicorn did not become ready:\n{out[-2000:]}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        client.close()


def test_stream_through_a_real_server(server, client, stream):
    """Labels over HTTP, one observation per request, equal the in-process one pass."""
    whole = client.post("/segment/stream", json={"observations": stream, "end": True}).json()
    with NLDClient(server) as nld:
        got = list(nld.stream_segment(stream, chunk_size=1))
        assert [(r.t, r.label) for r in got] == [(r["t"], r["label"]) for r in whole["results"]]
        assert nld.minima().minima and nld.models().default == "easy"
        with pytest.raises(NotFound):
            nld.model("nope")
