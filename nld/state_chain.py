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

A state can also be told by its dynamics rather than its values (regimes of one marginal that
differ in their autocorrelation, the phases of a periodic motion). The dynamic chain
(`fit_dynamic_chain`) gives each state AR(1) emissions around its mean m_k,

    x_t | s_t = k, x_{t-1}  ~  N(m_k + A_k (x_{t-1} - m_k), S_k),

and the first step of a recording N(m_k, C_k), the state's values taken alone. It starts from
given classes of the steps (the basin head's), where the Gaussian chain starts from the
decoder's emissions. Its filter carries the last observation from one chunk to the next.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    covariances: np.ndarray  # [K, D, D] emission covariances (dynamic chain: S_k)
    log_init: np.ndarray  # [K]
    log_trans: np.ndarray  # [K, K]
    evidence: float  # mean log-likelihood per step of the data it was fitted to
    rounds: int  # Baum-Welch rounds run
    # The dynamic chain's (module docstring); None for Gaussian emissions.
    dynamics: np.ndarray | None = None  # [K, D, D] A_k
    marginals: np.ndarray | None = None  # [K, D, D] C_k, for a recording's first step

    @property
    def dynamic(self) -> bool:
        return self.dynamics is not None

    @cached_property
    def _whiteners(self) -> tuple[np.ndarray, np.ndarray]:
        return _whiteners(self.covariances)

    @cached_property
    def _first_whiteners(self) -> tuple[np.ndarray, np.ndarray]:
        return self._whiteners if self.marginals is None else _whiteners(self.marginals)

    def loglik(self, x: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
        """log p(x_t | s_t = k, x_{t-1}) for x [N, T, D]: [N, T, K]. `before` [N, D]: the
        observation before x[:, 0] (a dynamic chain continuing recordings; None: x starts
        them)."""
        x = np.asarray(x, dtype=np.float64)
        inverse, norm = self._whiteners
        if self.dynamics is None:
            return _loglik((x - m for m in self.means), inverse, norm)
        first = x[:, :1] if before is None else np.asarray(before, np.float64)[:, None]
        prev = np.concatenate([first, x[:, :-1]], axis=1)
        pairs = zip(self.means, self.dynamics, strict=True)
        out = _loglik((x - m - (prev - m) @ a.T for m, a in pairs), inverse, norm)
        if before is None:
            out[:, 0] = _loglik((x[:, 0] - m for m in self.means), *self._first_whiteners)
        return out

    def filter(
        self, x: np.ndarray, carried: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log p(s_t | x_{<=t}) [N, T, K] and the log evidence [N] of x [N, T, D], and what a
        next chunk continues from, [N, K (+ D)]: the last log marginal (and, for a
        dynamic chain, the last observation). `carried`: what the call on the chunk before
        returned (None: x starts the recordings)."""
        k = len(self.means)
        previous = before = None
        if carried is not None:
            carried = np.asarray(carried, dtype=np.float64).reshape(len(x), -1)
            previous, before = carried[:, :k], (carried[:, k:] if self.dynamic else None)
        log_p, evidence = markov.forward(
            self.log_init, self.log_trans, self.loglik(x, before), previous
        )
        last = [log_p[:, -1]] + ([np.asarray(x, np.float64)[:, -1]] if self.dynamic else [])
        return log_p, evidence, np.concatenate(last, axis=1)

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
            dynamics=None if self.dynamics is None else self.dynamics[perm],
            marginals=None if self.marginals is None else self.marginals[perm],
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the states' positions, the fit, dwell times and transitions."""
        return {
            "emissions": "AR(1)" if self.dynamic else "Gaussian",
            "positions": self.positions.tolist(),
            "rounds": self.rounds,
            "evidence_per_step": self.evidence,
            "dwell_steps": self.dwell_steps().tolist(),
            "transition_matrix": np.exp(self.log_trans).tolist(),
        }


def _whiteners(covariances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse Cholesky factors of covariances [K, D, D] (x -> white noise) and the Gaussians'
    log normalisers [K]."""
    chol = np.linalg.cholesky(covariances)
    eye = np.eye(chol.shape[-1])
    inverse = np.stack([solve_triangular(c, eye, lower=True) for c in chol])
    logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)
    return inverse, -0.5 * (logdet + chol.shape[-1] * np.log(2 * np.pi))


def _loglik(residuals: Iterator[np.ndarray], inverse: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Gaussian log densities [..., K] of each state's residuals [..., D] (zero mean; made one
    state at a time), by the states' whiteners (_whiteners)."""
    cols = []
    for k, r in enumerate(residuals):
        white = r.reshape(-1, r.shape[-1]) @ inverse[k].T
        cols.append(norm[k] - 0.5 * np.einsum("md,md->m", white, white))
        shape = r.shape[:-1]
    return np.stack(cols, axis=-1).reshape(*shape, len(cols))


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
    """The chain as named float64 tensors (PREFIX + field; a Gaussian chain has no dynamics
    and marginals), for a safetensors file."""
    return {
        PREFIX + f.name: torch.as_tensor(np.asarray(value, dtype=np.float64))
        for f in fields(chain)
        if (value := getattr(chain, f.name)) is not None
    }


DYNAMIC = {"dynamics", "marginals"}  # the fields only a dynamic chain stores


def from_tensors(tensors: dict[str, torch.Tensor], obs_dim: int, latent_dim: int) -> StateChain:
    """The chain stored by `to_tensors`, checked against the model's dimensions; ValueError
    naming what is wrong."""
    names = {f.name for f in fields(StateChain)}
    got = {k.removeprefix(PREFIX) for k in tensors}
    if got not in (names, names - DYNAMIC):
        raise ValueError(f"state chain tensors {sorted(got)} are not {sorted(names)}")
    v = {k.removeprefix(PREFIX): t.double().numpy() for k, t in tensors.items()}
    k = len(v["means"])
    square = (k, obs_dim, obs_dim)
    shapes = {
        "positions": (k, latent_dim),
        "means": (k, obs_dim),
        "covariances": square,
        "log_init": (k,),
        "log_trans": (k, k),
        "evidence": (),
        "rounds": (),
    } | {name: square for name in DYNAMIC & got}
    for name, shape in shapes.items():
        if v[name].shape != shape:
            raise ValueError(f"state chain {name} has shape {v[name].shape}, expected {shape}")
        if name != "evidence" and not np.isfinite(v[name]).all():
            raise ValueError(f"state chain {name} has non-finite values")
    for name in {"covariances", "marginals"} & got:
        if k == 0 or np.linalg.eigvalsh(v[name]).min() <= 0:
            raise ValueError(f"state chain {name} are not positive definite")
    return StateChain(
        **{n: v[n] for n in ("positions", "means", "covariances", "log_init", "log_trans")},
        evidence=float(v["evidence"]),
        rounds=int(v["rounds"]),
        dynamics=v.get("dynamics"),
        marginals=v.get("marginals"),
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
    chain = _start(positions, dwell, means, covs + ridge(xs))
    return baum_welch(chain, xs, rounds=rounds, tol=tol)


def fit_dynamic_chain(
    x: np.ndarray,
    classes: np.ndarray,
    positions: np.ndarray,
    *,
    rounds: int = 200,
    tol: float = 1e-5,
    dwell: float = 20.0,
    seed: int = 0,
) -> StateChain:
    """The dynamic chain (AR(1) emissions, module docstring) whose states are the minima at
    `positions` [K, d], fitted to x [N, T, D]: each state's emissions first fitted to the
    steps whose class ([N, T], in 0..K-1: the basin head's) is that state, transitions sticky
    (`dwell` steps), then Baum-Welch rounds until the mean log-likelihood per step improves by
    less than `tol` nats. Raises TooManyDimensions above MAX_DIM observed dimensions."""
    if x.shape[-1] > MAX_DIM:
        raise TooManyDimensions(f"{x.shape[-1]} observed dimensions > {MAX_DIM}")
    k = len(positions)
    rows = _rows(len(x), x.shape[1], seed)
    xs = np.asarray(x, dtype=np.float64)[rows]
    said = np.eye(k)[np.asarray(classes)[rows]] + 1e-6  # a class never said: all steps
    means, covs, dynamics, marginals = _emissions(xs, said, None, ridge(xs))
    assert dynamics is not None and marginals is not None
    chain = _start(positions, dwell, means, covs, dynamics, marginals)
    return baum_welch(chain, xs, rounds=rounds, tol=tol)


def _start(
    positions: np.ndarray,
    dwell: float,
    means: np.ndarray,
    covariances: np.ndarray,
    dynamics: np.ndarray | None = None,
    marginals: np.ndarray | None = None,
) -> StateChain:
    """A chain before Baum-Welch: these emissions, every state as likely at the start, and
    sticky transitions (`dwell` steps)."""
    k = len(means)
    return StateChain(
        np.asarray(positions),
        means,
        covariances,
        np.full(k, -np.log(k)),
        markov.sticky(k, dwell),
        -np.inf,
        0,
        dynamics,
        marginals,
    )


def subsample(x: np.ndarray, seed: int, max_steps: int = MAX_STEPS) -> np.ndarray:
    """Whole sequences of x [N, T, D] drawn at random, at most `max_steps` steps in all,
    float64."""
    return np.asarray(x, dtype=np.float64)[_rows(len(x), x.shape[1], seed, max_steps)]


def _rows(n_seq: int, length: int, seed: int, max_steps: int = MAX_STEPS) -> np.ndarray:
    """Which sequences `subsample` keeps, in order."""
    n = max(1, min(n_seq, max_steps // length))
    return np.sort(np.random.default_rng(seed).permutation(n_seq)[:n])


def ridge(xs: np.ndarray) -> np.ndarray:
    """What is added to every covariance fitted to xs [N, T, D]: [D, D]."""
    return RIDGE * float(xs.reshape(-1, xs.shape[-1]).var(0).mean()) * np.eye(xs.shape[-1])


def baum_welch(chain: StateChain, xs: np.ndarray, *, rounds: int, tol: float) -> StateChain:
    """Baum-Welch rounds from `chain` on xs [N, T, D] until the mean log-likelihood per step
    improves by less than `tol` nats; `evidence` is that of the chain returned."""
    add = ridge(xs)
    last = -np.inf
    for r in range(rounds + 1):
        e = markov.expectations(chain.log_init, chain.log_trans, chain.loglik(xs))
        score = float(e.evidence.sum()) / (xs.shape[0] * xs.shape[1])
        chain = replace(chain, evidence=score)
        if score - last < tol or r == rounds:
            return chain
        last = score
        log_init, log_trans = markov.maximise(e)
        means, covs, dynamics, marginals = _emissions(xs, e.posterior, chain, add)
        chain = StateChain(
            chain.positions, means, covs, log_init, log_trans, -np.inf, r + 1, dynamics, marginals
        )
    return chain


def _emissions(
    xs: np.ndarray, weights: np.ndarray, chain: StateChain | None, add: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The M-step of each state's emissions on xs [N, T, D] with the steps' weights [N, T, K]:
    means, covariances, and for a dynamic chain (`chain` None: a dynamic chain's first fit)
    dynamics and marginals. A state of `chain` with too few steps to estimate keeps its own."""
    d, k = xs.shape[-1], weights.shape[-1]
    flat, w_all = xs.reshape(-1, d), weights.reshape(-1, k)
    dynamic = chain is None or chain.dynamic
    dynamics: np.ndarray | None
    marginals: np.ndarray | None
    if chain is None:
        means, covs = np.zeros((k, d)), np.zeros((k, d, d))
        dynamics, marginals = np.zeros((k, d, d)), np.zeros((k, d, d))
    else:
        means, covs = chain.means.copy(), chain.covariances.copy()
        dynamics = None if chain.dynamics is None else chain.dynamics.copy()
        marginals = None if chain.marginals is None else chain.marginals.copy()
    for j in range(k):
        w = w_all[:, j]
        if chain is not None and w.sum() <= d:  # too few steps to estimate it: keep it
            continue
        means[j] = w @ flat / w.sum()
        centred = flat - means[j]
        marginal = (centred * w[:, None]).T @ centred / w.sum() + add
        if not dynamic:
            covs[j] = marginal
            continue
        assert dynamics is not None and marginals is not None
        marginals[j] = marginal
        # x_t - m on x_{t-1} - m, weighted by the state's weight at t (t >= 1)
        now = (xs[:, 1:] - means[j]).reshape(-1, d)
        before = (xs[:, :-1] - means[j]).reshape(-1, d)
        wt = weights[:, 1:, j].reshape(-1, 1)
        gram = (before * wt).T @ before + wt.sum() * add
        dynamics[j] = np.linalg.solve(gram, (before * wt).T @ now).T
        resid = now - before @ dynamics[j].T
        covs[j] = (resid * wt).T @ resid / wt.sum() + add
    return means, covs, dynamics, marginals
