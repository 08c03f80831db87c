"""Minima of an energy and the gradient flow into them (basins of attraction)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from nld.analysis.energy import EnergyFn, hessian, value_and_grad


@dataclass(frozen=True)
class Minimum:
    position: np.ndarray  # [d]
    energy: float
    hessian_eigenvalues: np.ndarray  # [d], ascending
    hessian: np.ndarray  # [d, d]


def descend(
    energy: EnergyFn,
    points: Tensor,
    *,
    steps: int = 3000,
    gtol: float = 1e-6,
    max_move: float = 0.1,
    stop: Tensor | None = None,
    stop_radius: float = 0.0,
) -> Tensor:
    """Follow the gradient flow of E from each point (batched descent with per-point steps).

    Each point keeps its own step size: grown after a step that lowers E, halved (and the step
    refused) otherwise, and a step never moves a point by more than `max_move`, so points do
    not jump over a ridge. A point stops when |grad E| < gtol or, with `stop` [m, d], once
    it is within `stop_radius` of one of those points.
    """
    z = points.detach().to(torch.float64).clone()
    n = z.shape[0]
    lr = torch.full((n,), 1e-2, dtype=z.dtype)
    active = torch.arange(n)
    e, g = value_and_grad(energy, z)
    for _ in range(steps):
        if active.numel() == 0:
            break
        za, ea, ga, la = z[active], e[active], g[active], lr[active]
        gnorm = ga.norm(dim=-1)
        done = gnorm < gtol
        if stop is not None:
            done |= torch.cdist(za, stop).min(dim=1).values < stop_radius
        keep = ~done
        active, za, ea, ga, la, gnorm = (
            active[keep],
            za[keep],
            ea[keep],
            ga[keep],
            la[keep],
            gnorm[keep],
        )
        if active.numel() == 0:
            break
        scale = torch.clamp(max_move / (la * gnorm), max=1.0)
        trial = za - (la * scale)[:, None] * ga
        et, gt = value_and_grad(energy, trial)
        ok = et <= ea
        z[active] = torch.where(ok[:, None], trial, za)
        e[active] = torch.where(ok, et, ea)
        g[active] = torch.where(ok[:, None], gt, ga)
        lr[active] = torch.where(ok, la * 1.5, la * 0.5)
    return z


def _polish(energy: EnergyFn, x0: np.ndarray) -> np.ndarray:
    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        e, g = value_and_grad(energy, torch.from_numpy(x)[None])
        return float(e[0]), g[0].numpy()

    res = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-15})
    return np.asarray(res.x)


def find_minima(
    energy: EnergyFn,
    starts: Tensor,
    *,
    n_random: int = 64,
    seed: int = 0,
    merge_tol: float = 1e-3,
) -> list[Minimum]:
    """Local minima of E reached from `starts` [n, d] plus random starts around them.

    Candidates from a batched gradient descent are clustered, polished with L-BFGS, merged
    when closer than `merge_tol` (relative to the spread of the starts) and kept only when
    the Hessian is positive definite. Sorted by energy, lowest first.
    """
    starts = starts.detach().to(torch.float64).reshape(-1, starts.shape[-1])
    gen = torch.Generator().manual_seed(seed)
    lo, hi = starts.min(0).values, starts.max(0).values
    span = (hi - lo).clamp(min=1.0)
    rand = (
        lo
        - 0.25 * span
        + 1.5 * span * torch.rand(n_random, starts.shape[1], generator=gen, dtype=torch.float64)
    )
    ends = descend(energy, torch.cat([starts, rand]), gtol=1e-5)
    tol = merge_tol * float(span.max())
    reps: list[np.ndarray] = []
    for p in ends.numpy():
        if all(np.linalg.norm(p - r) > 10 * tol for r in reps):
            reps.append(p)
    found: list[np.ndarray] = []
    for r in reps:
        x = _polish(energy, r)
        if all(np.linalg.norm(x - f) > tol for f in found):
            found.append(x)
    if not found:
        return []
    pos = torch.from_numpy(np.stack(found))
    hess = hessian(energy, pos).numpy()
    e, _ = value_and_grad(energy, pos)
    out = []
    for x, h, ei in zip(found, hess, e.numpy(), strict=True):
        eig = np.linalg.eigvalsh(0.5 * (h + h.T))
        if eig.min() > 0:
            out.append(Minimum(x, float(ei), eig, h))
    return sorted(out, key=lambda m: m.energy)


def assign_basins(
    energy: EnergyFn, points: Tensor, minima: list[Minimum], chunk: int = 65536
) -> np.ndarray:
    """Index of the minimum whose basin (under gradient flow) holds each point: [n] int64."""
    if not minima:
        raise ValueError("no minima to assign basins to")
    m = torch.from_numpy(np.stack([mi.position for mi in minima]))
    flat = points.detach().to(torch.float64).reshape(-1, m.shape[1])
    if len(minima) == 1:
        return np.zeros(points.shape[:-1], dtype=np.int64)
    # A flow that has come this close to a minimum ends in it.
    radius = 0.1 * float(torch.pdist(m).min())
    out = []
    for part in flat.split(chunk):
        ends = descend(energy, part, stop=m, stop_radius=radius)
        out.append(torch.cdist(ends, m).argmin(dim=1).numpy())
    return np.concatenate(out).reshape(points.shape[:-1])
