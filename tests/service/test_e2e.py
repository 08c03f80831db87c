"""The service as a real uvicorn process on a loopback port, driven by the client."""

import pytest

from service.client import NLDClient, NotFound
from tests.service.servers import free_port, running_server, uvicorn_command


@pytest.fixture(scope="module")
def server(models_dir):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_server(uvicorn_command(port), {"NLD_MODELS_DIR": str(models_dir)}, url):
        yield url


def test_stream_through_a_real_server(server, client, stream):
    """Labels over HTTP, one observation per request, equal the in-process one pass."""
    whole = client.post("/segment/stream", json={"observations": stream, "end": True}).json()
    with NLDClient(server) as nld:
        got = list(nld.stream_segment(stream, chunk_size=1))
        assert [(r.t, r.label) for r in got] == [(r["t"], r["label"]) for r in whole["results"]]
        assert nld.minima().minima and nld.models().default == "easy"
        with pytest.raises(NotFound):
            nld.model("nope")
