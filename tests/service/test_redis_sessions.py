"""Sessions in a real Redis: the store's contract, several app processes sharing it, and
what happens when Redis is down or stalls."""

import asyncio
import os
import signal
import time
from dataclasses import replace

import numpy as np
import pytest

from service.main import create_app
from service.redis_sessions import RedisSessionStore, redacted
from service.sessions import (
    SessionExists,
    SessionExpired,
    SessionNotFound,
    TooManySessions,
)
from tests.service.conftest import make_settings, serving
from tests.service.servers import free_port, private_redis


def _store(url, prefix, ttl=60.0, cap=100, timeout=2.0):
    return RedisSessionStore(url, ttl, cap, prefix=prefix, timeout=timeout)


def test_store_round_trip_and_compare_and_set(redis_url, key_prefix):
    async def run():
        store = _store(redis_url, key_prefix)
        s = await store.create("easy", "v1")
        got = await store.get(s.id)
        assert (got.model, got.version, got.t, got.seq, got.h) == ("easy", "v1", 0, -1, None)
        assert got.belief is None
        h = np.random.default_rng(0).standard_normal((1, 1, 7)).astype(np.float32)
        belief = np.log([0.2, 0.7, 0.1])
        nxt = got.__class__(
            s.id, "easy", "v1", t=5, seq=0, h=h, belief=belief, digest="d", response=b"{}"
        )
        assert await store.commit(-1, nxt)
        assert not await store.commit(-1, nxt)  # a second writer from the same state loses
        back = await store.get(s.id)
        assert back.seq == 0 and back.t == 5 and back.response == b"{}" and back.digest == "d"
        assert back.h is not None and back.h.dtype == np.float32
        np.testing.assert_array_equal(back.h, h)  # raw bytes: bit for bit
        assert back.belief is not None and back.belief.dtype == np.float64
        np.testing.assert_array_equal(back.belief, belief)
        assert await store.count() == 1
        await store.close(s.id)  # kept, closed, with its last answer, until its TTL
        closed = await store.get(s.id)
        assert closed.closed and closed.response == b"{}" and await store.count() == 0
        await store.close(s.id)  # closing a closed session does nothing
        await store.touch(s.id)
        assert await store.count() == 0  # a touch does not reopen it
        assert not await store.commit(0, replace(nxt, seq=1))  # nor does a commit
        with pytest.raises(SessionExists):
            await store.create("easy", "v1", sid=s.id)
        with pytest.raises(SessionNotFound):
            await store.close("never-opened")
        named = await store.create("easy", "v1", sid="client-chosen")
        assert named.id == "client-chosen" and await store.count() == 1
        await store.aclose()

    asyncio.run(run())


def test_store_ttl_and_cap(redis_url, key_prefix):
    async def run():
        store = _store(redis_url, key_prefix, ttl=0.5, cap=2)
        a = await store.create("m", "v")
        await store.create("m", "v")
        with pytest.raises(TooManySessions) as full:
            await store.create("m", "v")
        assert full.value.retry_after >= 1
        await asyncio.sleep(0.7)  # Redis expires both
        with pytest.raises(SessionExpired, match=r"expired after 0\.5 s"):
            await store.get(a.id)
        with pytest.raises(SessionExpired):
            await store.close(a.id)
        await store.create("m", "v")  # room again; the two expired ones count as evicted
        assert await store.evictions() == 2
        await store.aclose()

    asyncio.run(run())


def test_unreachable_redis_is_503_for_streaming_only(models_dir, stream):
    settings = make_settings(
        models_dir,
        session_store=f"redis://:secret@127.0.0.1:{free_port()}/0",
        store_timeout_seconds=0.5,
    )
    with serving(create_app(settings)) as c:
        r = c.post("/segment/stream", json={"observations": stream[:3]})
        assert r.status_code == 503 and "unreachable" in r.json()["detail"]
        assert "secret" not in r.json()["detail"]
        assert c.get("/landscape/minima").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 200 and "unreachable" in ready.json()["sessions"]
        assert c.get("/metrics").status_code == 200


def test_readiness_never_waits_on_a_hung_store(models_dir):
    """A Redis that accepts connections and never answers: /readyz answers at once with the
    store's state as last seen (the compose health check's timeout is the store's own)."""
    import socket
    import time

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # connections are accepted by the kernel, and never read
    settings = make_settings(
        models_dir,
        session_store=f"redis://127.0.0.1:{hung.getsockname()[1]}/0",
        store_timeout_seconds=2.0,
        reload_poll_seconds=0.2,
    )
    try:
        with serving(create_app(settings)) as c:
            for _ in range(5):
                t0 = time.perf_counter()
                ready = c.get("/readyz")
                assert time.perf_counter() - t0 < 1.0  # not the store's 2 s timeout
                assert ready.status_code == 200
            deadline = time.monotonic() + 10
            while "unreachable" not in c.get("/readyz").json()["sessions"]:
                assert time.monotonic() < deadline, c.get("/readyz").json()
                time.sleep(0.1)
    finally:
        hung.close()


def test_redacted():
    assert redacted("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert redacted("redis://h:1/0") == "redis://h:1/0"


@pytest.fixture
def two_apps(models_dir, redis_url, key_prefix):
    """Two apps (as two workers) sharing one Redis."""
    settings = make_settings(models_dir, session_store=redis_url, session_key_prefix=key_prefix)
    with serving(create_app(settings)) as a, serving(create_app(settings)) as b:
        yield a, b


def test_a_stream_alternating_between_two_processes(two_apps, stream):
    a, b = two_apps
    whole = a.post("/segment/stream", json={"observations": stream, "end": True}).json()
    sid, got = None, []
    for seq, start in enumerate(range(0, len(stream), 7)):
        body = {"observations": stream[start : start + 7], "seq": seq}
        if sid:
            body["session_id"] = sid
        r = (a, b)[seq % 2].post("/segment/stream", json=body)
        assert r.status_code == 200, r.text
        sid = r.json()["session_id"]
        got += r.json()["results"]
        # A retry of the same chunk on the other process returns the same answer.
        retry = (b, a)[seq % 2].post("/segment/stream", json={**body, "session_id": sid})
        assert retry.json() == r.json()
    assert [(g["t"], g["label"]) for g in got] == [(w["t"], w["label"]) for w in whole["results"]]
    for g, w in zip(got, whole["results"], strict=True):
        assert g["z"] == pytest.approx(w["z"], abs=1e-5)


def test_two_processes_never_both_advance_a_session(models_dir, redis_url, key_prefix, stream):
    """Concurrent chunks without seq, sent to two apps at once: each is applied exactly once,
    one after another, as the seq numbers they got say."""
    import httpx

    settings = make_settings(models_dir, session_store=redis_url, session_key_prefix=key_prefix)
    apps = [create_app(settings), create_app(settings)]

    async def run():
        # The lifespans run on this loop: Redis connections belong to the loop that made them.
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
        ):
            while not all(app.state.registry.ready for app in apps):  # models load
                await asyncio.sleep(0.02)
            clients = [
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
                for app in apps
            ]
            post = [c.post for c in clients]
            first = await post[0]("/segment/stream", json={"observations": stream[:1]})
            sid = first.json()["session_id"]
            chunks = [stream[1 + 3 * i : 4 + 3 * i] for i in range(12)]
            replies = await asyncio.gather(
                *(
                    post[i % 2]("/segment/stream", json={"session_id": sid, "observations": ch})
                    for i, ch in enumerate(chunks)
                )
            )
            # Under contention a chunk may be refused (409 after repeated lost races),
            # never lost silently or applied twice.
            assert all(r.status_code in (200, 409) for r in replies)
            ok = [(r.json(), ch) for r, ch in zip(replies, chunks, strict=True) if r.is_success]
            ok.sort(key=lambda p: p[0]["seq"])
            once = stream[:1] + [o for _, ch in ok for o in ch]
            whole = await post[0]("/segment/stream", json={"observations": once, "end": True})
            for c in clients:
                await c.aclose()
            return first.json(), ok, whole.json()["results"]

    first, ok, whole = asyncio.run(run())
    assert len(ok) >= 6  # most chunks got through despite 12 racing writers
    assert [r["seq"] for r, _ in ok] == list(range(1, len(ok) + 1))
    got = first["results"] + [x for r, _ in ok for x in r["results"]]
    assert [x["t"] for x in got] == list(range(len(got)))
    assert [x["label"] for x in got] == [x["label"] for x in whole]


def test_redis_stall_gives_503_then_the_session_continues(models_dir, stream):
    """Redis frozen (SIGSTOP) mid-stream: 503s naming the store; thawed: the same session
    continues exactly where it was, as if nothing happened."""
    with private_redis() as (proc, url):
        settings = make_settings(models_dir, session_store=url, store_timeout_seconds=0.3)
        with serving(create_app(settings)) as c:
            whole = c.post("/segment/stream", json={"observations": stream, "end": True}).json()
            r0 = c.post("/segment/stream", json={"observations": stream[:20], "seq": 0}).json()
            sid = r0["session_id"]
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                body = {"session_id": sid, "observations": stream[20:40], "seq": 1}
                down = c.post("/segment/stream", json=body)
                assert down.status_code == 503 and "unreachable" in down.json()["detail"]
                assert c.get("/landscape/minima").status_code == 200
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            r1 = c.post("/segment/stream", json=body).json()
            r2 = c.post(
                "/segment/stream",
                json={"session_id": sid, "observations": stream[40:], "seq": 2},
            ).json()
    got = r0["results"] + r1["results"] + r2["results"]
    assert [(g["t"], g["label"]) for g in got] == [(w["t"], w["label"]) for w in whole["results"]]


def test_redis_restart_loses_sessions_cleanly(models_dir, stream):
    """Redis killed (it keeps nothing on disk) and started again: 503 while it is down,
    then old sessions are 404 (never half-restored) and new ones work."""
    port = free_port()
    with private_redis(port) as (proc, url):
        settings = make_settings(models_dir, session_store=url, store_timeout_seconds=0.3)
        app = create_app(settings)
        with serving(app) as c:
            sid = c.post("/segment/stream", json={"observations": stream[:5]}).json()["session_id"]
            proc.kill()
            proc.wait()
            body = {"session_id": sid, "observations": stream[5:9]}
            assert c.post("/segment/stream", json=body).status_code == 503
            with private_redis(port):
                deadline = time.monotonic() + 10
                while (r := c.post("/segment/stream", json=body)).status_code == 503:
                    assert time.monotonic() < deadline, r.text
                    time.sleep(0.1)
                assert r.status_code == 404
                fresh = c.post("/segment/stream", json={"observations": stream[:5]})
                assert fresh.status_code == 200
