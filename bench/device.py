"""Training iterations and prior sampling (`POST /sample`) per second on each device this
machine has, the CPU measured in the same run: one command gives the whole row, on any machine.

    python bench/device.py [--preset exp1-overdamped] [--data ../shared/benchmarks/exp1-train.npz]
        [--threads 2] [--steps 30] [--model models/exp2-underdamped] [--paths 1000]
        [--sample-steps 500]

For the CPU and every accelerator torch sees (each CUDA GPU, Apple's MPS):
- training: the preset's model at initialisation on that device, the training loop's batch and
  ELBO step (`nld train --device`), three warm-up steps untimed, then `--steps` steps timed to
  the device's end (CUDA synchronised); medians;
- sampling: `--model` as the service loads it with NLD_DEVICE set to that device, and what
  `POST /sample` computes for `--paths` paths of `--sample-steps` steps of dt 0.1 (latent
  space, as arrays on the CPU): one warm-up, then the median of 3; path steps per second.
A row goes to bench/results/device.jsonl.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from record import ROOT, append_row

from nld.data import load
from nld.fitting.config import load_config
from nld.fitting.step import elbo_step, optimizers
from nld.fitting.trainer import _batch, initial_model

RESULTS = ROOT / "bench" / "results" / "device.jsonl"


def devices() -> list[torch.device]:
    found = [torch.device("cpu")]
    found += [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append(torch.device("mps"))
    return found


def seconds_per_step(preset: str, x_cpu: torch.Tensor, device: torch.device, steps: int) -> float:
    cfg = load_config(preset)
    t = cfg.train
    torch.manual_seed(0)
    x = x_cpu.to(device)
    model = initial_model(cfg, x).to(device).train()
    opts = optimizers(model, t)
    gen = torch.Generator().manual_seed(0)  # on the CPU, as in training

    def done() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elif device.type == "mps":
            torch.mps.synchronize()

    times = []
    for i in range(3 + steps):
        xb = _batch(x, t.batch_size, t.window, gen)
        done()
        start = time.perf_counter()
        elbo_step(model, opts, xb, gen, kl_weight=1.0, clip=t.grad_clip, prior_steps=t.prior_steps)
        done()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def sample_seconds(model_dir: Path, device: torch.device, paths: int, steps: int) -> float:
    from service.config import Settings
    from service.loader import load_model

    settings = Settings(models_dir=model_dir.parent, device=str(device))
    lm = load_model(model_dir, settings)
    times = []
    for i in range(4):
        start = time.perf_counter()
        lm.sample(paths, steps, 0.1, seed=i, start=None, velocities=False, observed=False)
        if i > 0:  # the result is on the CPU: the device has finished
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="exp1-overdamped")
    p.add_argument("--data", default=str(ROOT.parent / "shared/benchmarks/exp1-train.npz"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--model", default=str(ROOT / "models" / "exp2-underdamped"))
    p.add_argument("--paths", type=int, default=1000)
    p.add_argument("--sample-steps", type=int, default=500)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.from_numpy(load(a.data).x)
    rows = {}
    for device in devices():
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
        s = seconds_per_step(a.preset, x, device, a.steps)
        sampled = sample_seconds(Path(a.model), device, a.paths, a.sample_steps)
        rows[str(device)] = {
            "name": name,
            "median_s": s,
            "iterations_per_second": 1 / s,
            "sample_s": sampled,
            "sample_path_steps_per_second": a.paths * a.sample_steps / sampled,
        }
        print(
            f"{device} ({name}): {s:.4f} s per iteration; /sample {a.paths} x {a.sample_steps}: "
            f"{sampled:.3f} s",
            flush=True,
        )
    cpu, cpu_sample = rows["cpu"]["median_s"], rows["cpu"]["sample_s"]
    append_row(
        RESULTS,
        {
            "preset": a.preset,
            "data": Path(a.data).name,
            "threads": a.threads,
            "steps": a.steps,
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "devices": rows,
            "speedup_over_cpu": {k: cpu / v["median_s"] for k, v in rows.items()},
            "sample": {"model": Path(a.model).name, "paths": a.paths, "steps": a.sample_steps},
            "sample_speedup_over_cpu": {k: cpu_sample / v["sample_s"] for k, v in rows.items()},
        },
    )


if __name__ == "__main__":
    main()
