"""Neural energies E(q) with an analytic gradient.

    E(q) = w . s(W_L s(... s(W_1 q + b_1) ...) + b_L) + softplus(c) |q|^2

s is a smooth activation. The quadratic term makes exp(-beta E) normalisable (the MLP part
grows at most linearly). The gradient is computed in closed form by one backward sweep
through the layers, so training differentiates a plain forward graph instead of a
double-backward one: this is the hot loop of every SDE step.
"""

from __future__ import annotations

import itertools
import math
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _act(name: str, a: Tensor) -> tuple[Tensor, Tensor]:
    """Activation value and derivative at `a`."""
    if name == "tanh":
        h = torch.tanh(a)
        return h, 1 - h * h
    return F.softplus(a), torch.sigmoid(a)


class MLPEnergy(nn.Module):
    def __init__(
        self, dim: int, hidden: list[int], activation: str = "softplus", confinement: float = 0.05
    ) -> None:
        super().__init__()
        sizes = [dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.out = nn.Linear(sizes[-1], 1)
        self.activation = activation
        # softplus^-1(confinement)
        self.raw_confinement = nn.Parameter(torch.tensor(math.log(math.expm1(confinement))))

    @property
    def confinement(self) -> Tensor:
        return F.softplus(self.raw_confinement)

    def forward(self, q: Tensor) -> Tensor:
        """E(q): [..., d] -> [...]."""
        h = q
        for layer in self.layers:
            h = _act(self.activation, layer(h))[0]
        return self.out(h).squeeze(-1) + self.confinement * (q * q).sum(-1)

    def energy_and_grad(self, q: Tensor, *, param_grad: bool = True) -> tuple[Tensor, Tensor]:
        """E(q) and grad_q E(q), differentiable in q and (unless `param_grad` is False) in the
        parameters."""
        layers: list[tuple[Tensor, Tensor]] = [
            (lin.weight, lin.bias) for lin in cast(list[nn.Linear], list(self.layers))
        ]
        w_out, b_out, conf = self.out.weight[0], self.out.bias[0], self.confinement
        if not param_grad:
            layers = [(w.detach(), b.detach()) for w, b in layers]
            w_out, b_out, conf = w_out.detach(), b_out.detach(), conf.detach()
        h, derivs = q, []
        for w, b in layers:
            h, dh = _act(self.activation, h @ w.T + b)
            derivs.append(dh)
        energy = h @ w_out + b_out + conf * (q * q).sum(-1)
        delta = w_out * derivs[-1]
        for i in range(len(layers) - 1, 0, -1):
            delta = (delta @ layers[i][0]) * derivs[i - 1]
        grad = delta @ layers[0][0] + 2 * conf * q
        return energy, grad

    def grad(self, q: Tensor, *, param_grad: bool = True) -> Tensor:
        return self.energy_and_grad(q, param_grad=param_grad)[1]

    @torch.no_grad()
    def force_grad(self, q: Tensor) -> Tensor:
        """grad_q E(q) for simulation: no graph and no energy value, so the last layer's
        activation is never evaluated (only its derivative), and products are fused."""
        layers = cast(list[nn.Linear], list(self.layers))
        derivs, h = [], q
        for i, lin in enumerate(layers):
            a = torch.addmm(lin.bias, h, lin.weight.T)
            if self.activation == "tanh":
                h = torch.tanh(a)
                derivs.append(1 - h * h)
                continue
            if i == len(layers) - 1:
                derivs.append(torch.sigmoid(a))
                continue
            # softplus(a) = a - log(sigmoid(a)), from the sigmoid the gradient needs anyway:
            # one log in place of softplus's exp and log1p (on 1000 x 64 rows, 166 us a layer
            # against 280; error within float32 softplus's own). a >= -80 keeps sigmoid(a) > 0
            # (softplus(-80) = 2e-35).
            s = torch.sigmoid(a.clamp_min_(-80.0))
            derivs.append(s)
            h = a.sub_(torch.log(s))
        delta = derivs[-1].mul_(self.out.weight[0])
        for i in range(len(layers) - 1, 0, -1):
            delta = (delta @ layers[i].weight).mul_(derivs[i - 1])
        # The transposed product: a [d, n] output of n columns runs at BLAS speed, a [n, d] one
        # of d <= 3 columns at a third of it.
        conf = float(2 * self.confinement)
        return torch.addmm(q.T, layers[0].weight.T, delta.T, beta=conf).T


class ResidualEnergy(nn.Module):
    """The paper's energy network (for imported checkpoints):

        h = W2 celu(W1 q);  h += V2_k tanh(V1_k [h, q]) for k = 1..4;
        E(q) = U2 celu(U1 h) + softplus(c) |q|^2

    Its gradient comes from autograd (it is analysed, not trained, here).
    """

    def __init__(self, dim: int, width: int = 96, features: int = 16, blocks: int = 4) -> None:
        super().__init__()
        self.in_block = nn.Sequential(nn.Linear(dim, width), nn.CELU(), nn.Linear(width, features))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(features + dim, width), nn.Tanh(), nn.Linear(width, features))
            for _ in range(blocks)
        )
        self.out_block = nn.Sequential(nn.Linear(features, width), nn.CELU(), nn.Linear(width, 1))
        self._quadratic_term = nn.Parameter(torch.tensor(0.0))

    def forward(self, q: Tensor) -> Tensor:
        h = self.in_block(q)
        for block in self.blocks:
            h = h + block(torch.cat([h, q], dim=-1))
        return self.out_block(h).squeeze(-1) + F.softplus(self._quadratic_term) * (q * q).sum(-1)

    def energy_and_grad(self, q: Tensor, *, param_grad: bool = True) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            qq = q if q.requires_grad else q.detach().requires_grad_(True)
            e = self(qq)
            (g,) = torch.autograd.grad(e.sum(), qq, create_graph=param_grad or q.requires_grad)
        return e, g

    def grad(self, q: Tensor, *, param_grad: bool = True) -> Tensor:
        return self.energy_and_grad(q, param_grad=param_grad)[1]

    def force_grad(self, q: Tensor) -> Tensor:
        return self.energy_and_grad(q, param_grad=False)[1].detach()
