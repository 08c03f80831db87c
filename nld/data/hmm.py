"""Hidden Markov chains with Gaussian emissions: the specs, and sequences drawn from them.

A spec fixes a chain on K states (transition matrix P, initial distribution pi0) and one
Gaussian emission N(mu_k, Sigma_k) in D dimensions per state:

    s_0 ~ pi0,   s_t | s_{t-1} ~ P[s_{t-1}],   x_t | s_t ~ N(mu_{s_t}, Sigma_{s_t})
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nld.data.dataset import Dataset
from nld.errors import ConfigError


class Split(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_sequences: int = Field(gt=0)
    length: int = Field(gt=0)
    seed: int


class HMMSpec(BaseModel):
    """A Gaussian-emission HMM and the splits to draw from it (schema of the shipped specs)."""

    model_config = ConfigDict(extra="ignore")
    name: str
    transition_matrix: list[list[float]]
    initial_distribution: list[float]
    means: list[list[float]]
    covariances: list[list[list[float]]]
    splits: dict[str, Split]
    stationary_distribution: list[float] | None = None

    @model_validator(mode="after")
    def _check(self) -> HMMSpec:
        p = np.asarray(self.transition_matrix)
        k = len(self.means)
        if p.shape != (k, k):
            raise ValueError(f"transition_matrix must be {k}x{k} (one row per mean), got {p.shape}")
        if (p < 0).any() or not np.allclose(p.sum(1), 1, atol=1e-4):
            raise ValueError("transition_matrix rows must be probabilities summing to 1")
        pi0 = np.asarray(self.initial_distribution)
        if pi0.shape != (k,) or (pi0 < 0).any() or not np.isclose(pi0.sum(), 1, atol=1e-4):
            raise ValueError(f"initial_distribution must be {k} probabilities summing to 1")
        d = len(self.means[0])
        if any(len(m) != d for m in self.means):
            raise ValueError("all means must have the same dimension")
        cov = np.asarray(self.covariances)
        if cov.shape != (k, d, d):
            raise ValueError(f"covariances must have shape [{k}, {d}, {d}], got {cov.shape}")
        for i, c in enumerate(cov):
            if not np.allclose(c, c.T, atol=1e-6) or np.linalg.eigvalsh(c).min() <= 0:
                raise ValueError(f"covariance {i} is not symmetric positive definite")
        return self

    @property
    def n_states(self) -> int:
        return len(self.means)

    @property
    def dim(self) -> int:
        return len(self.means[0])

    def stationary(self) -> np.ndarray:
        """The chain's stationary distribution (left eigenvector of P for eigenvalue 1)."""
        return stationary_distribution(np.asarray(self.transition_matrix))


def stationary_distribution(p: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eig(p.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    return pi / pi.sum()


def load_spec(name_or_path: str) -> HMMSpec:
    """A shipped spec by name (`exp1`, `exp2`) or a JSON file in the same schema."""
    path = Path(name_or_path)
    try:
        if path.suffix == ".json" or path.exists():
            text = path.read_text()
        else:
            text = resources.files("nld.data").joinpath(f"specs/{name_or_path}.json").read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"no spec {name_or_path!r}: give a JSON file or one of {shipped_specs()}"
        ) from None
    try:
        return HMMSpec.model_validate(json.loads(text))
    except (ValidationError, json.JSONDecodeError) as e:
        raise ConfigError(f"spec {name_or_path}: {e}") from None


def shipped_specs() -> list[str]:
    return sorted(
        p.name.removesuffix(".json")
        for p in resources.files("nld.data").joinpath("specs").iterdir()
        if p.name.endswith(".json")
    )


def sample(spec: HMMSpec, n_sequences: int, length: int, seed: int) -> Dataset:
    """Draw `n_sequences` sequences of `length` steps from the chain (reproducible by `seed`)."""
    rng = np.random.default_rng(seed)
    p = np.asarray(spec.transition_matrix)
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    states = np.empty((n_sequences, length), dtype=np.int64)
    pi0 = np.asarray(spec.initial_distribution)
    states[:, 0] = rng.choice(spec.n_states, size=n_sequences, p=pi0 / pi0.sum())
    u = rng.random((n_sequences, length))
    for t in range(1, length):
        row = cum[states[:, t - 1]]
        states[:, t] = np.minimum((u[:, t, None] > row).sum(1), spec.n_states - 1)
    chol = np.linalg.cholesky(np.asarray(spec.covariances))
    noise = rng.standard_normal((n_sequences, length, spec.dim))
    x = np.asarray(spec.means)[states] + np.einsum("ntij,ntj->nti", chol[states], noise)
    return Dataset(x.astype(np.float32), states)


def random_spec(
    n_states: int,
    dim: int,
    dwell: float | Sequence[float],
    seed: int,
    separation: float = 2.0,
    splits: dict[str, Split] | None = None,
) -> HMMSpec:
    """A random HMM whose state i lasts `dwell` steps on average (`dwell[i]` when a sequence)
    and then leaves to a uniformly chosen other state.

    Means are N(0, separation^2 / (2 dim) I) so that two of them lie about `separation` apart;
    covariances are random rotations of diagonals in [0.5, 2]. P(i -> j) = 1 / (dwell_i (K - 1))
    for j != i, so the stationary distribution is proportional to the dwell times (uniform when
    they are equal); the chain starts from it.
    """
    dwells = np.asarray(dwell, dtype=float)
    if dwells.ndim and dwells.shape != (n_states,):
        raise ConfigError(f"random_spec: {dwells.size} dwell times for {n_states} states")
    dwells = np.broadcast_to(dwells, (n_states,))
    if n_states < 2 or not np.all(dwells > 1):
        raise ConfigError("random_spec needs at least 2 states and dwell times above 1 step")
    rng = np.random.default_rng(seed)
    leave = 1.0 / dwells
    p = np.repeat((leave / (n_states - 1))[:, None], n_states, axis=1)
    np.fill_diagonal(p, 1 - leave)
    means = rng.normal(0, separation / np.sqrt(2 * dim), (n_states, dim))
    covs = []
    for _ in range(n_states):
        q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        covs.append((q * rng.uniform(0.5, 2.0, dim)) @ q.T)
    return HMMSpec(
        name=f"random-k{n_states}-d{dim}-s{seed}",
        transition_matrix=p.tolist(),
        initial_distribution=(dwells / dwells.sum()).tolist(),
        means=means.tolist(),
        covariances=[(0.5 * (c + c.T)).tolist() for c in covs],
        splits=splits or {},
    )


def generate_splits(spec: HMMSpec) -> dict[str, Dataset]:
    return {name: sample(spec, s.n_sequences, s.length, s.seed) for name, s in spec.splits.items()}
