"""Regimes: the metastable groups of a model's states.

The minima of the energy are the states the model can tell apart; where some of them
interconvert fast and the group they form lasts long, the group is what a user calls a regime
(the sub-states of one speaker, the phases of one periodic motion). As in Markov state models,
the state chain's kinetics say which: the implied timescales t_k = -1 / ln |lambda_k| of its
transition matrix (k = 2..K, in steps, slowest first) have a gap after the (m - 1)-th when m
regimes each last much longer than their states switch inside them. The number of regimes is
the m of the largest gap of at least GAP. PCCA+ (deeptime) then assigns each state to a
regime. Only timescales of at least one step count: a chain over observation steps does not
resolve faster processes. A state the chain leaves within a step or two (a minimum passed on
the way between two others, one the basin head never names, fitted by pseudo-counts alone)
adds a timescale below a step: its gap to the rest says nothing about the data, and it is no
regime of its own. So without a gap there are as many regimes as resolved processes (the
resolved timescales plus one): every state its own where all timescales are resolved, and
otherwise the fleeting states joined by PCCA+ to the regimes they pass between.

PCCA+ needs a reversible chain, and a chain fitted by Baum-Welch need not be one: both steps
use its reversible part, the chain whose flux between two states is the mean of the fitted
chain's fluxes in the two directions (the same stationary distribution, real eigenvalues).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nld.data.hmm import stationary_distribution

GAP = 3.0  # a timescale this many times the next one separates slow regimes from fast states
RESOLVED = 1.0  # steps: the shortest timescale a gap is measured to


@dataclass(frozen=True)
class Regimes:
    count: int  # m
    of_state: np.ndarray  # [K] the regime of each state
    timescales: np.ndarray  # [K - 1] implied timescales in steps, slowest first


def regimes(transition_matrix: np.ndarray, gap: float = GAP) -> Regimes:
    """The regimes of a chain's states from its transition matrix [K, K] (rows sum to 1)."""
    trans = reversible_part(np.asarray(transition_matrix, dtype=np.float64))
    k = len(trans)
    times = _timescales(trans)
    if k < 3:  # two states are two regimes, or one state one
        return Regimes(k, np.arange(k), times)
    resolved = times[times >= RESOLVED]  # times are sorted, slowest first
    ratios = resolved[:-1] / resolved[1:]  # ratios[j]: t_{j+2} / t_{j+3}
    # A gap after the (m - 1)-th timescale: m regimes; without one, the resolved processes
    # (fleeting states join them).
    gapped = len(ratios) and ratios.max() >= gap
    m = int(np.argmax(ratios)) + 2 if gapped else len(resolved) + 1
    if m == k:
        return Regimes(k, np.arange(k), times)
    if m == 1:  # nothing lasts a step
        return Regimes(1, np.zeros(k, dtype=np.int64), times)
    # Imported only here: it takes a second, and a chain of regimes of one state does not need it.
    from deeptime.markov import pcca

    return Regimes(m, np.asarray(pcca(trans, m).assignments, dtype=np.int64), times)


def reversible_part(trans: np.ndarray) -> np.ndarray:
    """The reversible chain [K, K] whose flux i -> j is the mean of `trans`'s fluxes i -> j
    and j -> i, pi_i P_ij (pi: the stationary distribution of `trans`)."""
    pi = stationary_distribution(trans)
    flux = pi[:, None] * trans
    flux = (flux + flux.T) / 2
    return flux / flux.sum(1, keepdims=True)


def _timescales(trans: np.ndarray) -> np.ndarray:
    """-1 / ln |lambda_k| of a reversible chain, k = 2..K, slowest first. Its eigenvalues are
    those of the symmetric matrix D P D^-1 with D = diag(sqrt(pi))."""
    if len(trans) < 2:
        return np.empty(0)
    root = np.sqrt(stationary_distribution(trans))
    sym = root[:, None] * trans / root[None, :]
    moduli = np.sort(np.abs(np.linalg.eigvalsh((sym + sym.T) / 2)))[::-1][1:]
    return -1.0 / np.log(np.clip(moduli, 1e-300, 1 - 1e-15))
