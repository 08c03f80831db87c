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


def test_two_server_processes_share_one_redis(models_dir, redis_url, key_prefix, client, stream):
    """Two uvicorn processes on their own ports, one stream's chunks alternating between
    them: exactly the labels of one pass in one process."""
    whole = client.post("/segment/stream", json={"observations": stream, "end": True}).json()
    env = {
        "NLD_MODELS_DIR": str(models_dir),
        "NLD_SESSION_STORE": redis_url,
        "NLD_SESSION_KEY_PREFIX": key_prefix,
    }
    ports = free_port(), free_port()
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    with (
        running_server(uvicorn_command(ports[0]), env, urls[0]),
        running_server(uvicorn_command(ports[1]), env, urls[1]),
        NLDClient(urls[0]) as a,
        NLDClient(urls[1]) as b,
    ):
        sid, got = None, []
        for seq, start in enumerate(range(0, len(stream), 4)):
            out = (a, b)[seq % 2].segment_chunk(stream[start : start + 4], session_id=sid, seq=seq)
            sid = out.session_id
            got += [(r.t, r.label) for r in out.results]
    assert got == [(r["t"], r["label"]) for r in whole["results"]]
