"""One Euler-Maruyama step of the prior or posterior SDE (shared by training, sampling, serving).

The noisy components of the state (q when overdamped, p when underdamped) move by
`drift * dt + g * dw`, where `drift` is the prior's (sampling) or a posterior's (given). The
position of an underdamped state follows its momentum: explicit Euler uses the old momentum
(`symplectic=False`, torchsde's scheme); the default semi-implicit step uses the new one, so the
position responds to the control within the same step instead of one step later.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nld.model.prior import Prior


def step(
    prior: Prior,
    y: Tensor,
    dt: float,
    *,
    drift: Tensor | None = None,
    dw: Tensor | None = None,
    symplectic: bool = True,
) -> Tensor:
    """y(t + dt) from y(t). `drift` [..., d] replaces the prior drift of the noisy components;
    `dw` [..., d] ~ N(0, dt) is the Brownian increment (None: the noise-free step)."""
    if drift is None:
        drift = prior.noise_drift(y)
    incr = drift * dt
    if dw is not None:
        incr = incr + prior.diffusion() * dw
    if prior.dynamics != "underdamped":
        return y + incr
    d = prior.latent_dim
    q, p = y[..., :d], y[..., d:]
    p_new = p + incr
    q_new = q + (p_new if symplectic else p) / prior.mass() * dt
    return torch.cat([q_new, p_new], dim=-1)
