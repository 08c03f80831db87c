"""One Euler-Maruyama step of the prior or posterior SDE (shared by training, sampling, serving).

Posterior drift = prior drift + g * u on the noisy components, u a bounded control; with
u = 0 it is the prior. Both transitions are Gaussian with the same covariance g^2 dt, so the
KL of one posterior step from the prior step is exactly |u|^2 dt / 2.

Underdamped states integrate `symplectic` by default (semi-implicit Euler: the new momentum
moves the position in the same step), which keeps the position free of a one-step lag behind
the control; `symplectic=False` is the explicit scheme that torchsde's Euler also uses.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nld.model.prior import Prior


def step(
    prior: Prior,
    y: Tensor,
    dt: float,
    u: Tensor | None = None,
    dw: Tensor | None = None,
    symplectic: bool = True,
) -> Tensor:
    """y(t + dt) from y(t). `u`, `dw` ([..., d]; dw ~ N(0, dt)) act on the noisy components."""
    g = prior.diffusion()
    d = prior.latent_dim
    if prior.dynamics != "underdamped":
        incr = prior.drift(y) * dt
        if u is not None:
            incr = incr + g * u * dt
        if dw is not None:
            incr = incr + g * dw
        return y + incr
    assert prior.energy is not None
    q, p = y[..., :d], y[..., d:]
    m, gamma = prior.mass(), prior.gamma()
    v = p / m
    acc = -prior.energy.grad(q) - gamma * v
    if u is not None:
        acc = acc + g * u
    p_new = p + acc * dt
    if dw is not None:
        p_new = p_new + g * dw
    q_new = q + (p_new / m if symplectic else v) * dt
    return torch.cat([q_new, p_new], dim=-1)
