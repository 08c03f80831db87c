"""docker-compose.yml: it parses as we mean it, and the api command it runs works here
(docker does not run on these machines) with two workers against the local Redis,
through a killed worker and a SIGTERM. Its replicas, run here as processes, are in
test_replicas.py."""

import contextlib
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from service.client import NLDClient
from tests.service.servers import free_port, running_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _seconds(text: str) -> float:
    return float(text.rstrip("s"))


def test_compose_file(compose):
    services = compose["services"]
    assert set(services) == {"api", "lb", "redis", "prometheus"}
    api, redis, lb = services["api"], services["redis"], services["lb"]
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    # Replicas behind the balancer, which alone publishes the port.
    assert api["deploy"]["replicas"] >= 2 and "ports" not in api and "container_name" not in api
    assert lb["image"].startswith("nginx:") and lb["ports"] == ["127.0.0.1:8000:8000"]
    assert lb["depends_on"]["api"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(lb["healthcheck"]["test"])
    (conf,) = lb["volumes"]
    assert conf == "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro"
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server api:8000 resolve;" in nginx and "listen 8000;" in nginx
    assert "resolver 127.0.0.11" in nginx  # docker's DNS: replicas are looked up again
    assert services["prometheus"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    for service in services.values():
        assert all(str(p).startswith("127.0.0.1:") for p in service.get("ports", []))
    cmd = api["command"]
    assert int(cmd[cmd.index("--workers") + 1]) > 1 and "--limit-concurrency" in cmd
    drain = float(api["environment"]["NLD_DRAIN_SECONDS"])
    graceful = float(cmd[cmd.index("--graceful-seconds") + 1])
    ping = float(cmd[cmd.index("--healthcheck-seconds") + 1])
    assert _seconds(api["stop_grace_period"]) > drain + graceful + ping
    assert api["environment"]["NLD_SESSION_STORE"].startswith("redis://redis:")
    # Prometheus sends the API key (when there is one) as a bearer token from a compose config.
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    (every_replica,) = job["dns_sd_configs"]
    assert every_replica == {"names": ["api"], "type": "A", "port": 8000}
    key_file = job["authorization"]["credentials_file"]
    assert job["authorization"]["type"] == "Bearer"
    (mounted,) = services["prometheus"]["configs"]
    assert mounted["target"] == key_file
    assert compose["configs"][mounted["source"]]["content"] == "${NLD_API_KEY:-}"
    # The models are mounted read-only: analyses computed at start go to a cache volume.
    cache = api["environment"]["NLD_CACHE_DIR"]
    assert "./models:/models:ro" in api["volumes"]
    assert any(
        v.endswith(f":{cache}") and v.split(":")[0] in compose["volumes"] for v in api["volumes"]
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER nld" in dockerfile and "torch==2.13.0" in dockerfile
    assert f"chown -R nld {Path(cache).parent!s}" in dockerfile  # the volume is nld's


def _interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with the environment of this test (VAR unset here)."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1]) or m[2], value)


def _workers(pid: int) -> list[int]:
    """uvicorn's worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _all_serving(url: str, pid: int, timeout: float = 120) -> list[int]:
    """The two workers, once each has answered ready (on new connections, which the kernel
    hands to either): a worker process that is still starting is no stand-in for a live one."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        workers = _workers(pid)
        if len(workers) == 2 and seen.issuperset(workers):
            return workers
        assert time.monotonic() < deadline, f"workers {workers} not all ready; seen {seen}"
        with contextlib.suppress(httpx.TransportError):
            body = httpx.get(f"{url}/readyz", timeout=5).json()
            if body["ready"]:
                seen.add(body["pid"])
        time.sleep(0.05)


def test_the_compose_api_command_here(compose, models_dir, redis_url, key_prefix, stream, tmp_path):
    """The api service's command and environment, with the host names, paths and port of
    this machine: two workers sharing the local Redis."""
    api = compose["services"]["api"]
    port = free_port()
    here = {"/models": str(models_dir), "0.0.0.0": "127.0.0.1", "8000": str(port)}
    command = [here.get(a, a) for a in api["command"]]
    command[0] = str(Path(sys.executable).with_name(command[0]))  # nld of this environment
    env = {k: _interpolate(str(v)) for k, v in api["environment"].items()}
    env["NLD_SESSION_STORE"] = redis_url
    env["NLD_SESSION_KEY_PREFIX"] = key_prefix
    env["NLD_CACHE_DIR"] = str(tmp_path / "cache")
    url = f"http://127.0.0.1:{port}"
    # A new connection per request, so requests spread over both workers.
    fresh = httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0))
    with running_server(command, env, url) as proc, NLDClient(url, client=fresh) as nld:
        whole = [(r.t, r.label) for r in nld.stream_segment(stream, chunk_size=len(stream))]
        workers = _all_serving(url, proc.pid)
        got = []
        stream_iter = nld.stream_segment(stream, chunk_size=3)
        for i, r in enumerate(stream_iter):
            got.append((r.t, r.label))
            if i == 20:  # a worker dies mid-stream: the session goes on in the other
                os.kill(workers[0], signal.SIGKILL)
        assert got == whole
        # The supervisor replaces the killed worker (and is not waiting on a starting one's
        # ping when the SIGTERM below comes).
        assert workers[0] not in _all_serving(url, proc.pid)
        # Whichever worker a scrape lands on, it counts the events of all (the killed included).
        for _ in range(4):
            text = httpx.get(f"{url}/metrics").text
            (events,) = [ln for ln in text.splitlines() if ln.startswith("nld_stream_events_total")]
            assert float(events.split()[-1]) == 2 * len(stream)

        # SIGTERM: readiness turns 503 while a request in flight still finishes, then exit.
        slow: dict[str, int] = {}

        def sample() -> None:
            body = {"n_paths": 200, "n_steps": 3000, "dt": 0.01, "seed": 0}
            slow["status"] = httpx.post(f"{url}/sample", json=body, timeout=60).status_code

        t = threading.Thread(target=sample)
        t.start()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/readyz", timeout=5).status_code != 503:
            assert time.monotonic() < deadline, "readiness never turned 503"
            time.sleep(0.1)
        t.join(timeout=60)
        assert slow.get("status") == 200
        assert proc.wait(timeout=60) == 0


def test_several_workers_need_a_shared_store(models_dir, monkeypatch, capsys):
    from training.cli import main

    monkeypatch.delenv("NLD_SESSION_STORE", raising=False)
    monkeypatch.setenv("NLD_MODELS_DIR", str(models_dir))  # restored after: serve() sets it
    assert main(["serve", "--models", str(models_dir), "--workers", "2"]) == 2
    assert "NLD_SESSION_STORE=redis://" in capsys.readouterr().err
    monkeypatch.setenv("NLD_SESSION_STORE", "postgres://nope")
    assert main(["serve", "--models", str(models_dir)]) == 2
    assert "session_store" in capsys.readouterr().err
