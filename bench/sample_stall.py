"""Does a large /sample hold up other requests? `nld serve` with the shipped model; while one
client draws a sample at the caps (1,000 paths x 999 steps, 2M values, 41 MB of JSON),
another asks /healthz every 10 ms on its own connection. Reported: the slowest and the 99th
percentile /healthz latency during the sample, and the sample's own time.

    python bench/sample_stall.py [--repeats 3] [--accept application/json]
                                 [--source DIR --label NAME]

`--source DIR` serves with the code of another checkout (as bench/startup.py). Medians over
the repeats; a row goes to bench/results/sample_stall.jsonl.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

import httpx
from record import append_row, free_port, nld_serve, wait_ready

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sample_stall.jsonl"
BODY = {"n_paths": 1000, "n_steps": 999, "dt": 0.1, "seed": 0}


def _once(url: str, accept: str) -> dict[str, float]:
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            while not done.is_set():
                t0 = time.perf_counter()
                c.get("/healthz")
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.01)

    t = threading.Thread(target=probe)
    t.start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as c:
        r = c.post("/sample", json=BODY, headers={"Accept": accept})
        r.raise_for_status()
        size = len(r.content)
    seconds = time.perf_counter() - t0
    done.set()
    t.join()
    during = sorted(latencies)
    return {
        "sample_seconds": seconds,
        "sample_megabytes": size / 1e6,
        "healthz_max_ms": 1e3 * during[-1],
        "healthz_p99_ms": 1e3 * during[int(0.99 * (len(during) - 1))],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--accept", default="application/json")
    p.add_argument("--source", type=Path, help="serve with the code of this checkout")
    p.add_argument("--label", default="HEAD", help="the code's name in the rows")
    a = p.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = nld_serve(ROOT / "models", port, env={"NLD_THREADS": "1"}, source=a.source)
    try:
        wait_ready(url, timeout=120, poll=0.1)
        runs = [_once(url, a.accept) for _ in range(a.repeats)]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    row = {
        "code": a.label,
        "accept": a.accept,
        "repeats": a.repeats,
        **{k: statistics.median(r[k] for r in runs) for k in runs[0]},
    }
    append_row(RESULTS, row)


if __name__ == "__main__":
    main()
