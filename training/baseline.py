"""The baseline nld is measured against: hmmlearn's Gaussian HMM, fitted by EM."""

from __future__ import annotations

import time

import numpy as np

from nld.analysis import match_labels, matched_l1
from nld.data import Dataset, HMMSpec
from nld.data.limits import forward_backward

HMM_STARTS = 3  # EM initialisations of the HMM baseline; the likeliest on the training data kept


def hmm_baseline(
    train: Dataset, test: Dataset, k: int, truth: np.ndarray, seed: int = 0, starts: int = 1
) -> dict[str, float] | None:
    """hmmlearn's GaussianHMM (k states, full covariances) fitted to `train` by EM from
    `starts` initialisations (seeds seed, seed + 1, ...), the one of highest training
    likelihood kept (EM lands in a poor optimum from one start in three on random HMMs,
    bench/unseen.py): its online accuracy on `test` (forward-filter argmax, best matching),
    the occupancy l1 of its stationary distribution to `truth`, its log-likelihood per step on
    `train`, and the fit time of all starts. None without hmmlearn."""
    try:
        from hmmlearn.hmm import GaussianHMM
    except ImportError:
        return None

    t0 = time.perf_counter()
    flat, lengths = train.x.reshape(-1, train.dim), [train.length] * train.n_sequences
    fits = []
    for s in range(seed, seed + starts):
        candidate = GaussianHMM(n_components=k, covariance_type="full", n_iter=100, random_state=s)
        candidate.fit(flat, lengths)
        fits.append((candidate.score(flat, lengths), s, candidate))
    loglik, _, hmm = max(fits, key=lambda f: (f[0], -f[1]))
    fit_seconds = time.perf_counter() - t0
    # Online labels: the forward filter of the fitted HMM (our own filter, its parameters).
    fitted = HMMSpec(
        name="hmmlearn",
        transition_matrix=hmm.transmat_.tolist(),
        initial_distribution=hmm.startprob_.tolist(),
        means=hmm.means_.tolist(),
        covariances=hmm.covars_.tolist(),
        splits={},
    )
    pred = forward_backward(fitted, test.x)[0].argmax(-1)
    assert test.states is not None
    match = match_labels(pred, test.states, k)
    occ = hmm.get_stationary_distribution()
    return {
        "accuracy_mean": match.accuracy_mean,
        "accuracy_std": match.accuracy_std,
        "occupancy_l1": matched_l1(occ, truth, match.mapping),
        "train_loglik_per_step": loglik / len(flat),
        "fit_seconds": fit_seconds,
    }
