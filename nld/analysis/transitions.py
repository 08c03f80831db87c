"""Transitions between minima: minimum energy paths, saddle points and Eyring-Kramers rates.

Minimum energy paths come from the simplified string method (E, Ren and Vanden-Eijnden,
J. Chem. Phys. 126, 164103, 2007): images on a path are moved down the gradient and then
redistributed at equal arc length. The highest image is refined to the saddle point by a
climbing-image iteration and Newton steps, and kept only when its Hessian has exactly one
negative eigenvalue.

Rates (transition state theory in the harmonic, high-barrier limit):

    k_{m -> n} = mu_s / (2 pi) * sqrt(det H_m / |det H_s|) * exp(-beta (E_s - E_m))

mu_s is the growth rate of the unstable direction of the prior dynamics linearised at the
saddle: |lambda_s| / gamma for overdamped dynamics (the Eyring-Kramers formula), and the
positive root of m mu^2 + gamma mu + lambda_s = 0 for underdamped dynamics (Kramers /
Langer), lambda_s < 0 the Hessian's negative eigenvalue at the saddle (with per-dimension
gamma and m, the unstable eigenvalue of the linearised drift; see `unstable_rate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nld.analysis.energy import EnergyFn, hessian, value_and_grad
from nld.analysis.grid import energy_on
from nld.analysis.minima import Minimum, assign_basins


@dataclass(frozen=True)
class Saddle:
    """An index-1 saddle between minima `pair` (indices into the minima list)."""

    pair: tuple[int, int]
    position: np.ndarray  # [d]
    energy: float
    hessian_eigenvalues: np.ndarray  # [d], ascending; exactly one is negative
    hessian: np.ndarray  # [d, d]
    path: np.ndarray  # [n_images, d], the minimum energy path from pair[0] to pair[1]
    path_energy: np.ndarray  # [n_images]

    def barrier(self, minima: list[Minimum]) -> tuple[float, float]:
        """E_s - E_m seen from each end of the path."""
        return (
            self.energy - minima[self.pair[0]].energy,
            self.energy - minima[self.pair[1]].energy,
        )


def _reparametrise(path: Tensor) -> Tensor:
    """Images of each path [s, n, d] moved to equal arc length (ends fixed)."""
    seg = (path[:, 1:] - path[:, :-1]).norm(dim=-1)
    arc = torch.cat([torch.zeros_like(seg[:, :1]), seg.cumsum(1)], dim=1)
    total = arc[:, -1:].clamp(min=1e-12)
    s = arc / total
    target = torch.linspace(0, 1, path.shape[1], dtype=path.dtype).expand_as(s).contiguous()
    idx = torch.searchsorted(s, target, right=True).clamp(1, path.shape[1] - 1)
    s0, s1 = s.gather(1, idx - 1), s.gather(1, idx)
    w = ((target - s0) / (s1 - s0).clamp(min=1e-12)).clamp(0, 1)[..., None]
    i0 = (idx - 1)[..., None].expand(-1, -1, path.shape[2])
    i1 = idx[..., None].expand(-1, -1, path.shape[2])
    return (1 - w) * path.gather(1, i0) + w * path.gather(1, i1)


def string_method(
    energy: EnergyFn,
    ends: Tensor,
    *,
    n_images: int = 33,
    steps: int = 3000,
    tol: float = 1e-7,
) -> Tensor:
    """Minimum energy paths between each pair of end points `ends` [s, 2, d] -> [s, n, d].

    Starts from straight lines. The step size is set from the largest curvature met along
    the initial paths, so the descent is stable for any scale of E.
    """
    a, b = ends[:, 0].double(), ends[:, 1].double()
    t = torch.linspace(0, 1, n_images, dtype=torch.float64)[None, :, None]
    path = a[:, None] + t * (b - a)[:, None]
    s, n, d = path.shape
    curv = hessian(energy, path.reshape(-1, d)).abs().sum(-1).amax()
    dt = 0.5 / float(curv.clamp(min=1e-8))
    for _ in range(steps):
        _, g = value_and_grad(energy, path.reshape(-1, d))
        g = g.reshape(s, n, d)
        g[:, 0] = 0
        g[:, -1] = 0
        new = _reparametrise(path - dt * g)
        moved = float((new - path).abs().max())
        path = new
        if moved < tol:
            break
    return path


def refine_saddle(
    energy: EnergyFn, x0: np.ndarray, tangent: np.ndarray, *, steps: int = 2000
) -> np.ndarray:
    """The saddle point near x0 (the highest image of a string, `tangent` the path direction).

    Climbing-image iteration (descend along all directions but the unstable one, climb along
    it, following the Hessian's lowest eigenvector) until the gradient is small, then Newton.
    """
    x = torch.tensor(x0, dtype=torch.float64)[None]
    v = torch.tensor(tangent / np.linalg.norm(tangent), dtype=torch.float64)
    h = hessian(energy, x)[0]
    dt = 0.5 / float(torch.linalg.eigvalsh(h).abs().max().clamp(min=1e-8))
    for i in range(steps):
        _, g = value_and_grad(energy, x)
        if i % 10 == 0:
            h = hessian(energy, x)[0]
            lam, vec = torch.linalg.eigh(h)
            if lam[0] < 0:
                v = vec[:, 0] * torch.sign(vec[:, 0] @ v)
        step = g[0] - 2 * (g[0] @ v) * v
        x = x - dt * step
        if float(g.norm()) < 1e-6:
            break
    for _ in range(20):
        _, g = value_and_grad(energy, x)
        h = hessian(energy, x)[0]
        dx = torch.linalg.lstsq(h, g[0]).solution
        x = x - dx
        if float(dx.norm()) < 1e-12:
            break
    return x[0].numpy()


def find_saddles(
    energy: EnergyFn,
    minima: list[Minimum],
    *,
    n_images: int = 33,
    steps: int = 3000,
) -> list[Saddle]:
    """Saddles between neighbouring minima: those whose minimum energy path stays in the
    two basins it joins (a path through a third basin is two transitions, found separately)."""
    k = len(minima)
    if k < 2:
        return []
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    pos = torch.from_numpy(np.stack([m.position for m in minima]))
    ends = torch.stack([torch.stack([pos[i], pos[j]]) for i, j in pairs])
    paths = string_method(energy, ends, n_images=n_images, steps=steps)
    labels = assign_basins(energy, paths, minima)
    out = []
    for (i, j), path, lab in zip(pairs, paths, labels, strict=True):
        if not set(lab.tolist()) <= {i, j}:
            continue
        e, _ = value_and_grad(energy, path)
        top = int(e[1:-1].argmax()) + 1
        x = refine_saddle(energy, path[top].numpy(), (path[top + 1] - path[top - 1]).numpy())
        xs = torch.from_numpy(x)[None]
        hess = hessian(energy, xs)[0].numpy()
        eig = np.linalg.eigvalsh(0.5 * (hess + hess.T))
        if not (eig[0] < 0 < eig[1] if len(eig) > 1 else eig[0] < 0):
            continue
        es, _ = value_and_grad(energy, xs)
        # Newton may converge to another critical point: keep the saddle only near its path.
        if not min(np.linalg.norm(x - path.numpy(), axis=1)) < 0.25 * float(
            (pos[i] - pos[j]).norm()
        ):
            continue
        out.append(Saddle((i, j), x, float(es[0]), eig, hess, path.numpy(), e.numpy()))
    return out


def barrier_top_ratio(energy: EnergyFn, saddle: Saddle, beta: float, n: int = 2000) -> float:
    """What the rate formula assumes of the barrier top, checked: the integral of
    exp(beta (E - E_s)) along the saddle's minimum energy path (the polyline through its
    images, `n` points) over its Laplace value sqrt(2 pi / (beta |lambda_s|)).

    Near 1 where the path's energy profile is quadratic over the top's thermal width (1.03-1.12
    on polynomial wells). A sharp top (a ridge where two wells meet, as between Gaussian
    wells: 1.4-1.5) makes it larger, and the mean first passage time of the path's 1-D
    reduction grows with it, so the formula's rates are then too fast by about this factor
    (bench/kramers_regime.py)."""
    path = saddle.path
    seg = np.linalg.norm(np.diff(path, axis=0), axis=-1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, arc[-1], n)
    i = np.clip(np.searchsorted(arc, t) - 1, 0, len(seg) - 1)
    w = ((t - arc[i]) / np.maximum(seg[i], 1e-12))[:, None]
    e = energy_on(energy, path[i] * (1 - w) + path[i + 1] * w)
    top = np.trapezoid(np.exp(beta * (e - saddle.energy)), t)
    return float(top / math.sqrt(2 * math.pi / (beta * abs(saddle.hessian_eigenvalues[0]))))


def core_labels(
    energy: EnergyFn,
    minima: list[Minimum],
    saddles: list[Saddle],
    beta: float,
    points: np.ndarray,
    basins: np.ndarray,
) -> np.ndarray:
    """For milestoning (`milestone_dwell`): the basin index of each point [..., d] (`basins`,
    same leading shape) that lies in its well's core, else -1. The core of a well is the part
    of its basin less than min(1/beta, half its lowest barrier) above its minimum."""
    depth = np.full(len(minima), 1.0 / beta)
    for s in saddles:
        for i, barrier in zip(s.pair, s.barrier(minima), strict=True):
            depth[i] = min(depth[i], 0.5 * barrier)
    height = energy_on(energy, points) - np.array([m.energy for m in minima])[basins]
    return np.where(height < depth[basins], basins, -1)


def unstable_rate(
    hessian: np.ndarray, *, gamma: float | np.ndarray, mass: float | np.ndarray | None = None
) -> float:
    """Growth rate mu of the unstable mode of the prior dynamics linearised at a saddle with
    Hessian H [d, d]; gamma and m are scalars or one value per dimension.

    Overdamped (mass None): the positive eigenvalue of -Gamma^-1 H, i.e. |lambda_s| / gamma.
    Underdamped: the positive eigenvalue of [[0, M^-1], [-H, -Gamma M^-1]], which for scalars
    is the root of m mu^2 + gamma mu + lambda_s = 0.
    """
    h = np.atleast_2d(np.asarray(hessian, dtype=np.float64))
    d = h.shape[0]
    g = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (d,))
    if mass is None:
        a = -h / g[:, None]
    else:
        m = np.broadcast_to(np.asarray(mass, dtype=np.float64), (d,))
        a = np.block([[np.zeros((d, d)), np.diag(1 / m)], [-h, -np.diag(g / m)]])
    mu = np.linalg.eigvals(a).real.max()
    if mu <= 0:
        raise ValueError("not a saddle: the linearised dynamics has no unstable direction")
    return float(mu)


def rate_matrix(
    minima: list[Minimum],
    saddles: list[Saddle],
    beta: float,
    *,
    gamma: float | np.ndarray,
    mass: float | np.ndarray | None = None,
) -> np.ndarray:
    """Generator K [k, k] of the jump process between wells (model time units):
    K[m, n] = rate m -> n summed over the saddles joining them, rows sum to zero."""
    k = len(minima)
    rates = np.zeros((k, k))
    for s in saddles:
        mu = unstable_rate(s.hessian, gamma=gamma, mass=mass)
        log_det_s = float(np.sum(np.log(np.abs(s.hessian_eigenvalues))))
        for m, n in (s.pair, s.pair[::-1]):
            log_det_m = float(np.sum(np.log(minima[m].hessian_eigenvalues)))
            rates[m, n] += (
                mu
                / (2 * math.pi)
                * math.exp(0.5 * (log_det_m - log_det_s) - beta * (s.energy - minima[m].energy))
            )
    rates[np.diag_indices(k)] = 0.0 - rates.sum(1)  # 0.0 - 0.0 is 0.0, where -(0.0) is -0.0
    return rates


def dwell_times(rates: np.ndarray, dt: float = 1.0) -> np.ndarray:
    """Mean time spent in each well before leaving it, in units of `dt` (a well without an
    exit has an infinite dwell time)."""
    out_rate = -np.diag(rates)
    with np.errstate(divide="ignore"):
        return np.where(out_rate > 0, 1.0 / (out_rate * dt), np.inf)


def last_core(cores: np.ndarray) -> np.ndarray:
    """Milestoning: the index of the last core each trajectory visited, [n, T] from `cores`
    [n, T] (a core's index, or -1 between cores); -1 before a trajectory's first core."""
    cores = np.atleast_2d(np.asarray(cores))
    idx = np.where(cores >= 0, np.arange(cores.shape[1])[None, :], -1)
    last = np.maximum.accumulate(idx, axis=1)
    return np.where(last >= 0, np.take_along_axis(cores, np.maximum(last, 0), axis=1), -1)


def milestone_transitions(cores: np.ndarray, n_states: int) -> np.ndarray:
    """Counts [k, k] of the exits from state i to state j of trajectories labelled by core
    (`cores` as in `milestone_dwell`): where a trajectory's last visited core changes."""
    state = last_core(cores)
    before, after = state[:, :-1], state[:, 1:]
    leave = (before >= 0) & (after != before)
    counts = np.zeros((n_states, n_states), dtype=np.int64)
    np.add.at(counts, (before[leave], after[leave]), 1)
    return counts


def milestone_dwell(cores: np.ndarray, n_states: int) -> np.ndarray:
    """Mean dwell time of each state, in steps, from trajectories labelled by core.

    `cores` [n, T] holds the index of the core (a region deep inside a well) each point is
    in, or -1 between cores. A trajectory belongs to the last core it visited (milestoning),
    so quick recrossings of a saddle do not count as transitions; a state's mean dwell is
    the time it holds the trajectories divided by the number of times they leave it
    (infinite without an exit). Steps before a trajectory's first core are not counted.
    """
    state = last_core(cores)
    held = np.bincount(state[state >= 0], minlength=n_states)[:n_states].astype(float)
    exits = milestone_transitions(cores, n_states).sum(1).astype(float)
    with np.errstate(divide="ignore"):
        return np.where(exits > 0, held / np.maximum(exits, 1), np.inf)
