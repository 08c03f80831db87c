"""Prior dynamics: overdamped or underdamped Langevin in a neural energy, or a generic NSDE.

State y has `state_dim` components; the last `latent_dim` of them carry noise:
- overdamped  y = q:       dq = -grad E(q)/gamma dt + sqrt(2/(beta gamma)) dW
- underdamped y = (q, p):  dq = p/m dt,  dp = (-grad E(q) - gamma p/m) dt + sqrt(2 gamma/beta) dW
- nsde        y = z:       dz = MLP(z) dt + sigma dW  (sigma learned, positive)
beta, gamma and m are positive by construction (softplus of a free parameter).

When the prior generates (sampling, rates, dwell times) an energy prior runs on its own clock c
(`ModelConfig.clock`, fitted after training by nld.fitting.clock): gamma / c and m / c^2 in place
of gamma and m. That is the same landscape and stationary density exp(-beta E), with time
running c times faster: q_c(t) = q(c t) in law. Training never sees it: the ELBO's prior is
the one above, so the posterior, the labels and the ELBO do not change with c.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nld.model.config import ModelConfig
from nld.model.energy import MLPEnergy, ResidualEnergy
from nld.model.layers import mlp


def _inv_softplus(x: float) -> float:
    return x + math.log(-math.expm1(-x))


class PositiveScalar(nn.Module):
    """softplus(raw): learned when `learn`, else a fixed buffer; a scalar, or one value per
    latent dimension when `shape` is given."""

    def __init__(self, value: float, learn: bool, shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        raw = torch.full(shape, _inv_softplus(value))
        if learn:
            self.raw = nn.Parameter(raw)
        else:
            self.register_buffer("raw", raw)

    def forward(self) -> Tensor:
        return F.softplus(self.raw)


class Prior(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.dynamics = cfg.dynamics
        self.latent_dim = cfg.latent_dim
        self.clock = cfg.clock  # kept equal to the model's cfg.clock (NLDModel.set_clock)
        self.energy: MLPEnergy | ResidualEnergy | None = None
        self.drift_net: nn.Sequential | None = None
        if cfg.has_energy:
            self.energy = (
                ResidualEnergy(cfg.latent_dim)
                if cfg.architecture == "dynvae"
                else MLPEnergy(
                    cfg.latent_dim, cfg.energy_hidden, cfg.energy_activation, cfg.confinement
                )
            )
            shape = (cfg.latent_dim,) if cfg.per_dim_friction else ()
            self.beta = PositiveScalar(cfg.beta, cfg.learn_beta)
            self.gamma = PositiveScalar(cfg.gamma, cfg.learn_gamma, shape)
            self.mass = PositiveScalar(cfg.mass, cfg.learn_mass, shape)
        else:
            self.drift_net = mlp([cfg.latent_dim, *cfg.drift_hidden, cfg.latent_dim])
            self.raw_sigma = nn.Parameter(torch.full((cfg.latent_dim,), _inv_softplus(0.5)))

    def drift_parameters(self) -> list[nn.Parameter]:
        """The parameters of the drift's shape (E, or the NSDE's MLP), not beta, gamma, m."""
        net = self.energy if self.energy is not None else self.drift_net
        assert net is not None
        return list(net.parameters())

    def position(self, y: Tensor) -> Tensor:
        """The decoded part of the state: q (the whole state unless underdamped)."""
        return y[..., : self.latent_dim]

    def diffusion(self) -> Tensor:
        """g on the noisy components, [latent_dim] (or a scalar for energy models)."""
        if self.energy is None:
            return F.softplus(self.raw_sigma)
        return self._noise_scale(self.gamma())

    def _noise_scale(self, gamma: Tensor) -> Tensor:
        if self.dynamics == "overdamped":
            return torch.sqrt(2 / (self.beta() * gamma))
        return torch.sqrt(2 * gamma / self.beta())

    def kinetics(self) -> tuple[Tensor, Tensor, Tensor]:
        """Friction, mass and noise scale g of an energy prior as it generates: the clock
        applied (gamma / c, m / c^2; module docstring)."""
        gamma, mass = self.gamma() / self.clock, self.mass() / self.clock**2
        return gamma, mass, self._noise_scale(gamma)

    def drift(self, y: Tensor) -> Tensor:
        """Prior drift h(y), same shape as y."""
        if self.dynamics != "underdamped":
            return self.noise_drift(y)
        return torch.cat([y[..., self.latent_dim :] / self.mass(), self.noise_drift(y)], dim=-1)

    def noise_drift(self, y: Tensor, *, shape_grad: bool = True) -> Tensor:
        """The noisy components of the prior drift (what a control may change), [..., d].

        `shape_grad=False` computes the drift's shape (E, or the NSDE's MLP) without a graph
        to its parameters, for losses that train them elsewhere; the graph to y, beta, gamma
        and m stays.
        """
        d = self.latent_dim
        if self.drift_net is not None:
            if shape_grad:
                return self.drift_net(y)
            return torch.func.functional_call(
                self.drift_net, {k: v.detach() for k, v in self.drift_net.named_parameters()}, (y,)
            )
        assert self.energy is not None
        force = -self.energy.grad(y[..., :d], param_grad=shape_grad)
        if self.dynamics == "overdamped":
            return force / self.gamma()
        return force - self.gamma() * y[..., d:] / self.mass()
