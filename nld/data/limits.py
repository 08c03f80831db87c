"""Accuracy limits of segmentation when the true HMM parameters are known.

With emission log-likelihoods l_t(k) = log N(x_t; mu_k, Sigma_k):
- per step:  argmax_k  log pi0(k) + l_t(k) (the stationary prior would do as well here),
- online:    argmax_k  p(s_t = k | x_{<=t})   (forward filter, causal),
- offline:   argmax_k  p(s_t = k | x_{1..T})  (forward-backward smoother).
All recursions run in log space, batched over sequences.
"""

from __future__ import annotations

import numpy as np

from nld import markov
from nld.data.hmm import HMMSpec


def emission_loglik(spec: HMMSpec, x: np.ndarray) -> np.ndarray:
    """log N(x_t; mu_k, Sigma_k) for every step and state: [N, T, K]."""
    from scipy.stats import multivariate_normal  # a second to import: only when needed

    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    out = np.stack(
        [
            multivariate_normal(mean=m, cov=c).logpdf(flat)
            for m, c in zip(spec.means, spec.covariances, strict=True)
        ],
        axis=-1,
    )
    return out.reshape(*x.shape[:2], spec.n_states)


def _chain(spec: HMMSpec) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore"):  # a zero probability is -inf in log space
        return np.log(np.asarray(spec.initial_distribution)), np.log(
            np.asarray(spec.transition_matrix)
        )


def forward_filter(spec: HMMSpec, ll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From emission log-likelihoods ll [N, T, K]: the log filtering marginals [N, T, K],
    normalised per step, and the log evidence log p(x_1..x_T) of each sequence [N]."""
    return markov.forward(*_chain(spec), ll)


def forward_backward(
    spec: HMMSpec, x: np.ndarray, ll: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Log filtering and smoothing marginals, each [N, T, K] and normalised per step (`ll`:
    the emission log-likelihoods of x, when already computed)."""
    ll = emission_loglik(spec, x) if ll is None else ll
    log_init, log_trans = _chain(spec)
    alpha, _ = markov.forward(log_init, log_trans, ll)
    return alpha, markov.smooth(log_init, log_trans, ll)


def _accuracy(pred: np.ndarray, states: np.ndarray) -> tuple[float, float]:
    per_seq = (pred == states).mean(axis=1)
    return float(per_seq.mean()), float(per_seq.std())


def bayes_limits(spec: HMMSpec, x: np.ndarray, states: np.ndarray) -> dict[str, float]:
    """Mean and std over sequences of the per-step, online and offline accuracies."""
    ll = emission_loglik(spec, x)
    per_step = np.argmax(ll + np.log(np.asarray(spec.initial_distribution)), axis=-1)
    filt, smooth = forward_backward(spec, x, ll)
    out: dict[str, float] = {}
    for name, pred in [
        ("per_step", per_step),
        ("online_filter", filt.argmax(-1)),
        ("offline_smoother", smooth.argmax(-1)),
    ]:
        out[f"{name}_accuracy_mean"], out[f"{name}_accuracy_std"] = _accuracy(pred, states)
    return out
