"""Load test: `nld serve --workers 2` on loopback sharing Redis sessions, many concurrent
streams (asyncio + httpx), every label checked against an in-process one pass.

    python bench/load.py [--sessions 100] [--events 1000] [--chunk 10] [--workers 2]
    python bench/load.py --replicas 2 --workers 1   # two services, chunks sent alternately

Each session streams `events` observations of a sequence drawn from the model's own data
spec (exp2 for the shipped model) in chunks of `chunk`, numbered by `seq`, one after another;
sessions run concurrently. With `--replicas N`, N `nld serve` processes on N ports share the
Redis, and each session sends its chunks to them in turn, as a round-robin balancer would.
Counts errors, lost, duplicated or reordered events and labels that differ from the
reference; p50/p99 per request. A row goes to bench/results/load.jsonl.
Needs a Redis at --redis (default the machine's 127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from record import append_row, free_port

from nld.data import hmm
from service.config import Settings
from service.loader import load_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "load.jsonl"


async def _session(
    clients: list[httpx.AsyncClient], x: np.ndarray, chunk: int, latencies: list[float]
) -> tuple[list[tuple[int, int]], int]:
    """(t, label) of every event answered, and the number of failed requests."""
    got: list[tuple[int, int]] = []
    errors, sid = 0, None
    for seq, start in enumerate(range(0, len(x), chunk)):
        body: dict = {
            "observations": x[start : start + chunk].tolist(),
            "seq": seq,
            "end": start + chunk >= len(x),
        }
        if sid:
            body["session_id"] = sid
        t0 = time.perf_counter()
        r = await clients[seq % len(clients)].post("/segment/stream", json=body)
        latencies.append(time.perf_counter() - t0)
        if r.status_code != 200:
            errors += 1
            print(f"error {r.status_code}: {r.text[:200]}", file=sys.stderr)
            break
        sid = r.json()["session_id"]
        got += [(e["t"], e["label"]) for e in r.json()["results"]]
    return got, errors


async def _drive(
    urls: list[str], data: np.ndarray, chunk: int
) -> tuple[list[list[tuple[int, int]]], int, list[float]]:
    n = len(data)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    latencies: list[float] = []
    clients = [httpx.AsyncClient(base_url=u, limits=limits, timeout=120) for u in urls]
    try:
        out = await asyncio.gather(*(_session(clients, x, chunk, latencies) for x in data))
    finally:
        for c in clients:
            await c.aclose()
    return [g for g, _ in out], sum(e for _, e in out), latencies


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(ROOT / "models" / "exp2-underdamped"))
    p.add_argument("--spec", default="exp2", help="the data spec of the model's training data")
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--events", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=10)
    p.add_argument("--workers", type=int, default=2, help="worker processes per service")
    p.add_argument("--replicas", type=int, default=1, help="services sharing the Redis")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    a = p.parse_args()
    torch.set_num_threads(1)
    model_dir = Path(a.model).resolve()

    data = hmm.sample(hmm.load_spec(a.spec), a.sessions, a.events, seed=1).x
    # The reference: each sequence in one pass, in this process.
    lm = load_model(model_dir, Settings(models_dir=model_dir.parent))
    reference = [lm.label_chunk(x, None).labels.tolist() for x in data]

    prefix = f"nldload:{secrets.token_hex(4)}:"
    env = {
        **os.environ,
        "NLD_MODELS_DIR": str(model_dir.parent),
        "NLD_SESSION_STORE": a.redis,
        "NLD_SESSION_KEY_PREFIX": prefix,
        "NLD_THREADS": "1",
    }
    ports = [free_port() for _ in range(a.replicas)]
    nld = str(Path(sys.executable).with_name("nld"))
    procs = [
        subprocess.Popen([nld, "serve", "--port", str(port), "--workers", str(a.workers)], env=env)
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            ready: set[int] = set()  # every worker, not just the first, has loaded the model
            for _ in range(1200):
                try:
                    r = httpx.get(f"{url}/readyz")
                    if r.status_code == 200:
                        ready.add(r.json()["pid"])
                except httpx.TransportError:
                    pass
                if len(ready) == a.workers:
                    break
                time.sleep(0.25)
            version = httpx.get(f"{url}/models/{model_dir.name}").json()["version"]
            assert version == lm.version, "the server loaded other weights than the reference"
        t0 = time.perf_counter()
        got, errors, lat = asyncio.run(_drive(urls, data.astype(np.float64), a.chunk))
        wall = time.perf_counter() - t0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)

    lost = reordered = wrong = 0
    for g, ref in zip(got, reference, strict=True):
        ts = [t for t, _ in g]
        lost += len(ref) - len(set(ts))
        reordered += int(ts != sorted(set(ts)))
        wrong += sum(lab != ref[t] for t, lab in g if t < len(ref))
    lat_a = np.array(lat)
    row = {
        "model": model_dir.name,
        "workers": a.workers,
        "replicas": a.replicas,
        "store": "redis",
        "sessions": a.sessions,
        "events_per_session": a.events,
        "observations_per_chunk": a.chunk,
        "requests": len(lat),
        "errors": errors,
        "lost_events": lost,
        "reordered_sessions": reordered,
        "labels_differing_from_reference": wrong,
        "p50_ms": 1e3 * float(np.percentile(lat_a, 50)),
        "p99_ms": 1e3 * float(np.percentile(lat_a, 99)),
        "events_per_second": a.sessions * a.events / wall,
        "seconds": wall,
    }
    append_row(RESULTS, row)


if __name__ == "__main__":
    main()
