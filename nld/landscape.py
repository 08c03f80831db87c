"""The full landscape analysis of a trained model: minima, occupancies, saddles, rates, and
dwell times from the Kramers rates and from simulating the prior.

One function, `analyze`, that every consumer (the `nld analyze` command, reports, the
service) calls once per model and then reads from. The latent points it is given (encoded
data) seed the minima search and bound the quadrature box; without them, MALA samples of
the model's own stationary density do both.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nld.analysis import (
    EnergyFn,
    Minimum,
    find_minima,
    model_energy,
    quadrature,
    second_order,
    zeroth_order,
)
from nld.analysis.basins import BasinIndex
from nld.analysis.sampling import mala, sampled_occupancy
from nld.analysis.transitions import (
    Saddle,
    barrier_top_ratio,
    core_labels,
    dwell_times,
    find_saddles,
    milestone_dwell,
    milestone_transitions,
    rate_matrix,
)
from nld.errors import NLDError
from nld.model import NLDModel
from nld.simulate import euler_split, simulate_prior

# Below this barrier (in units of 1/beta) the harmonic estimates (c) and the rates are
# outside their regime of validity, and the analysis says so.
LOW_BARRIER = 2.0
# Kramers' barrier-top factor checked (`barrier_top_ratio`): polynomial wells 1.03-1.12, the
# learned exp2 landscape 1.17-1.18, Gaussian wells 1.4-1.5 (bench/kramers_regime.py).
SHARP_TOP = 1.25
# MALA's sample of exp(-beta E) that `wells` (and so `analyze`) starts from: chains, steps of
# each, and the steps dropped at the start of each.
CHAINS, STEPS, BURN_IN = 256, 4000, 1000
SINGLE_WELL = (
    "the energy has a single minimum: the model separates no hidden states (states that "
    "overlap strongly and switch every few steps can end so; see "
    "docs/concepts/training.md#the-single-well-rescue)"
)


def finite_or_none(a: np.ndarray) -> list[float | None]:
    """Values as a JSON list, with None where a value is not finite (an infinite dwell)."""
    return [float(v) if np.isfinite(v) else None for v in np.ravel(a)]


@dataclass
class Analysis:
    dynamics: str
    beta: float
    clock: float  # ModelConfig.clock, applied to gamma and mass
    gamma: np.ndarray  # [d] (equal entries unless per-dimension), the clock applied
    mass: np.ndarray | None
    dt: float  # model time between two observations
    minima: list[Minimum]
    occupancy: dict[str, list[float] | None]
    occupancy_error: dict[str, list[float] | None]
    saddles: list[Saddle]
    barrier_tops: list[float]  # per saddle: `barrier_top_ratio`, 1 where the formula holds
    rates: np.ndarray  # [k, k] per model time unit
    dwell_steps: np.ndarray  # [k], in observation steps (Kramers)
    dwell_simulated: np.ndarray  # [k], in observation steps (the prior simulated)
    transitions_simulated: np.ndarray  # [k, k] exits i -> j of the same simulation
    warnings: list[str]
    index: BasinIndex | None = field(repr=False)
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (positions are q only for underdamped models)."""

        return {
            "dynamics": self.dynamics,
            "beta": self.beta,
            "clock": self.clock,
            "gamma": self.gamma.tolist(),
            "mass": None if self.mass is None else self.mass.tolist(),
            "dt": self.dt,
            "minima": [
                {
                    "position": m.position.tolist(),
                    "energy": m.energy,
                    "hessian_eigenvalues": m.hessian_eigenvalues.tolist(),
                }
                for m in self.minima
            ],
            "occupancy": self.occupancy,
            "occupancy_error": self.occupancy_error,
            "saddles": [
                {
                    "between": list(s.pair),
                    "position": s.position.tolist(),
                    "energy": s.energy,
                    "hessian_eigenvalues": s.hessian_eigenvalues.tolist(),
                    "barriers": list(s.barrier(self.minima)),
                    "barrier_top_ratio": top,
                    "path": s.path.tolist(),
                    "path_energy": s.path_energy.tolist(),
                }
                for s, top in zip(self.saddles, self.barrier_tops, strict=True)
            ],
            "rates": [finite_or_none(row) for row in self.rates],
            "dwell_times": finite_or_none(self.dwell_steps),
            "dwell_times_simulated": finite_or_none(self.dwell_simulated),
            "transitions_simulated": self.transitions_simulated.tolist(),
            "warnings": self.warnings,
            "seconds": self.seconds,
        }


def quadrature_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points' bounding box widened by its size on each side."""
    lo, hi = points.min(0), points.max(0)
    span = np.maximum(hi - lo, 1e-3)
    return lo - span, hi + span


def simulated_cores(
    model: NLDModel,
    energy: EnergyFn,
    minima: list[Minimum],
    saddles: list[Saddle],
    index: BasinIndex,
    starts: np.ndarray,
    beta: float,
    *,
    n_paths: int = 256,
    n_steps: int = 4000,
    seed: int = 0,
) -> np.ndarray:
    """The prior itself, labelled by core [n_paths, T] for milestoning (`milestone_dwell`):
    `n_paths` trajectories of `n_steps` observation intervals (the model's own Euler-Maruyama
    steps) started at `starts` (stationary samples); `energy` is the analysis' float64 copy
    of the model's E (`model_energy`), which decides the cores.
    With a clock (`ModelConfig.clock`) the paths are `euler_split` times shorter: the same
    number of Euler steps, and about as many crossings, as without one.

    The core of a well is the part of its basin less than min(1/beta, half its lowest
    barrier) above its minimum. Unlike the Kramers rates, dwell times and transitions counted
    on these hold at any barrier height, and they are what the model does between
    observations, not its continuous-time limit.
    """
    rng = np.random.default_rng(seed)
    start = starts[rng.integers(len(starts), size=n_paths)]
    sub = model.cfg.substeps
    rows = math.ceil(n_steps / euler_split(model)) * sub
    path = simulate_prior(model, n_paths, rows, model.cfg.dt / sub, seed=seed, start=start)[
        :, ::sub
    ]
    return core_labels(energy, minima, saddles, beta, path, index.assign(path, exact=False))


@dataclass
class Wells:
    """The energy's minima and their basins, found from Boltzmann samples of it (MALA) and the
    data's encoded points: what the rest of the analysis starts from, and all the depths stage
    needs of it."""

    energy: EnergyFn
    beta: float
    chains: np.ndarray  # MALA's samples [n_chains, steps, d]
    near: Tensor  # the data's points, if any, and the samples [n, d]: where basins are indexed
    minima: list[Minimum]
    index: BasinIndex
    seconds: dict[str, float]


def wells(
    model: NLDModel,
    latents: Tensor | None = None,
    *,
    seed: int = 0,
    n_chains: int = CHAINS,
    n_steps: int = STEPS,
    burn_in: int = BURN_IN,
) -> Wells:
    """The minima and basins of `model`'s energy; `latents` [..., d] are encoded data points,
    if any. Raises NLDError where there is no energy, or no minimum."""
    if not model.cfg.has_energy:
        raise NLDError("this model has no energy (an NSDE baseline): nothing to analyse")
    energy = model_energy(model)
    beta = float(model.prior.beta().detach())
    d = model.cfg.latent_dim
    seconds: dict[str, float] = {}
    gen = torch.Generator().manual_seed(seed)

    t0 = time.perf_counter()
    if latents is not None and latents.numel():
        flat = latents.detach().reshape(-1, d).double()
        starts = flat[torch.randperm(len(flat), generator=gen)[:n_chains]]
    else:
        flat = None
        starts = 2 * torch.randn(n_chains, d, generator=gen, dtype=torch.float64)
    samples = mala(energy, beta, starts, n_steps=n_steps, burn_in=burn_in, seed=seed)
    cloud = torch.from_numpy(samples.chains.reshape(-1, d))
    seconds["sampling"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    seeds = cloud[torch.randperm(len(cloud), generator=gen)[:512]]
    if flat is not None:
        seeds = torch.cat([flat[torch.randperm(len(flat), generator=gen)[:512]], seeds])
    minima = find_minima(energy, seeds, seed=seed)
    seconds["minima"] = time.perf_counter() - t0
    if not minima:
        raise NLDError("the energy has no local minimum in the region searched")

    t0 = time.perf_counter()
    near = cloud if flat is None else torch.cat([flat, cloud])
    index = BasinIndex.around(energy, minima, near.numpy(), seed=seed)
    seconds["basins"] = time.perf_counter() - t0
    return Wells(energy, beta, samples.chains, near, minima, index, seconds)


def analyze(
    model: NLDModel,
    latents: Tensor | None = None,
    *,
    seed: int = 0,
    n_chains: int = CHAINS,
    n_steps: int = STEPS,
    burn_in: int = BURN_IN,
    quadrature_max_dim: int = 3,
) -> Analysis:
    """Analyse the energy of `model`; `latents` [..., d] are encoded data points, if any."""
    found = wells(model, latents, seed=seed, n_chains=n_chains, n_steps=n_steps, burn_in=burn_in)
    energy, beta, minima, index = found.energy, found.beta, found.minima, found.index
    seconds, d = found.seconds, model.cfg.latent_dim
    clocked_gamma, clocked_mass, _ = (
        v.detach().cpu().double().numpy() for v in model.prior.kinetics()
    )
    gamma = np.broadcast_to(clocked_gamma, (d,)).copy()
    mass = (
        np.broadcast_to(clocked_mass, (d,)).copy() if model.cfg.dynamics == "underdamped" else None
    )
    warnings: list[str] = []

    t0 = time.perf_counter()
    occ_a, err_a = sampled_occupancy(index.assign(found.chains), len(minima))
    seconds["basins"] += time.perf_counter() - t0

    occ_d = None
    if d <= quadrature_max_dim:
        t0 = time.perf_counter()
        lo, hi = quadrature_box(found.near.numpy())
        occ_d = quadrature(energy, minima, beta, lo, hi, assign=index.assign).tolist()
        seconds["quadrature"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    saddles = find_saddles(energy, minima)
    rates = rate_matrix(minima, saddles, beta, gamma=gamma, mass=mass)
    tops = [barrier_top_ratio(energy, s, beta) for s in saddles]
    seconds["transitions"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cloud = found.chains.reshape(-1, d)
    cores = simulated_cores(model, energy, minima, saddles, index, cloud, beta, seed=seed)
    seconds["kinetics"] = time.perf_counter() - t0

    low = [s for s in saddles if beta * min(s.barrier(minima)) < LOW_BARRIER]
    if low:
        warnings.append(
            f"{len(low)} barrier(s) below {LOW_BARRIER}/beta: the second-order occupancy (c) "
            "and the Kramers rates are outside their high-barrier regime; prefer (a) or (d), "
            "and the simulated dwell times"
        )
    sharp = [f"{t:.2f}" for t in sorted(tops) if not 1 / SHARP_TOP < t < SHARP_TOP]
    if sharp:
        span = sharp[0] if sharp[0] == sharp[-1] else f"{sharp[0]}-{sharp[-1]}"
        warnings.append(
            f"{len(sharp)} barrier top(s) not quadratic over their thermal width (the path "
            f"integral of exp(beta E) {span} times its Laplace value): the Kramers rates are "
            "off by about that factor; prefer the simulated dwell times"
        )
    if len(minima) == 1:
        warnings.append(SINGLE_WELL)
    if len(minima) > 1 and len({i for s in saddles for i in s.pair}) < len(minima):
        warnings.append("some minima have no saddle to another: their dwell times are infinite")
    return Analysis(
        dynamics=model.cfg.dynamics,
        beta=beta,
        clock=model.cfg.clock,
        gamma=gamma,
        mass=mass,
        dt=model.cfg.dt,
        minima=minima,
        occupancy={
            "sampling": occ_a.tolist(),
            "zeroth": zeroth_order(minima, beta).tolist(),
            "second": second_order(minima, beta).tolist(),
            "quadrature": occ_d,
        },
        occupancy_error={"sampling": err_a.tolist()},
        saddles=saddles,
        barrier_tops=tops,
        rates=rates,
        dwell_steps=dwell_times(rates, model.cfg.dt),
        dwell_simulated=milestone_dwell(cores, len(minima)),
        transitions_simulated=milestone_transitions(cores, len(minima)),
        warnings=warnings,
        index=index,
        seconds={k: round(v, 3) for k, v in seconds.items()},
    )
