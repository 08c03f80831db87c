"""The typed clients against the app in process (an injected httpx client)."""

import asyncio

import httpx
import pytest

from service.client import (
    AsyncNLDClient,
    Conflict,
    InvalidRequest,
    NLDClient,
    NotFound,
    TransportError,
    Unauthorized,
)
from service.schemas import MinimaResponse, StreamResponse


@pytest.fixture
def nld(client):
    return NLDClient(client=client, backoff=0)


def test_typed_calls(nld):
    assert nld.healthz()
    assert nld.models().default == "easy"
    assert nld.model("easy").obs_dim == 4
    minima = nld.minima()
    assert isinstance(minima, MinimaResponse) and len(minima.minima) == 2
    assert sum(nld.occupancy("zeroth").occupancy) == pytest.approx(1)
    assert len(nld.transitions().saddles) == 1
    assert len(nld.energy_box([-1, -1], [1, 1], resolution=4).energy) == 4
    assert len(nld.energy_plane(resolution=4).axes) == 2
    assert len(nld.sample(n_paths=2, n_steps=3).paths) == 2


def test_stream_segment_equals_one_pass(nld, stream):
    whole = nld.segment_chunk(stream, end=True)
    assert isinstance(whole, StreamResponse)
    for size in (1, 7, 60, 100):
        got = list(nld.stream_segment(iter(stream), chunk_size=size))
        assert [(r.t, r.label) for r in got] == [(r.t, r.label) for r in whole.results]


def test_errors_carry_request_and_response(nld, stream):
    with pytest.raises(NotFound) as e:
        nld.model("nope")
    assert e.value.response.status_code == 404 and e.value.request.url.path == "/models/nope"
    with pytest.raises(InvalidRequest, match="expects 4"):
        nld.segment_chunk([[1.0, 2.0]])
    first = nld.segment_chunk(stream[:2], seq=0)
    with pytest.raises(Conflict, match="expects seq 1"):
        nld.segment_chunk(stream[2:3], session_id=first.session_id, seq=5)
    nld.close_session(first.session_id)
    with pytest.raises(NotFound):
        nld.close_session(first.session_id)


def test_api_key_is_sent(models_dir):
    from fastapi.testclient import TestClient

    from service.main import create_app
    from tests.service.conftest import make_settings

    with TestClient(create_app(make_settings(models_dir, api_key="k"))) as c:
        with pytest.raises(Unauthorized):
            NLDClient(client=c).models()
        assert NLDClient(client=c, api_key="k").models().default == "easy"


def test_retries_idempotent_calls_then_reports_transport_errors():
    calls = []

    def handler(request):
        calls.append(request.method)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"status": "ok"})

    c = NLDClient(
        client=httpx.Client(transport=httpx.MockTransport(handler), base_url="http://x"), backoff=0
    )
    assert c.healthz() and calls == ["GET"] * 3

    def down(request):
        raise httpx.ConnectError("refused", request=request)

    c = NLDClient(
        client=httpx.Client(transport=httpx.MockTransport(down), base_url="http://x"), backoff=0
    )
    with pytest.raises(TransportError):
        c.healthz()
    calls.clear()

    def flaky_post(request):
        calls.append(request.method)
        raise httpx.ConnectError("refused", request=request)

    c = NLDClient(
        client=httpx.Client(transport=httpx.MockTransport(flaky_post), base_url="http://x"),
        backoff=0,
    )
    with pytest.raises(TransportError):
        c.segment_chunk([[1.0]])  # no seq: not idempotent, sent once
    assert calls == ["POST"]


def test_async_client(client, stream):
    app = client.app

    async def run():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as h:
            nld = AsyncNLDClient(client=h, backoff=0)
            assert (await nld.models()).default == "easy"
            whole = await nld.segment_chunk(stream, end=True)

            async def source():
                for o in stream:
                    yield o

            got = [r async for r in nld.stream_segment(source(), chunk_size=8)]
            with pytest.raises(NotFound):
                await nld.model("nope")
            return whole, got

    whole, got = asyncio.run(run())
    assert [(r.t, r.label) for r in got] == [(r.t, r.label) for r in whole.results]
