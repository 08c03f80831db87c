"""Latency over HTTP on loopback: a real uvicorn process with the shipped model, 50
concurrent sessions each streaming chunks one after another (asyncio + httpx).

    python bench/http_latency.py [--sessions 50] [--chunks 40] [--sizes 1 100] [--interval 0.2]

p50 / p99 per chunk size; a row per size goes to bench/results/http_latency.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from record import append_row, free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "http_latency.jsonl"


async def _session(
    client: httpx.AsyncClient,
    data: np.ndarray,
    size: int,
    chunks: int,
    interval: float,
    phase: float,
) -> list:
    latencies, sid = [], None
    # Independent streams are out of phase: each starts at its own point of the interval.
    start = time.perf_counter() + interval * phase
    for i in range(chunks):
        if interval:  # open loop: chunk i is due at i * interval, whatever came before
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
        body: dict = {"observations": data[i * size : (i + 1) * size].tolist(), "seq": i}
        if sid:
            body["session_id"] = sid
        t0 = time.perf_counter()
        r = await client.post("/segment/stream", json=body)
        latencies.append(time.perf_counter() - t0)
        r.raise_for_status()
        sid = r.json()["session_id"]
    await client.delete(f"/sessions/{sid}")
    return latencies


async def _drive(
    url: str, sessions: int, size: int, chunks: int, dim: int, interval: float
) -> list[float]:
    rng = np.random.default_rng(0)
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        data = [rng.standard_normal((size * chunks, dim)) for _ in range(sessions)]
        phases = rng.random(sessions)
        out = await asyncio.gather(
            *(
                _session(client, d, size, chunks, interval, ph)
                for d, ph in zip(data, phases, strict=True)
            )
        )
    return [x for lat in out for x in lat]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default=str(ROOT / "models"))
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--chunks", type=int, default=40)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 100])
    p.add_argument(
        "--interval",
        type=float,
        default=0.0,
        help="seconds between a session's chunks (open loop); 0: each session sends its next "
        "chunk as soon as the last is answered (closed loop: latency = queueing)",
    )
    a = p.parse_args()
    port = free_port()
    env = {**os.environ, "NLD_MODELS_DIR": a.models, "NLD_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "service.main:create_app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=300, poll=0.5)
        model = httpx.get(f"{url}/models").json()["models"][0]
        for size in a.sizes:
            t0 = time.perf_counter()
            lat = np.array(
                asyncio.run(_drive(url, a.sessions, size, a.chunks, model["obs_dim"], a.interval))
            )
            wall = time.perf_counter() - t0
            row = {
                "model": model["name"],
                "sessions": a.sessions,
                "observations_per_chunk": size,
                "requests": len(lat),
                "p50_ms": 1e3 * float(np.percentile(lat, 50)),
                "p99_ms": 1e3 * float(np.percentile(lat, 99)),
                "events_per_second": len(lat) * size / wall,
                "interval_s": a.interval,
                "workers": 1,
            }
            append_row(RESULTS, row)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
