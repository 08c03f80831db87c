"""How much of the slow dynamics a labelling of recordings keeps: the VAMP-2 score of its
classes' indicator functions, summed over lags.

The variational approach to Markov processes (VAMP: Wu and Noe, J Nonlinear Sci 2020) scores a
set of functions of the state by the squared singular values of the process' propagator
projected on them, at a lag tau: a set that spans the slow processes scores higher, and the
true eigenfunctions score highest. For the indicators of K classes the projection is the
classes' transition counts at lag tau, C_ij = #{t: c_t = i, c_{t+tau} = j}, scaled by how
often each class occurs at the start (n_i) and at the end (m_j) of those pairs:

    VAMP-2(tau) = || diag(n)^-1/2 C diag(m)^-1/2 ||_F^2   (1 for the constant, + one term per
                                                            slower process, each ~ e^(-2 tau / t_k))

Two labellings with the same number of classes are compared by the sum over lags of VAMP-2
minus the constant's 1: each process counts about its timescale t_k / 2, so processes slower
than the classes' own switching weigh most, and those are the regimes a user means. Labels
that confuse two regimes with one lose their slow process and its score; labels that keep a
regime's sub-states apart keep it. (deeptime's VAMP gives the same score for one lag:
tests/test_vamp.py.)
"""

from __future__ import annotations

import numpy as np


def vamp2(labels: np.ndarray, k: int, lag: int) -> float:
    """VAMP-2 score at `lag` steps of the indicator functions of labels [N, T] (in 0..k-1),
    the constant included: classes that never occur are left out."""
    labels = np.asarray(labels, dtype=np.int64)
    if not 0 < lag < labels.shape[1]:
        raise ValueError(f"lag {lag} is not in 1..{labels.shape[1] - 1}")
    start, end = labels[:, :-lag].ravel(), labels[:, lag:].ravel()
    counts = np.bincount(start * k + end, minlength=k * k).reshape(k, k).astype(np.float64)
    n, m = counts.sum(1), counts.sum(0)
    counts = counts[n > 0][:, m > 0] / np.sqrt(np.outer(n[n > 0], m[m > 0]))
    return float((np.linalg.svd(counts, compute_uv=False) ** 2).sum())


def slow_score(labels: np.ndarray, k: int, max_lag: int | None = None) -> float:
    """The sum of VAMP-2 - 1 over lags 1..max_lag (default: half the recordings' length) of
    labels [N, T]: about half the summed timescales of the processes they keep, in steps."""
    length = labels.shape[1]
    top = max(1, length // 2) if max_lag is None else min(max_lag, length - 1)
    return sum(vamp2(labels, k, lag) - 1.0 for lag in range(1, top + 1))
