"""Trajectories of a model's prior SDE (Euler-Maruyama, the same step as training)."""

from __future__ import annotations

import numpy as np
import torch

from nld.model import NLDModel
from nld.model.sde import step


@torch.no_grad()
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
    (positions; momenta start at 0), or from draws of the prior's initial distribution."""
    cfg, prior = model.cfg, model.prior
    gen = torch.Generator().manual_seed(seed)
    s, d = cfg.state_dim, cfg.latent_dim
    if start is None:
        eps = torch.randn(n_paths, s, generator=gen)
        y = model.py0_mean + torch.exp(model.py0_logstd) * eps
    else:
        q0 = torch.as_tensor(start, dtype=torch.float32).expand(n_paths, d)
        y = torch.cat([q0, torch.zeros(n_paths, s - d)], dim=-1) if s > d else q0.clone()
    out = torch.empty(n_paths, n_steps + 1, d)
    out[:, 0] = y[:, :d]
    noise = torch.randn(n_steps, n_paths, d, generator=gen) * dt**0.5
    energy = prior.energy
    if energy is None:  # NSDE baseline: its MLP drift through the shared step
        for k in range(n_steps):
            y = step(prior, y, dt, drift=prior.noise_drift(y, shape_grad=False), dw=noise[k])
            out[:, k + 1] = y
        return out.numpy()
    # Energy priors, written out so that a step costs little beyond its grad E: the same
    # Euler-Maruyama (semi-implicit for underdamped) step as `nld.model.sde.step`.
    kick = noise.mul_(prior.diffusion())  # g dW for every step at once
    gamma = prior.gamma()
    if cfg.dynamics == "overdamped":
        q, rate = y.clone(), dt / gamma
        for k in range(n_steps):
            q.sub_(energy.force_grad(q).mul_(rate)).add_(kick[k])
            out[:, k + 1] = q
        return out.numpy()
    mass = prior.mass()
    q, p = y[:, :d].clone(), y[:, d:].clone()
    decay, velocity = 1 - gamma * dt / mass, dt / mass
    for k in range(n_steps):
        # p <- p - (grad E + gamma p / m) dt + g dW;  q <- q + p / m dt  (in place)
        p.mul_(decay).sub_(energy.force_grad(q), alpha=dt).add_(kick[k])
        q.addcmul_(p, velocity)
        out[:, k + 1] = q
    return out.numpy()
