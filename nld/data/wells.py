"""Data from a known Langevin process: trajectories with metastable states, like molecular
dynamics, where the hidden states are wells of a potential rather than a Markov chain's.

A particle moves by overdamped Langevin dynamics, dz = -grad E(z) dt + sqrt(2 / beta) dW, in

    E(z) = -(1 / beta) log sum_k w_k N(z; mu_k, s^2 I)          (Gaussian wells)

so that its stationary density exp(-beta E) / Z is exactly the mixture: sequences start from it
(no burn-in) and stay in it. Records every `interval` time units, integrated with `substeps`
Euler steps each, are seen through x = A z + b + noise. The hidden state of a record is the
well whose core (within one width s of its minimum) it visited last: quick recrossings of a
saddle are not transitions (milestoning, the usual definition of states in molecular
dynamics); records before a sequence's first core take the basin they are in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from nld.analysis.minima import Minimum, assign_basins, find_minima
from nld.analysis.transitions import last_core
from nld.data.dataset import Dataset
from nld.errors import ConfigError


@dataclass(frozen=True)
class WellsSpec:
    centers: np.ndarray  # mu_k [K, d]
    weights: np.ndarray  # w_k [K], summing to 1
    width: float  # s
    mixing: np.ndarray  # A [D, d]
    offset: np.ndarray  # b [D]
    noise_std: float
    interval: float = 1.0
    substeps: int = 100
    beta: float = 1.0
    minima: list[Minimum] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        k, d = self.centers.shape
        if self.weights.shape != (k,) or self.mixing.shape[1] != d:
            raise ConfigError("WellsSpec: centers [K, d], weights [K] and mixing [D, d] disagree")
        found = find_minima(self.energy, torch.from_numpy(self.centers), n_random=0)
        object.__setattr__(self, "minima", found)

    @property
    def dim(self) -> int:
        return int(self.mixing.shape[0])

    def energy(self, z: Tensor) -> Tensor:
        """E(z) for z [..., d] (float64)."""
        mu = torch.from_numpy(self.centers).to(z.dtype)
        sq = ((z[..., None, :] - mu) ** 2).sum(-1) / (2 * self.width**2)
        log_w = torch.from_numpy(np.log(self.weights)).to(z.dtype)
        return -torch.logsumexp(log_w - sq, dim=-1) / self.beta

    def _force(self, z: np.ndarray) -> np.ndarray:
        """-grad E(z) for z [n, d]."""
        diff = z[:, None, :] - self.centers  # [n, K, d]
        logits = np.log(self.weights) - (diff**2).sum(-1) / (2 * self.width**2)
        resp = np.exp(logits - logits.max(1, keepdims=True))
        resp /= resp.sum(1, keepdims=True)
        return -(resp[..., None] * diff).sum(1) / (self.beta * self.width**2)

    def stationary(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n draws from exp(-beta E) / Z, the mixture: [n, d]."""
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        return self.centers[k] + self.width * rng.standard_normal((n, self.centers.shape[1]))

    def basins(self, z: np.ndarray) -> np.ndarray:
        """Index (into `minima`) of the basin of each point z [..., d] under gradient flow."""
        return assign_basins(self.energy, torch.from_numpy(z), self.minima)

    def occupancy(self, n: int = 400_000, seed: int = 0) -> np.ndarray:
        """The mass of exp(-beta E) in each basin (Monte Carlo from the exact density)."""
        labels = self.basins(self.stationary(np.random.default_rng(seed), n))
        return np.bincount(labels.ravel(), minlength=len(self.minima)) / labels.size


def milestones(basins: np.ndarray, in_core: np.ndarray) -> np.ndarray:
    """States [N, T] from basin indices [N, T] and whether each point is in its basin's core:
    the basin of the last core visited (the basin itself before the first one)."""
    state = last_core(np.where(in_core, basins, -1))
    return np.where(state >= 0, state, basins)


def sample_wells(spec: WellsSpec, n_sequences: int, length: int, seed: int) -> Dataset:
    """`n_sequences` trajectories of `length` records, with their hidden states."""
    rng = np.random.default_rng(seed)
    z = spec.stationary(rng, n_sequences)
    dt = spec.interval / spec.substeps
    noise = np.sqrt(2 * dt / spec.beta)
    path = np.empty((n_sequences, length, z.shape[1]))
    path[:, 0] = z
    for t in range(1, length):
        for _ in range(spec.substeps):
            z = z + spec._force(z) * dt + noise * rng.standard_normal(z.shape)
        path[:, t] = z
    basins = spec.basins(path)
    centres = np.stack([m.position for m in spec.minima])
    in_core = np.linalg.norm(path - centres[basins], axis=-1) < spec.width
    x = path @ spec.mixing.T + spec.offset
    x = x + spec.noise_std * rng.standard_normal(x.shape)
    return Dataset(x.astype(np.float32), milestones(basins, in_core))


def random_wells(
    n_wells: int,
    dim: int,
    seed: int,
    *,
    latent_dim: int = 2,
    separation: float = 4.5,
    noise_std: float = 0.5,
) -> WellsSpec:
    """Wells of width 1 whose centres lie at least `separation` apart (a barrier of about
    separation^2 / 8 between two neighbours: 2.5 / beta at 4.5, a dwell of some 20-40 records
    at interval 1), packed into a box so that each has neighbours; weights in [0.5, 1.5]
    before normalising; a random mixing A [dim, latent_dim] with columns of norm about 1
    per dimension."""
    if n_wells < 2:
        raise ConfigError("random_wells needs at least 2 wells")
    rng = np.random.default_rng(seed)
    side = separation * max(1.0, n_wells ** (1 / latent_dim))
    centers: list[np.ndarray] = []
    for _ in range(100_000):
        c = rng.uniform(0, side, latent_dim)
        if all(np.linalg.norm(c - o) >= separation for o in centers):
            centers.append(c)
            if len(centers) == n_wells:
                break
    else:
        raise ConfigError(f"random_wells: could not place {n_wells} wells {separation} apart")
    w = rng.uniform(0.5, 1.5, n_wells)
    c = np.stack(centers)
    return WellsSpec(
        centers=c - c.mean(0),
        weights=w / w.sum(),
        width=1.0,
        mixing=rng.standard_normal((dim, latent_dim)),
        offset=rng.standard_normal(dim),
        noise_std=noise_std,
    )
