"""Regimes (nld.regimes) against chains whose metastable groups are known."""

import numpy as np

from nld import markov
from nld.regimes import regimes


def _pairs(fast: float, slow: float) -> np.ndarray:
    """Four states in two pairs: within a pair they switch with probability `fast` per step,
    between pairs with `slow`."""
    p = np.full((4, 4), slow / 2)
    for a, b in ((0, 1), (2, 3)):
        p[a, b] = p[b, a] = fast
    np.fill_diagonal(p, 0)
    np.fill_diagonal(p, 1 - p.sum(1))
    return p


def test_states_that_interconvert_fast_form_one_regime():
    found = regimes(_pairs(fast=0.2, slow=0.01))
    assert found.count == 2
    assert found.of_state[0] == found.of_state[1] != found.of_state[2] == found.of_state[3]
    assert found.timescales[0] / found.timescales[1] > 3  # the gap that decides it


def test_without_a_gap_every_state_is_its_own_regime():
    sticky = np.exp(markov.sticky(3, 19.0))  # the pinned benchmarks' kind: three alike states
    found = regimes(sticky)
    assert found.count == 3 and found.of_state.tolist() == [0, 1, 2]
    assert regimes(_pairs(fast=0.02, slow=0.02)).count == 4  # pairs no faster than the rest
    assert regimes(np.array([[0.9, 0.1], [0.2, 0.8]])).count == 2


def test_a_chain_that_is_not_reversible_is_grouped_by_its_reversible_part():
    """Baum-Welch fits chains that cycle (0 -> 1 -> 0 more often than 1 -> 0 -> 1 in a
    triangle); PCCA+ alone refuses them."""
    p = _pairs(fast=0.2, slow=0.01)
    p[0, 1], p[0, 0] = p[0, 1] + 0.05, p[0, 0] - 0.05  # 0 -> 1 more often than 1 -> 0
    p[2, 3], p[2, 2] = p[2, 3] + 0.04, p[2, 2] - 0.04
    p[0, 2], p[0, 0] = p[0, 2] + 0.01, p[0, 0] - 0.01  # a flux 0 -> 2 with no way back as large
    found = regimes(p)
    assert found.count == 2
    assert found.of_state[0] == found.of_state[1] != found.of_state[2] == found.of_state[3]
    assert np.isreal(found.timescales).all()


def test_timescales_are_deeptimes():
    from deeptime.markov.msm import MarkovStateModel

    p = _pairs(fast=0.2, slow=0.01)
    np.testing.assert_allclose(regimes(p).timescales, MarkovStateModel(p).timescales(), rtol=1e-9)


def test_a_state_the_chain_never_dwells_in_makes_no_gap():
    """Two pairs, and a fifth state left at once for anywhere (a minimum the head never names,
    fitted by pseudo-counts): its timescales are far below a step, and their gap to the rest
    is larger than the pairs' own, but not kinetics."""
    p = np.zeros((5, 5))
    p[:4, :4] = _pairs(fast=0.05, slow=0.02)
    p[:4, 4] = 1e-4
    p[:4, :4] -= np.diag(np.full(4, 1e-4))
    p[4, :4] = 0.25
    found = regimes(p)
    t = found.timescales
    assert t[-1] < 1.0 and t[-2] / t[-1] > t[0] / t[1] > 3
    assert found.count == 2
    assert found.of_state[0] == found.of_state[1] != found.of_state[2] == found.of_state[3]


def test_a_state_left_within_a_step_joins_a_regime():
    """Four states that each last 25 steps, and a fifth passed on the way between them (entered
    rarely, left within 1.2 steps on average, as a minimum between four arcs of a curved
    surface): three resolved timescales without a gap among them, and one far below a step.
    Four regimes, the fleeting state in one of them."""
    p = np.zeros((5, 5))
    p[:4, :4] = np.exp(markov.sticky(4, 25.0))
    p[:4, 4] = 1e-3
    p[:4, :4] -= np.diag(np.full(4, 1e-3))
    p[4] = [0.2, 0.2, 0.2, 0.22, 1 / 6]
    p[4] /= p[4].sum()
    found = regimes(p)
    assert (found.timescales[:3] > 10).all() and found.timescales[3] < 1.0
    assert found.count == 4
    assert sorted(set(found.of_state[:4].tolist())) == [0, 1, 2, 3]
    assert 0 <= found.of_state[4] < 4
    everything_fast = np.full((3, 3), 1 / 3)  # nothing lasts a step: one regime
    assert regimes(everything_fast).count == 1
