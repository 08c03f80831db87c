"""The session state machine: chunking invariance, seq, retries, concurrency, TTL, cap."""

import asyncio
import secrets
from itertools import pairwise

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.main import create_app
from service.sessions import MemorySessionStore
from tests.service.conftest import make_settings, serving


@pytest.fixture(scope="module", params=["memory", "redis"])
def client(request, models_dir):
    """The session state machine holds with either store."""
    if request.param == "memory":
        settings = make_settings(models_dir)
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"nldtest:{secrets.token_hex(6)}:"
        settings = make_settings(models_dir, session_store=url, session_key_prefix=prefix)
    with serving(create_app(settings)) as c:
        yield c
    if request.param == "redis":
        r = redis.Redis.from_url(url)
        for key in r.scan_iter(f"{prefix}*"):
            r.delete(key)
        r.close()


def _labels(results):
    return [(r["t"], r["label"]) for r in results]


def _one_pass(client, stream):
    r = client.post("/segment/stream", json={"observations": stream, "end": True})
    return r.json()["results"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(1, 59), max_size=8, unique=True))
def test_any_chunking_gives_the_labels_of_one_pass(client, stream, cuts):
    whole = _one_pass(client, stream)
    bounds = [0, *sorted(cuts), len(stream)]
    sid, got = None, []
    for seq, (a, b) in enumerate(pairwise(bounds)):
        body = {"observations": stream[a:b], "seq": seq, "end": b == len(stream)}
        if sid:
            body["session_id"] = sid
        r = client.post("/segment/stream", json=body).json()
        sid = r["session_id"]
        got += r["results"]
    assert _labels(got) == _labels(whole)
    for g, w in zip(got, whole, strict=True):
        assert g["z"] == pytest.approx(w["z"], abs=1e-5)
        assert g["energy"] == pytest.approx(w["energy"], abs=1e-5)


def test_seq_gaps_repeats_and_reorders(client, stream):
    r0 = client.post("/segment/stream", json={"observations": stream[:5], "seq": 0}).json()
    sid = r0["session_id"]
    assert r0["seq"] == 0 and [r["t"] for r in r0["results"]] == list(range(5))
    gap = client.post(
        "/segment/stream", json={"session_id": sid, "seq": 2, "observations": stream[5:9]}
    )
    assert gap.status_code == 409 and "expects seq 1" in gap.json()["detail"]
    body = {"session_id": sid, "seq": 1, "observations": stream[5:9]}
    r1 = client.post("/segment/stream", json=body).json()
    retry = client.post("/segment/stream", json=body).json()
    assert retry == r1  # cached; the state did not advance
    other = client.post("/segment/stream", json={**body, "observations": stream[9:12]})
    assert other.status_code == 409 and "already applied" in other.json()["detail"]
    old = client.post(
        "/segment/stream", json={"session_id": sid, "seq": 0, "observations": stream[:5]}
    )
    assert old.status_code == 409
    r2 = client.post(
        "/segment/stream", json={"session_id": sid, "seq": 2, "observations": stream[9:10]}
    )
    assert [r["t"] for r in r2.json()["results"]] == [9]
    # Without seq, chunks are applied in arrival order and numbered.
    r3 = client.post("/segment/stream", json={"session_id": sid, "observations": stream[10:11]})
    assert r3.json()["seq"] == 3 and r3.json()["results"][0]["t"] == 10


def test_end_and_delete(client, stream):
    r = client.post("/segment/stream", json={"observations": stream[:3], "end": True}).json()
    assert r["closed"]  # a whole stream in one chunk: no session is kept
    again = client.post(
        "/segment/stream", json={"session_id": r["session_id"], "observations": stream[:1]}
    )
    assert again.status_code == 404
    sid = client.post("/segment/stream", json={"observations": stream[:3]}).json()["session_id"]
    assert client.delete(f"/sessions/{sid}").status_code == 204
    assert client.delete(f"/sessions/{sid}").status_code == 204  # closing twice does nothing
    late = client.post("/segment/stream", json={"session_id": sid, "observations": stream[:1]})
    assert late.status_code == 409 and "closed" in late.json()["detail"]
    assert client.delete("/sessions/never-opened").status_code == 404


def test_the_closing_chunk_is_safe_to_retry(client, stream):
    """Its answer is kept with the closed session: a retry after a lost answer gets it."""
    before = client.get("/metrics").text
    first = client.post("/segment/stream", json={"observations": stream[:4], "seq": 0}).json()
    last = {"session_id": first["session_id"], "seq": 1, "end": True, "observations": stream[4:9]}
    answer = client.post("/segment/stream", json=last)
    retry = client.post("/segment/stream", json=last)
    assert answer.status_code == retry.status_code == 200
    assert retry.json() == answer.json() and answer.json()["closed"]
    assert [r["t"] for r in retry.json()["results"]] == list(range(4, 9))
    more = client.post("/segment/stream", json={**last, "seq": 2, "end": False})
    assert more.status_code == 409 and "closed" in more.json()["detail"]
    assert _open_sessions(client.get("/metrics").text) == _open_sessions(before)


def test_a_session_named_by_its_client_opens_once(client, stream):
    """With the client's own id, a retry of a first chunk whose answer was lost gets that
    answer, and opens no second session."""
    before = _open_sessions(client.get("/metrics").text)
    sid = f"client-{secrets.token_hex(8)}"
    body = {"session_id": sid, "seq": 0, "observations": stream[:4]}
    answer = client.post("/segment/stream", json=body)
    retry = client.post("/segment/stream", json=body)
    assert answer.status_code == 200 and retry.json() == answer.json()
    assert answer.json()["session_id"] == sid
    assert _open_sessions(client.get("/metrics").text) == before + 1
    nxt = client.post(
        "/segment/stream", json={"session_id": sid, "seq": 1, "observations": stream[4:6]}
    )
    assert [r["t"] for r in nxt.json()["results"]] == [4, 5]
    unknown = client.post(
        "/segment/stream", json={"session_id": f"x{sid}", "seq": 1, "observations": stream[:1]}
    )
    assert unknown.status_code == 404  # only a first chunk opens a named session
    client.delete(f"/sessions/{sid}")


def _open_sessions(metrics: str) -> int:
    line = next(x for x in metrics.splitlines() if x.startswith("nld_open_sessions "))
    return int(float(line.split()[1]))


def test_concurrent_chunks_never_interleave(models_dir, stream):
    app = create_app(make_settings(models_dir))

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = await c.post("/segment/stream", json={"observations": stream[:1]})
            sid = first.json()["session_id"]
            chunks = [stream[1 + 4 * i : 5 + 4 * i] for i in range(10)]
            replies = await asyncio.gather(
                *(
                    c.post("/segment/stream", json={"session_id": sid, "observations": ch})
                    for ch in chunks
                )
            )
            return first.json(), [(r.json(), ch) for r, ch in zip(replies, chunks, strict=True)]

    with serving(app) as client:  # runs the lifespan (loads the model)
        first, pairs = asyncio.run(run())
        # The chunks were applied one at a time in seq order: that order, as one pass, must
        # give exactly the labels each chunk got.
        pairs.sort(key=lambda p: p[0]["seq"])
        replies = [r for r, _ in pairs]
        whole = _one_pass(client, stream[:1] + [o for _, ch in pairs for o in ch])
    assert len(app.state.session_locks) == 0  # the per-session locks are dropped after use
    assert [r["seq"] for r in replies] == list(range(1, 11))
    got = first["results"] + [x for r in replies for x in r["results"]]
    assert [x["t"] for x in got] == list(range(41))
    assert [x["label"] for x in got] == [x["label"] for x in whole]
    for g, w in zip(got, whole, strict=True):
        assert g["z"] == pytest.approx(w["z"], abs=1e-5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_ttl_expiry_and_cap(models_dir, stream):
    app = create_app(make_settings(models_dir))
    clock = FakeClock()
    app.state.sessions = MemorySessionStore(ttl=60, max_sessions=2, clock=clock)
    with serving(app) as c:
        a = c.post("/segment/stream", json={"observations": stream[:2]}).json()["session_id"]
        clock.now = 30
        c.post("/segment/stream", json={"observations": stream[:2]})
        full = c.post("/segment/stream", json={"observations": stream[:2]})
        assert full.status_code == 429 and int(full.headers["Retry-After"]) >= 1
        one_shot = c.post("/segment/stream", json={"observations": stream[:2], "end": True})
        assert one_shot.status_code == 200  # a whole stream in one chunk needs no session
        clock.now = 61  # a is idle for 61 s > TTL
        r = c.post("/segment/stream", json={"session_id": a, "observations": stream[2:3]})
        assert r.status_code == 404 and "expired" in r.json()["detail"]
        assert c.post("/segment/stream", json={"observations": stream[:2]}).status_code == 200
        assert "nld_session_evictions 1.0" in c.get("/metrics").text


def test_a_refused_first_chunk_leaves_no_session(models_dir, stream, monkeypatch):
    from nld.errors import NonFiniteError
    from service.loaded import LoadedModel

    def refuse(*args, **kwargs):
        raise NonFiniteError("the model produced non-finite values")

    app = create_app(make_settings(models_dir))
    with serving(app) as c:
        monkeypatch.setattr(LoadedModel, "label_chunk", refuse)
        r = c.post("/segment/stream", json={"observations": stream[:2]})
        assert r.status_code == 422 and "non-finite" in r.json()["detail"]
        assert asyncio.run(app.state.sessions.count()) == 0
