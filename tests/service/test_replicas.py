"""Replicas: two `nld serve` processes on two ports sharing their stream sessions through one
Redis, as behind a load balancer. A stream's chunks go to each in turn; one replica is killed
mid-stream and the other carries the session on."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx

from tests.service.servers import free_port, running_server


def test_a_stream_across_two_replicas_survives_one_killed(
    models_dir, redis_url, key_prefix, stream
):
    env = {"NLD_SESSION_STORE": redis_url, "NLD_SESSION_KEY_PREFIX": key_prefix}
    nld = str(Path(sys.executable).with_name("nld"))
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    commands = [[nld, "serve", "--models", str(models_dir), "--port", str(p)] for p in ports]
    with (
        running_server(commands[0], env, urls[0]) as first,
        running_server(commands[1], env, urls[1]),
        httpx.Client(base_url=urls[0]) as one,
        httpx.Client(base_url=urls[1]) as two,
    ):
        whole = two.post("/segment/stream", json={"observations": stream, "end": True}).json()
        replicas, sid, got = [one, two], None, []
        for seq, start in enumerate(range(0, len(stream), 5)):
            if seq == 5:  # the first replica dies; the balancer sends the rest to the second
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=30)
                replicas = [two]
            body = {"observations": stream[start : start + 5], "seq": seq}
            if sid:
                body["session_id"] = sid
            r = replicas[seq % len(replicas)].post("/segment/stream", json=body)
            assert r.status_code == 200, r.text
            sid = r.json()["session_id"]
            got += r.json()["results"]
        labels = [(e["t"], e["label"]) for e in got]
        assert labels == [(e["t"], e["label"]) for e in whole["results"]]
        assert len(labels) == len(stream) == 60
