"""Prior sampling: our integrator (`nld.simulate.simulate_prior`, what POST /sample runs)
against torchsde.sdeint (Euler, same SDE) and against the floor, a loop that only evaluates
grad E on the same batch for the same number of steps.

All three do the same work: the prior on its clock (`Prior.kinetics`: friction, mass and
noise as it generates), with `euler_split(model)` Euler steps of dt / split per row, as
`simulate_prior` takes them.

    python bench/sampling.py [--model models/exp2-underdamped] [--paths 1000] [--steps 500]

Medians of 3 repeats, one thread; also the end-time mean and variance of q from both
integrators with their Monte Carlo standard errors. A row goes to bench/results/sampling.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torchsde

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sampling.jsonl"


class PriorSDE(torch.nn.Module):
    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, model) -> None:
        super().__init__()
        self.prior = model.prior
        self.d = model.cfg.latent_dim
        self.s = model.cfg.state_dim

        # the prior as it generates, on its clock (what simulate_prior integrates)
        self.gamma, self.mass, self.noise = self.prior.kinetics()

    def f(self, t, y):
        # The same closed-form gradient as ours, so the difference is the integrator's.
        if self.s == self.d:
            return -self.prior.energy.force_grad(y) / self.gamma
        q, p = y[:, : self.d], y[:, self.d :]
        force = -self.prior.energy.force_grad(q) - self.gamma * p / self.mass
        return torch.cat([p / self.mass, force], dim=-1)

    def g(self, t, y):
        g = self.noise.expand(self.d)
        if self.s > self.d:  # underdamped: noise on the momentum only
            g = torch.cat([torch.zeros(self.d), g])
        return g.expand(y.shape[0], self.s)


def _median(fn, repeats: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    from nld import checkpoint
    from nld.simulate import euler_split, simulate_prior

    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(ROOT / "models" / "exp2-underdamped"))
    p.add_argument("--paths", type=int, default=1000)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--dt", type=float, default=0.01)
    a = p.parse_args()
    torch.set_num_threads(1)
    model, _ = checkpoint.load(a.model)
    for param in model.parameters():
        param.requires_grad_(False)
    d, s = model.cfg.latent_dim, model.cfg.state_dim
    split = euler_split(model)  # Euler steps per row, for all three
    start = np.zeros(d)
    for m in json.loads((Path(a.model) / "analysis.json").read_text())["minima"][:1]:
        start = np.asarray(m["position"])

    t_ours, ours = _median(
        lambda: simulate_prior(model, a.paths, a.steps, a.dt, seed=0, start=start)
    )
    sde = PriorSDE(model)
    y0 = torch.zeros(a.paths, s)
    y0[:, :d] = torch.as_tensor(start, dtype=torch.float32)
    ts = torch.tensor([0.0, a.steps * a.dt])

    @torch.no_grad()
    def run_torchsde():
        return torchsde.sdeint(sde, y0, ts, method="euler", dt=a.dt / split)[-1, :, :d].numpy()

    t_torchsde, theirs = _median(run_torchsde)
    energy = model.prior.energy
    assert energy is not None
    q = y0[:, :d].clone()

    @torch.no_grad()
    def floor():
        for _ in range(a.steps * split):
            energy.force_grad(q)

    t_floor, _ = _median(floor)
    end_ours = np.asarray(ours)[:, -1]
    end_theirs = np.asarray(theirs)
    n = a.paths
    row = {
        "model": Path(a.model).name,
        "paths": n,
        "steps": a.steps,
        "dt": a.dt,
        "clock": model.prior.clock,
        "euler_steps": a.steps * split,
        "threads": 1,
        "ours_seconds": t_ours,
        "torchsde_seconds": t_torchsde,
        "floor_seconds": t_floor,
        "speedup_vs_torchsde": t_torchsde / t_ours,
        "ratio_to_floor": t_ours / t_floor,
        "path_steps_per_second": n * a.steps / t_ours,
        "end_mean_ours": end_ours.mean(0).tolist(),
        "end_mean_torchsde": end_theirs.mean(0).tolist(),
        "end_mean_se": (end_ours.std(0) / np.sqrt(n)).tolist(),
        "end_var_ours": end_ours.var(0).tolist(),
        "end_var_torchsde": end_theirs.var(0).tolist(),
        # the standard error of a sample variance: var * sqrt(2 / (n - 1)) for near-Gaussian q
        "end_var_se": (end_ours.var(0) * np.sqrt(2 / (n - 1))).tolist(),
    }
    print(json.dumps(row, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
