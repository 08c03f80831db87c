"""Regimes: the metastable groups of a model's states.

The minima of the energy are the states the model can tell apart; where some of them
interconvert fast and the group they form lasts long, the group is what a user calls a regime
(the sub-states of one speaker, the phases of one periodic motion). As in Markov state models,
the state chain's kinetics say which: the implied timescales t_k = -1 / ln |lambda_k| of its
transition matrix (k = 2..K, in steps, slowest first) have a gap after the (m - 1)-th when m
regimes each last much longer than their states switch inside them. The number of regimes is
the m of the largest gap of at least GAP; without one every state is its own regime. PCCA+
(deeptime) then assigns each state to a regime.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

GAP = 3.0  # a timescale this many times the next one separates slow regimes from fast states


@dataclass(frozen=True)
class Regimes:
    count: int  # m
    of_state: np.ndarray  # [K] the regime of each state
    timescales: np.ndarray  # [K - 1] implied timescales in steps, slowest first


def regimes(transition_matrix: np.ndarray, gap: float = GAP) -> Regimes:
    """The regimes of a chain's states from its transition matrix [K, K] (rows sum to 1)."""
    from deeptime.markov import pcca

    trans = np.asarray(transition_matrix, dtype=np.float64)
    k = len(trans)
    times = _timescales(trans)
    if k < 3:  # two states are two regimes, or one state one
        return Regimes(k, np.arange(k), times)
    ratios = times[:-1] / np.maximum(times[1:], 1e-12)  # ratios[j]: t_{j+2} / t_{j+3}
    best = int(np.argmax(ratios))
    if ratios[best] < gap:
        return Regimes(k, np.arange(k), times)
    m = best + 2  # a gap after the (m - 1)-th timescale: m regimes
    return Regimes(m, np.asarray(pcca(trans, m).assignments, dtype=np.int64), times)


def _timescales(trans: np.ndarray) -> np.ndarray:
    """-1 / ln |lambda_k|, k = 2..K, slowest first. A chain fitted by Baum-Welch need not be
    reversible, so some eigenvalues can be complex: their modulus is the decay rate wanted,
    and deeptime's warning about them is not for the user."""
    if len(trans) < 2:
        return np.empty(0)
    from deeptime.markov.msm import MarkovStateModel

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using eigenvalues with non-zero imaginary")
        return np.asarray(MarkovStateModel(trans).timescales())
