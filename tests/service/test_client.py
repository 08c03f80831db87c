"""The typed clients against the app in process (an injected httpx client)."""

import asyncio
import json

import httpx
import pytest

from service.client import (
    AsyncNLDClient,
    Conflict,
    InvalidRequest,
    NLDClient,
    NotFound,
    NotReady,
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
    assert nld.landscape_image().startswith(b"\x89PNG\r\n")


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
    nld.close_session(first.session_id)  # closing a closed session does nothing
    with pytest.raises(NotFound):
        nld.close_session("never-opened")


def test_api_key_is_sent(models_dir):

    from service.main import create_app
    from tests.service.conftest import make_settings, serving

    with serving(create_app(make_settings(models_dir, api_key="k"))) as c:
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


class LosesAnswers(httpx.BaseTransport):
    """The request reaches the service, but the answer to the chunks numbered in `lose` is
    lost on the way back (once each), as when a connection drops."""

    def __init__(self, inner, lose):
        self.inner, self.lose, self.sent = inner, set(lose), []

    def handle_request(self, request):
        response = self.inner.handle_request(request)
        body = json.loads(request.content) if request.content else {}
        self.sent.append(body.get("seq"))
        if body.get("seq") in self.lose:
            self.lose.discard(body["seq"])
            response.read()
            raise httpx.ReadError("connection lost", request=request)
        return response


def test_a_stream_survives_lost_answers_to_its_first_and_last_chunks(client, stream):
    """Retried chunks are applied once: the labels are those of one pass, and one session
    is opened (and closed)."""
    whole = client.post("/segment/stream", json={"observations": stream, "end": True}).json()
    open_before = asyncio.run(client.app.state.sessions.count())
    lossy = LosesAnswers(client._transport, lose={0, 5})
    with httpx.Client(transport=lossy, base_url="http://testserver") as h:
        got = list(NLDClient(client=h, backoff=0).stream_segment(stream, chunk_size=10))
    assert lossy.sent == [0, 0, 1, 2, 3, 4, 5, 5]  # six chunks, the first and last sent twice
    assert [(r.t, r.label) for r in got] == [(r["t"], r["label"]) for r in whole["results"]]
    assert asyncio.run(client.app.state.sessions.count()) == open_before


def test_retry_after_and_connection_refused_are_waited_out():
    seen = []

    def starting(request):  # refused twice, then loading (503, Retry-After), then ready
        seen.append(request.url.path)
        if len(seen) <= 2:
            raise httpx.ConnectError("connection refused", request=request)
        if len(seen) == 3:
            return httpx.Response(503, json={"detail": "loading"}, headers={"Retry-After": "0"})
        return httpx.Response(200, json=_SAMPLE)

    c = NLDClient(client=httpx.Client(transport=httpx.MockTransport(starting), base_url="http://x"))
    c.backoff = 0
    assert len(c.sample(n_paths=1, n_steps=1).paths) == 1  # a seeded sample: safe to retry
    assert seen == ["/sample"] * 4


_SAMPLE = {
    "model": "m",
    "version": "0" * 16,
    "dt": 0.1,
    "space": "latent",
    "paths": [[[0.0], [0.1]]],
    "velocities": None,
}


def test_wait_ready_waits_for_a_starting_service():
    states = iter(["refused", "loading", "loading", "ready"])

    def readyz(request):
        state = next(states)
        if state == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(
            200 if state == "ready" else 503,
            json={"ready": state == "ready", "loading": {} if state == "ready" else {"m": "..."}},
        )

    h = httpx.Client(transport=httpx.MockTransport(readyz), base_url="http://x")
    assert NLDClient(client=h).wait_ready(timeout=5, interval=0)["ready"]
    never = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(503, json={"ready": False})),
        base_url="http://x",
    )
    with pytest.raises(NotReady, match="not ready after"):
        NLDClient(client=never).wait_ready(timeout=0.05, interval=0.01)


def test_async_client(client, stream):
    app = client.app

    async def run():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as h:
            nld = AsyncNLDClient(client=h, backoff=0)
            assert (await nld.models()).default == "easy"
            assert (await nld.landscape_image("easy")).startswith(b"\x89PNG\r\n")
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
