"""The hidden Markov chain of a trained model's states: one state per minimum of its energy.

The emissions start as the model's own, the decoder's Gaussian p(x | q = m_k) at each
minimum m_k (mapped back to the raw observations), and the transitions as a sticky chain;
Baum-Welch then refines both on data, without labels. The chain answers what the landscape
alone does not: the causal filter p(s_t | x_{<=t}) over the model's states (a segmentation)
and how long the data dwell in each state.

Why the emissions are refined: the decoder is fitted along posterior paths, which lag the
data at switches. There it explains observations of one state from a position in another's
well, which widens its covariances along the directions that separate the states (exp1: the
decoder's log-likelihood ratios between states are 0.6 times the true ones, correlation
0.995), so a filter on the decoder alone is under-confident. The landscape supplies what EM
from random starts gets wrong (bench/unseen.py: hmmlearn's seeds land in bad optima): how
many states there are and where each one starts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

import numpy as np
import torch
from scipy.linalg import solve_triangular

from nld import markov
from nld.data.hmm import HMMSpec, stationary_distribution

PREFIX = "chain."  # of its tensors in a checkpoint's weights file
MAX_STEPS = 200_000  # observation steps EM sees, at most (whole sequences, chosen at random)
RIDGE = 1e-6  # added to each covariance, relative to the data's mean variance
# Full covariances cost D^2 per state to store and per step to evaluate: above this many
# observed dimensions no chain is fitted (at D = 100 a fit takes 4 s; it grows like D^2).
MAX_DIM = 256


class TooManyDimensions(ValueError):
    """fit_state_chain was given more than MAX_DIM observed dimensions."""


@dataclass(frozen=True)
class StateChain:
    positions: np.ndarray  # [K, d] the minima the states stand for
    means: np.ndarray  # [K, D] emission means, raw observation space
    covariances: np.ndarray  # [K, D, D]
    log_init: np.ndarray  # [K]
    log_trans: np.ndarray  # [K, K]
    evidence: float  # mean log-likelihood per step of the data it was fitted to
    rounds: int  # Baum-Welch rounds run

    @cached_property
    def _whiteners(self) -> tuple[np.ndarray, np.ndarray]:
        """Inverse Cholesky factors of the covariances [K, D, D] (x -> white noise) and the
        Gaussians' log normalisers [K]."""
        chol = np.linalg.cholesky(self.covariances)
        eye = np.eye(chol.shape[-1])
        inverse = np.stack([solve_triangular(c, eye, lower=True) for c in chol])
        logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)
        return inverse, -0.5 * (logdet + self.means.shape[1] * np.log(2 * np.pi))

    def loglik(self, x: np.ndarray) -> np.ndarray:
        """log p(x_t | s_t = k) for x [N, T, D]: [N, T, K]."""
        flat = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
        inverse, norm = self._whiteners
        out = np.empty((len(flat), len(self.means)))
        for k, (m, w) in enumerate(zip(self.means, inverse, strict=True)):
            white = (flat - m) @ w.T
            out[:, k] = norm[k] - 0.5 * np.einsum("md,md->m", white, white)
        return out.reshape(*x.shape[:2], len(self.means))

    def filter(
        self, x: np.ndarray, previous: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log p(s_t | x_{<=t}) [N, T, K] and the log evidence [N] of x [N, T, D], continuing
        from the last log marginal `previous` [N, K] of an earlier chunk."""
        return markov.forward(self.log_init, self.log_trans, self.loglik(x), previous)

    def labels(self, x: np.ndarray) -> np.ndarray:
        """The most probable state of every step given the steps so far: [N, T]."""
        return self.filter(x)[0].argmax(-1)

    def stationary(self) -> np.ndarray:
        """The fraction of time the chain spends in each state."""
        return stationary_distribution(np.exp(self.log_trans))

    def dwell_steps(self) -> np.ndarray:
        """Mean dwell time of each state, in observation steps."""
        return markov.dwell_steps(self.log_trans)

    def reordered(self, perm: np.ndarray) -> StateChain:
        """The same chain with its states renumbered: new state j is old state perm[j]."""
        return replace(
            self,
            positions=self.positions[perm],
            means=self.means[perm],
            covariances=self.covariances[perm],
            log_init=self.log_init[perm],
            log_trans=self.log_trans[np.ix_(perm, perm)],
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the states' positions, the fit, dwell times and transitions."""
        return {
            "positions": self.positions.tolist(),
            "rounds": self.rounds,
            "evidence_per_step": self.evidence,
            "dwell_steps": self.dwell_steps().tolist(),
            "transition_matrix": np.exp(self.log_trans).tolist(),
        }


def spec_chain(spec: HMMSpec, latent_dim: int = 2) -> StateChain:
    """The chain of a Gaussian HMM spec, its true parameters (positions: zeros)."""
    k = len(spec.means)
    return StateChain(
        np.zeros((k, latent_dim)),
        np.asarray(spec.means, dtype=float),
        np.asarray(spec.covariances, dtype=float),
        np.log(np.asarray(spec.initial_distribution, dtype=float)),
        np.log(np.asarray(spec.transition_matrix, dtype=float)),
        -np.inf,
        0,
    )


def to_tensors(chain: StateChain) -> dict[str, torch.Tensor]:
    """The chain as named float64 tensors (PREFIX + field), for a safetensors file."""
    return {
        PREFIX + f.name: torch.as_tensor(np.asarray(getattr(chain, f.name), dtype=np.float64))
        for f in fields(chain)
    }


def from_tensors(tensors: dict[str, torch.Tensor], obs_dim: int, latent_dim: int) -> StateChain:
    """The chain stored by `to_tensors`, checked against the model's dimensions; ValueError
    naming what is wrong."""
    names = {f.name for f in fields(StateChain)}
    got = {k.removeprefix(PREFIX) for k in tensors}
    if got != names:
        raise ValueError(f"state chain tensors {sorted(got)} are not {sorted(names)}")
    v = {k.removeprefix(PREFIX): t.double().numpy() for k, t in tensors.items()}
    k = len(v["means"])
    shapes = {
        "positions": (k, latent_dim),
        "means": (k, obs_dim),
        "covariances": (k, obs_dim, obs_dim),
        "log_init": (k,),
        "log_trans": (k, k),
        "evidence": (),
        "rounds": (),
    }
    for name, shape in shapes.items():
        if v[name].shape != shape:
            raise ValueError(f"state chain {name} has shape {v[name].shape}, expected {shape}")
        if name != "evidence" and not np.isfinite(v[name]).all():
            raise ValueError(f"state chain {name} has non-finite values")
    if k == 0 or np.linalg.eigvalsh(v["covariances"]).min() <= 0:
        raise ValueError("state chain covariances are not positive definite")
    return StateChain(
        **{n: v[n] for n in ("positions", "means", "covariances", "log_init", "log_trans")},
        evidence=float(v["evidence"]),
        rounds=int(v["rounds"]),
    )


def fit_state_chain(
    emissions: tuple[np.ndarray, np.ndarray],
    x: np.ndarray,
    positions: np.ndarray,
    *,
    rounds: int = 10,
    tol: float = 1e-5,
    dwell: float = 20.0,
    seed: int = 0,
) -> StateChain:
    """The chain whose states are the minima at `positions` [K, d], fitted to x [N, T, D]:
    emissions from the model's decoder at those positions (`NLDModel.emissions`: means
    [K, D], covariances [K, D, D]), transitions sticky (`dwell` steps), then Baum-Welch rounds
    until the mean log-likelihood per step improves by less than `tol` nats. Raises
    TooManyDimensions above MAX_DIM observed dimensions."""
    if x.shape[-1] > MAX_DIM:
        raise TooManyDimensions(f"{x.shape[-1]} observed dimensions > {MAX_DIM}")
    xs = subsample(x, seed)
    means, covs = emissions
    k = len(means)
    chain = StateChain(
        np.asarray(positions),
        means,
        covs + ridge(xs),
        np.full(k, -np.log(k)),
        markov.sticky(k, dwell),
        -np.inf,
        0,
    )
    return baum_welch(chain, xs, rounds=rounds, tol=tol)


def subsample(x: np.ndarray, seed: int, max_steps: int = MAX_STEPS) -> np.ndarray:
    """Whole sequences of x [N, T, D] drawn at random, at most `max_steps` steps in all,
    float64."""
    n = max(1, min(len(x), max_steps // x.shape[1]))
    rng = np.random.default_rng(seed)
    return np.asarray(x, dtype=np.float64)[np.sort(rng.permutation(len(x))[:n])]


def ridge(xs: np.ndarray) -> np.ndarray:
    """What is added to every covariance fitted to xs [N, T, D]: [D, D]."""
    return RIDGE * float(xs.reshape(-1, xs.shape[-1]).var(0).mean()) * np.eye(xs.shape[-1])


def baum_welch(chain: StateChain, xs: np.ndarray, *, rounds: int, tol: float) -> StateChain:
    """Baum-Welch rounds from `chain` on xs [N, T, D] until the mean log-likelihood per step
    improves by less than `tol` nats; `evidence` is that of the chain returned."""
    flat = xs.reshape(-1, xs.shape[-1])
    k, add = len(chain.means), ridge(xs)
    last = -np.inf
    for r in range(rounds + 1):
        e = markov.expectations(chain.log_init, chain.log_trans, chain.loglik(xs))
        score = float(e.evidence.sum()) / flat.shape[0]
        chain = replace(chain, evidence=score)
        if score - last < tol or r == rounds:
            return chain
        last = score
        log_init, log_trans = markov.maximise(e)
        weights = e.posterior.reshape(-1, k)
        means, covs = chain.means.copy(), chain.covariances.copy()
        for j in range(k):
            w = weights[:, j]
            if w.sum() <= xs.shape[-1]:  # too few steps to estimate it: keep it
                continue
            means[j] = w @ flat / w.sum()
            centred = flat - means[j]
            covs[j] = (centred * w[:, None]).T @ centred / w.sum() + add
        chain = StateChain(chain.positions, means, covs, log_init, log_trans, -np.inf, r + 1)
    return chain
