"""Trajectories of a model's prior SDE (Euler-Maruyama, the same step as training)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from nld.device import device_of
from nld.model import NLDModel
from nld.model.sde import step

BLOCK = 1024  # steps whose noise is drawn at once


def euler_split(model: NLDModel) -> int:
    """Euler steps `simulate_prior` takes per step of an energy prior: ceil(clock), so that no
    step is longer than one of the same dt in the unclocked prior (whose step training kept
    stable)."""
    return max(1, math.ceil(model.prior.clock))


def simulate_prior(
    model: NLDModel,
    n_paths: int,
    n_steps: int,
    dt: float,
    *,
    seed: int = 0,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Positions [n_paths, n_steps + 1, d] of the prior from `start` [d] or [n_paths, d]
    (positions; momenta start at 0), or from draws of the prior's initial distribution; `dt`
    is the time between two rows, on the prior's clock (`ModelConfig.clock`). Computed on the
    model's device from random numbers drawn on the CPU (the same paths on every device, up to
    rounding)."""
    return _simulate(model, n_paths, n_steps, dt, seed, start, velocities=False)[0].cpu().numpy()


def simulate_phase(
    model: NLDModel,
    n_paths: int,
    n_steps: int,
    dt: float,
    *,
    seed: int = 0,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities dq/dt = p / m [n_paths, n_steps + 1, d] of an underdamped
    energy prior (the same paths as `simulate_prior` with the same seed); velocities are in
    latent units per unit of model time on the prior's clock."""
    if model.cfg.dynamics != "underdamped" or model.prior.energy is None:
        raise ValueError("only an underdamped energy prior has velocities")
    positions, velocities = _simulate(model, n_paths, n_steps, dt, seed, start, velocities=True)
    assert velocities is not None
    return positions.cpu().numpy(), velocities.cpu().numpy()


@torch.no_grad()
def _simulate(
    model: NLDModel,
    n_paths: int,
    n_steps: int,
    dt: float,
    seed: int,
    start: np.ndarray | None,
    *,
    velocities: bool,
) -> tuple[Tensor, Tensor | None]:
    """Positions (and velocities) [n_paths, n_steps + 1, d] on the model's device."""
    cfg, prior = model.cfg, model.prior
    on = device_of(model)
    gen = torch.Generator().manual_seed(seed)  # on the CPU, as in training
    s, d = cfg.state_dim, cfg.latent_dim
    if start is None:
        eps = torch.randn(n_paths, s, generator=gen).to(on)
        y = model.py0_mean + torch.exp(model.py0_logstd) * eps
    else:
        q0 = torch.as_tensor(start, dtype=torch.float32).to(on).expand(n_paths, d)
        y = torch.cat([q0, q0.new_zeros(n_paths, s - d)], dim=-1) if s > d else q0.clone()
    out = y.new_empty(n_paths, n_steps + 1, d)
    out[:, 0] = y[:, :d]
    energy = prior.energy
    if energy is None:  # NSDE baseline: its MLP drift through the shared step
        noise = (torch.randn(n_steps, n_paths, d, generator=gen) * dt**0.5).to(on)
        for k in range(n_steps):
            y = step(prior, y, dt, drift=prior.noise_drift(y, shape_grad=False), dw=noise[k])
            out[:, k + 1] = y
        return out, None
    # Energy priors, written out so that a step costs little beyond its grad E: the same
    # Euler-Maruyama (semi-implicit for underdamped) step as `nld.model.sde.step`, with the
    # prior's clock (`Prior.kinetics`), each step of dt split in `euler_split` Euler steps.
    gamma, mass, g = prior.kinetics()
    split = euler_split(model)
    h = dt / split
    q, p = y[:, :d].clone(), y[:, d:] / prior.clock  # momenta in the clock's units
    rate, decay, velocity = h / gamma, 1 - gamma * h / mass, h / mass
    vel = y.new_empty(n_paths, n_steps + 1, d) if velocities else None
    if vel is not None:
        vel[:, 0] = p / mass
    for first in range(0, n_steps, BLOCK):
        rows = min(BLOCK, n_steps - first)
        kick = torch.randn(rows * split, n_paths, d, generator=gen).to(on).mul_(g * h**0.5)
        for j in range(rows * split):
            if cfg.dynamics == "overdamped":
                q.sub_(energy.force_grad(q).mul_(rate)).add_(kick[j])
            else:  # p <- p - (grad E + gamma p / m) h + g dW;  q <- q + p / m h  (in place)
                p.mul_(decay).sub_(energy.force_grad(q), alpha=h).add_(kick[j])
                q.addcmul_(p, velocity)
            if (j + 1) % split == 0:
                out[:, first + (j + 1) // split] = q
                if vel is not None:
                    vel[:, first + (j + 1) // split] = p / mass
    return out, vel
