"""Energy callables for analysis: float64, no parameter gradients, batched value/grad/Hessian."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor

EnergyFn = Callable[[Tensor], Tensor]
"""E: [..., d] -> [...] as a torch function (float64 for analysis)."""


def model_energy(model: torch.nn.Module) -> EnergyFn:
    """A float64, frozen copy of a model's energy E(q), on the CPU wherever the model is: the
    landscape analysis (minima, saddles, basins, quadrature, MALA) works in float64 on small
    batches, where an accelerator gains nothing (and Apple's MPS has no float64)."""
    energy = getattr(getattr(model, "prior", None), "energy", None)
    if energy is None:
        raise ValueError(
            "this model has no energy (an NSDE baseline): landscape analysis needs NLD"
        )
    frozen = copy.deepcopy(energy).to("cpu", torch.float64).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


def value_and_grad(energy: EnergyFn, q: Tensor) -> tuple[Tensor, Tensor]:
    """E(q) and grad E(q) for a batch q [n, d] (uses a closed form where the energy has one)."""
    fast = getattr(energy, "energy_and_grad", None)
    if fast is not None:
        e, g = fast(q, param_grad=False)
        return e.detach(), g.detach()
    with torch.enable_grad():
        q = q.detach().requires_grad_(True)
        e = energy(q)
        (g,) = torch.autograd.grad(e.sum(), q)
    return e.detach(), g


def hessian(energy: EnergyFn, q: Tensor) -> Tensor:
    """Hessian of E at each point of q [n, d] -> [n, d, d]."""
    with torch.enable_grad():
        return torch.stack(
            [torch.autograd.functional.hessian(lambda z: energy(z[None])[0], p) for p in q]
        )
