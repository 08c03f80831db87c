"""The hidden Markov chain over the basin head's classes: offline labels and kinetics where the
state chain does not fit the data.

The state chain (nld.state_chain) models each state's observations by one Gaussian. Where the
states are not Gaussian (a periodic motion, a state defined by its dynamics, states on a
curved surface) its labels disagree with the basin head's and it is not kept, although the
head still tells the states apart from the encoder's context. This chain observes what the
head says: its most probable class at each step, which state k emits as class c with
probability `confusion[k, c]`. Transitions and confusion are fitted together by Baum-Welch on
the training data, without labels (started sticky and with the head right 90% of the time).
Forward-backward then gives the state of each step from the whole recording (offline labels),
Viterbi the most probable path, and the transition matrix the kinetics that regimes
(nld.regimes) are read from.

Why the head's classes and not its probabilities: the head is trained on the basins of sampled
posterior paths, whose jitter its probabilities learn, so they understate what the context
knows (a head right on 99.9% of the steps of an easy case says 0.95 at nearly every step); a
chain that took them as likelihoods would move switches by a step or two. The confusion
matrix is the head's reliability as the data show it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from nld import markov
from nld.data.hmm import stationary_distribution

PREFIX = "head_chain."  # of its tensors in a checkpoint's weights file
START_RIGHT = 0.9  # the share of steps the head is taken to be right on, before fitting


@dataclass(frozen=True)
class HeadChain:
    confusion: np.ndarray  # [K, K] p(the head says c | state k), rows sum to 1
    log_init: np.ndarray  # [K]
    log_trans: np.ndarray  # [K, K]
    evidence: float  # mean log-likelihood per step of the head's classes it was fitted to
    rounds: int  # Baum-Welch rounds run

    def loglik(self, classes: np.ndarray) -> np.ndarray:
        """log p(head's class c_t | s_t = k) [N, T, K] of the head's classes [N, T]."""
        return np.log(self.confusion)[:, classes].transpose(1, 2, 0)

    def smooth(self, classes: np.ndarray) -> np.ndarray:
        """Log p(s_t | the head's classes of the whole recording) [N, T, K]."""
        return markov.smooth(self.log_init, self.log_trans, self.loglik(classes))

    def viterbi(self, classes: np.ndarray) -> np.ndarray:
        """The most probable state path [N, T] given the head's classes [N, T]."""
        return markov.viterbi(self.log_init, self.log_trans, self.loglik(classes))

    def stationary(self) -> np.ndarray:
        return stationary_distribution(np.exp(self.log_trans))

    def dwell_steps(self) -> np.ndarray:
        """Mean dwell time of each state, in observation steps."""
        return markov.dwell_steps(self.log_trans)

    def reordered(self, perm: np.ndarray) -> HeadChain:
        """The same chain with its states (and the head's classes) renumbered: new state j is
        old state perm[j]."""
        return replace(
            self,
            confusion=self.confusion[np.ix_(perm, perm)],
            log_init=self.log_init[perm],
            log_trans=self.log_trans[np.ix_(perm, perm)],
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the fit, the head's reliability, dwell times and transitions."""
        return {
            "observes": "the basin head's classes",
            "rounds": self.rounds,
            "evidence_per_step": self.evidence,
            "head_right": np.diag(self.confusion).tolist(),
            "dwell_steps": self.dwell_steps().tolist(),
            "transition_matrix": np.exp(self.log_trans).tolist(),
        }


def fit_head_chain(
    classes: np.ndarray, k: int, *, rounds: int = 50, tol: float = 1e-5, dwell: float = 20.0
) -> HeadChain:
    """The chain over the head's k classes fitted to its classes [N, T] of training sequences:
    transitions sticky (`dwell` steps) and the head right START_RIGHT of the time to start
    with, then Baum-Welch rounds until the mean log-likelihood per step improves by less than
    `tol` nats."""
    classes = np.asarray(classes, dtype=np.int64)
    if k < 2 or classes.min() < 0 or classes.max() >= k:
        raise ValueError(f"classes must lie in 0..{k - 1}, with k >= 2")
    confusion = np.full((k, k), (1 - START_RIGHT) / (k - 1))
    np.fill_diagonal(confusion, START_RIGHT)
    chain = HeadChain(confusion, np.full(k, -np.log(k)), markov.sticky(k, dwell), 0.0, 0)
    said = np.eye(k)[classes]  # [N, T, k]
    last = -np.inf
    for r in range(rounds + 1):
        e = markov.expectations(chain.log_init, chain.log_trans, chain.loglik(classes))
        score = float(e.evidence.sum()) / classes.size
        chain = replace(chain, evidence=score, rounds=r)
        if score - last < tol or r == rounds:
            break
        last = score
        log_init, log_trans = markov.maximise(e)
        counts = np.einsum("ntk,ntc->kc", e.posterior, said) + markov.PSEUDO_COUNT
        chain = replace(
            chain,
            confusion=counts / counts.sum(1, keepdims=True),
            log_init=log_init,
            log_trans=log_trans,
        )
    return chain


def to_tensors(chain: HeadChain) -> dict[str, torch.Tensor]:
    """The chain as named float64 tensors (PREFIX + field), for a safetensors file."""
    return {
        PREFIX + f.name: torch.as_tensor(np.asarray(getattr(chain, f.name), dtype=np.float64))
        for f in fields(chain)
    }


def from_tensors(tensors: dict[str, torch.Tensor], classes: int) -> HeadChain:
    """The chain stored by `to_tensors`, over `classes` states; ValueError naming what is
    wrong."""
    names = {f.name for f in fields(HeadChain)}
    got = {k.removeprefix(PREFIX) for k in tensors}
    if got != names:
        raise ValueError(f"head chain tensors {sorted(got)} are not {sorted(names)}")
    v = {k.removeprefix(PREFIX): t.double().numpy() for k, t in tensors.items()}
    k = classes
    shapes = {"confusion": (k, k), "log_init": (k,), "log_trans": (k, k)}
    for name, shape in shapes.items():
        if v[name].shape != shape:
            raise ValueError(f"head chain {name} has shape {v[name].shape}, expected {shape}")
        if not np.isfinite(v[name]).all():
            raise ValueError(f"head chain {name} has non-finite values")
    rows = np.r_[v["confusion"].sum(1), np.exp(v["log_trans"]).sum(1)]
    if v["confusion"].min() <= 0 or not np.allclose(rows, 1.0, atol=1e-6):
        raise ValueError("head chain confusion or transition rows are not distributions")
    return HeadChain(
        **{n: v[n] for n in shapes}, evidence=float(v["evidence"]), rounds=int(v["rounds"])
    )
