"""Start-up of the service: seconds from `nld serve` to the first HTTP answer and to ready
(/readyz 200), for a model with its stored analysis and for the same model without
one (analysed at start, then stored).

    python bench/startup.py [--model models/exp2-underdamped] [--repeats 3] [--threads 2]
                            [--poll 0.25] [--source DIR --label NAME]

Each run serves a copy of the model from a fresh directory with a fresh cache
(NLD_CACHE_DIR). `--source DIR` serves with the code of another checkout (its `training`,
`nld` and `service` packages on PYTHONPATH), to set a version against this one in the same
run. Medians over the repeats; a row per case goes to bench/results/startup.jsonl.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from record import append_row, free_port, nld_serve

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "startup.jsonl"
STORED = "analysis.safetensors"


def _serve(
    models: Path, cache: Path, threads: int, source: Path | None, a_poll: float
) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"NLD_CACHE_DIR": str(cache), "NLD_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = nld_serve(models, port, env=env, source=source)
    first = None
    # One client, one probe per poll: the probes themselves cost the machine little.
    probe = httpx.Client(base_url=url, timeout=1)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}")
            try:
                status = probe.get("/readyz").status_code  # any answer: the port serves
                first = first or time.perf_counter() - t0
                if status == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(a_poll)
        ready = time.perf_counter() - t0
        listing = probe.get("/models", timeout=5).json()["models"][0]
    finally:
        probe.close()
        proc.terminate()
        proc.wait(timeout=60)
    return {
        "port_seconds": first,
        "ready_seconds": ready,
        "load_seconds": listing.get("load_seconds", float("nan")),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "exp2-underdamped"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--source", type=Path, help="serve with the code of this checkout")
    p.add_argument("--label", default="HEAD", help="the code's name in the rows")
    p.add_argument(
        "--poll",
        type=float,
        default=0.25,
        help="seconds between two probes (each request to the loading server slows its "
        "analysis a little: both share one interpreter)",
    )
    a = p.parse_args()
    model = Path(a.model).resolve()
    for case in ("stored", "computed"):
        runs = []
        for _ in range(a.repeats):
            with tempfile.TemporaryDirectory(prefix="nld-startup-") as tmp:
                models = Path(tmp) / "models"
                shutil.copytree(model, models / model.name)
                if case == "computed":
                    (models / model.name / STORED).unlink(missing_ok=True)
                runs.append(_serve(models, Path(tmp) / "cache", a.threads, a.source, a.poll))
        row = {
            "code": a.label,
            "model": model.name,
            "case": case,
            "threads": a.threads,
            "repeats": a.repeats,
            "poll_seconds": a.poll,
            **{k: statistics.median(r[k] for r in runs) for k in runs[0]},
        }
        append_row(RESULTS, row)


if __name__ == "__main__":
    main()
