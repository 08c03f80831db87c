"""Hidden Markov chains on K discrete states, in log space and batched over sequences.

Given emission log-likelihoods ll [N, T, K] (log p(x_t | s_t = k)), a log initial
distribution [K] and a log transition matrix [K, K] (rows: from, columns: to):
- `forward`: the filtering marginals log p(s_t | x_{<=t}) and the evidence log p(x_1..x_T),
  causal, and able to continue from the last marginal of an earlier chunk;
- `smooth`: the marginals log p(s_t | x_1..x_T) (forward-backward);
- `viterbi`: the most probable path of states given x_1..x_T;
- `expectations` and `maximise`: the two steps of Baum-Welch for the chain's parameters
  (the emissions' own M-step belongs to whoever models them: nld.state_chain).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PSEUDO_COUNT = 1.0  # per transition and per initial state: no probability fitted to exactly 0


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """scipy's logsumexp without its checks (about 1 ms a call: the recursions call it once
    per step, and the filter once per streamed chunk)."""
    top = a.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(a - top).sum(axis=axis)) + np.squeeze(top, axis=axis)


def forward(
    log_init: np.ndarray,
    log_trans: np.ndarray,
    ll: np.ndarray,
    previous: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Log filtering marginals [N, T, K] (normalised per step) and log evidence [N].

    `previous` [N, K]: the last log marginal of the chunk before (normalised), to continue a
    chain across chunks (then `log_init` is unused and the evidence is that of this chunk
    given the past).
    """
    alpha = np.empty_like(ll, dtype=np.float64)
    evidence = np.zeros(ll.shape[0])
    trans = np.exp(log_trans)
    for t in range(ll.shape[1]):
        prev = alpha[:, t - 1] if t > 0 else previous
        if prev is None:
            a = log_init[None] + ll[:, 0]
        else:  # prev is normalised (its largest probability >= 1/K): no overflow in exp
            with np.errstate(divide="ignore"):  # a state no other state reaches: -inf
                a = np.log(np.exp(prev) @ trans) + ll[:, t]
        norm = _logsumexp(a, axis=1)
        alpha[:, t] = a - norm[:, None]
        evidence += norm
    return alpha, evidence


def backward(log_trans: np.ndarray, ll: np.ndarray) -> np.ndarray:
    """Log backward messages [N, T, K], each normalised per step (scale-free)."""
    beta = np.zeros_like(ll, dtype=np.float64)
    trans_t = np.exp(log_trans).T
    for t in range(ll.shape[1] - 2, -1, -1):
        v = ll[:, t + 1] + beta[:, t + 1]
        top = v.max(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):  # a state that reaches none of the likely ones
            b = np.log(np.exp(v - top) @ trans_t)
        beta[:, t] = b - _logsumexp(b, axis=1)[:, None]
    return beta


def smooth(log_init: np.ndarray, log_trans: np.ndarray, ll: np.ndarray) -> np.ndarray:
    """Log smoothing marginals p(s_t | x_1..x_T) [N, T, K], normalised per step."""
    alpha, _ = forward(log_init, log_trans, ll)
    gamma = alpha + backward(log_trans, ll)
    return gamma - _logsumexp(gamma, axis=2)[..., None]


def viterbi(log_init: np.ndarray, log_trans: np.ndarray, ll: np.ndarray) -> np.ndarray:
    """The most probable state path [N, T] given ll [N, T, K] (ties: the lower state)."""
    n, t_len, k = ll.shape
    score = log_init[None] + ll[:, 0]  # [N, K]
    back = np.empty((n, t_len, k), dtype=np.int64)
    for t in range(1, t_len):
        cand = score[:, :, None] + log_trans[None]  # [N, from, to]
        back[:, t] = cand.argmax(1)
        score = cand.max(1) + ll[:, t]
    path = np.empty((n, t_len), dtype=np.int64)
    path[:, -1] = score.argmax(1)
    for t in range(t_len - 1, 0, -1):
        path[:, t - 1] = np.take_along_axis(back[:, t], path[:, t : t + 1], 1)[:, 0]
    return path


def dwell_steps(log_trans: np.ndarray) -> np.ndarray:
    """Mean dwell time of each state in steps, 1 / (1 - P_kk)."""
    return 1.0 / np.maximum(1.0 - np.exp(np.diag(log_trans)), 1e-12)


def sticky(k: int, dwell: float) -> np.ndarray:
    """Log transition matrix that stays with probability 1 - 1/dwell, else moves uniformly."""
    if k == 1:
        return np.zeros((1, 1))
    stay = 1.0 - 1.0 / dwell
    p = np.full((k, k), (1.0 - stay) / (k - 1))
    np.fill_diagonal(p, stay)
    return np.log(p)


@dataclass(frozen=True)
class Expectations:
    """What the E-step of Baum-Welch needs from the data under a chain."""

    posterior: np.ndarray  # [N, T, K] p(s_t = k | x_1..x_T)
    transitions: np.ndarray  # [K, K] expected number of i -> j transitions
    evidence: np.ndarray  # [N] log p(x_1..x_T)


def expectations(log_init: np.ndarray, log_trans: np.ndarray, ll: np.ndarray) -> Expectations:
    """Smoothing marginals, expected transition counts and evidence of ll [N, T, K]."""
    alpha, evidence = forward(log_init, log_trans, ll)
    beta = backward(log_trans, ll)
    gamma = alpha + beta
    gamma -= _logsumexp(gamma, axis=2)[..., None]
    # p(s_t = i, s_t+1 = j | x) = a_t(i) P_ij b_t+1(j) / norm_t with a = exp(alpha) and
    # b = exp(ll + beta) scaled per step; both are then at most 1 and at least one entry of
    # each is of order 1, so the products neither overflow nor vanish.
    trans = np.exp(log_trans)
    a = np.exp(alpha[:, :-1])
    v = ll[:, 1:] + beta[:, 1:]
    b = np.exp(v - v.max(axis=2, keepdims=True))
    norm = np.einsum("ntk,ntk->nt", a @ trans, b)
    counts = trans * np.einsum("nti,ntj->ij", a / np.maximum(norm, 1e-300)[..., None], b)
    return Expectations(np.exp(gamma), counts, evidence)


def maximise(e: Expectations) -> tuple[np.ndarray, np.ndarray]:
    """The log initial distribution and log transition matrix that maximise the expected
    complete log-likelihood (with PSEUDO_COUNT added to every count)."""
    init = e.posterior[:, 0].sum(0) + PSEUDO_COUNT
    counts = e.transitions + PSEUDO_COUNT
    return np.log(init / init.sum()), np.log(counts / counts.sum(1, keepdims=True))
