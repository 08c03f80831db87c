"""One Euler-Maruyama step of the prior or posterior SDE (shared by training, sampling, serving).

The noisy components of the state (q when overdamped, p when underdamped) move by
`drift * dt + g * dw`, where `drift` is the prior's (sampling) or a posterior's (given). The
position of an underdamped state follows its momentum: explicit Euler uses the old momentum
(`symplectic=False`, torchsde's scheme); the default semi-implicit step uses the new one, so the
position responds to the control within the same step instead of one step later.

`Euler` holds what a step needs of the prior (g, and dt / m), computed once for a whole path:
the posterior's integration loop takes hundreds of steps per training iteration, and each
recomputation of g from beta and gamma would add its small operators, and their backward, to
every one of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from nld.model.prior import Prior


@dataclass(frozen=True)
class Euler:
    """The step of `prior` of length `dt`, with its constants evaluated (in the prior's graph:
    gradients reach beta, gamma and m through them)."""

    dt: float
    latent_dim: int
    noise: Tensor  # g on the noisy components
    position_rate: Tensor | None  # dt / m (underdamped), or None: the whole state is noisy

    @classmethod
    def of(cls, prior: Prior, dt: float) -> Euler:
        rate = dt / prior.mass() if prior.dynamics == "underdamped" else None
        return cls(dt, prior.latent_dim, prior.diffusion(), rate)

    def kick_scale(self) -> Tensor:
        """g sqrt(dt): a kick g dW of this step from a standard normal draw."""
        return self.noise * math.sqrt(self.dt)

    def __call__(
        self, y: Tensor, drift: Tensor, kick: Tensor | None = None, *, symplectic: bool = True
    ) -> Tensor:
        """y(t + dt) from y(t): the noisy components move by `drift` dt + `kick`, where `kick`
        [..., d] is g dW (`self.noise` times an N(0, dt) increment; None: noise-free)."""
        if self.position_rate is None:
            moved = torch.add(y, drift, alpha=self.dt)
            return moved if kick is None else moved + kick
        d = self.latent_dim
        q, p = y[..., :d], y[..., d:]
        p_new = torch.add(p, drift, alpha=self.dt)
        if kick is not None:
            p_new = p_new + kick
        q_new = torch.addcmul(q, p_new if symplectic else p, self.position_rate)
        return torch.cat([q_new, p_new], dim=-1)


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
    scheme = Euler.of(prior, dt)
    kick = None if dw is None else scheme.noise * dw
    return scheme(y, drift, kick, symplectic=symplectic)
