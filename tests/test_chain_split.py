"""The split test on data with known hidden states: silent for the true chain; where two
states were merged into one it finds that state, held-out sequences support the split,
splitting it recovers the Bayes filter, and the split resolves; where a state's observations
lie on an arc, its split pays but does not resolve; where only the fitted sequences hold two
states, the split does not pay."""

import numpy as np
import pytest

from nld import markov
from nld.analysis import match_labels
from nld.chain_split import HOLD_OUT, held_out, merge_states, split_state, split_test
from nld.data import bayes_limits, load_spec, sample
from nld.data.hmm import HMMSpec
from nld.state_chain import StateChain, baum_welch, spec_chain, subsample

SPEC = load_spec("exp1")


def merged_chain(x: np.ndarray) -> StateChain:
    """States 0 and 1 of the truth as one, refitted: what a chain over a landscape with one
    well for both would be."""
    return baum_welch(merge_states(spec_chain(SPEC), 0, 1), subsample(x, 0), rounds=10, tol=1e-5)


@pytest.fixture(scope="module")
def data():
    return sample(SPEC, 50, 200, seed=5), sample(SPEC, 100, 200, seed=6)


def test_split_state_keeps_a_chain():
    c = spec_chain(SPEC)
    s = split_state(c, 1)
    assert len(s.means) == 4
    np.testing.assert_allclose(np.exp(s.log_trans).sum(1), 1.0)
    np.testing.assert_allclose(np.exp(s.log_init).sum(), np.exp(c.log_init).sum())
    np.testing.assert_allclose((s.means[1] + s.means[3]) / 2, c.means[1])
    np.testing.assert_allclose(s.covariances[3], c.covariances[1])


def test_no_split_of_the_true_chain(data):
    train, _ = data
    split = split_test(spec_chain(SPEC), train.x)
    assert not split.preferred and split.gain < 0
    assert len(split.gains) == 3 and max(split.gains) == split.gain
    assert max(split.held_out_gains) < 0  # no split predicts the held-out sequences better
    assert split.steps + split.held_out_steps == train.x.shape[0] * train.x.shape[1]


def test_a_merged_state_is_found_and_splitting_it_recovers_the_filter(data):
    train, test = data
    split = split_test(merged_chain(train.x), train.x)
    assert split.preferred and split.state == 1  # merged states go last
    assert split.gains[1] == split.gain > 0 > split.gains[0]  # only the merged state pays
    assert split.held_out_gain > 0 and split.held_out_gains[0] < 0
    assert split.merged == (1,) and split.not_gaussian == ()  # its halves are Gaussian states
    limit = bayes_limits(SPEC, test.x, test.states)["online_filter_accuracy_mean"]
    accuracy = match_labels(split.chain.labels(test.x), test.states, 3).accuracy_mean
    assert accuracy == pytest.approx(limit, abs=0.01)
    assert split.summary()["bic_gain"] == split.gain > 0


def test_held_out_steps_are_every_fifth_sequence_or_the_end_of_each():
    xs = np.arange(10 * 20 * 1, dtype=float).reshape(10, 20, 1)
    fit, held = held_out(xs)
    assert held.shape == (10 // HOLD_OUT, 20, 1) and fit.shape == (10 - 10 // HOLD_OUT, 20, 1)
    np.testing.assert_array_equal(held[:, 0, 0], xs[HOLD_OUT - 1 :: HOLD_OUT, 0, 0])
    fit, held = held_out(xs[:2])
    assert fit.shape == (2, 16, 1) and held.shape == (2, 4, 1)
    np.testing.assert_array_equal(np.concatenate([fit, held], axis=1), xs[:2])
    fit, held = held_out(xs[:2, :5])  # too little to hold any out: no split can pay
    assert fit.shape == (2, 5, 1) and held.size == 0
    split = split_test(spec_chain(SPEC), sample(SPEC, 2, 5, seed=0).x)
    assert split.held_out_steps == 0 and not split.preferred and split.merged == ()


def test_two_states_in_the_fitted_sequences_only_do_not_pay(data):
    """Where state 1 of the merged chain holds two states in the fitted sequences but is one
    Gaussian in the held-out ones (there its observations are drawn from the merged state's
    Gaussian), the BIC prefers the split and the held-out likelihood does not: the split is
    not acted on."""
    train, _ = data
    x, merged = train.x.copy(), merged_chain(train.x)
    held = np.arange(len(x)) % HOLD_OUT == HOLD_OUT - 1
    pair = np.isin(train.states, (0, 1)) & held[:, None]
    draws = np.random.default_rng(0).multivariate_normal(
        merged.means[-1], merged.covariances[-1], int(pair.sum())
    )
    x[pair] = draws
    split = split_test(merged, x)
    assert split.gain > 0 and split.state == 1 and split.held_out_gain < 0
    assert not split.preferred and split.merged == () and split.not_gaussian == ()


def test_the_split_reported_is_the_best_that_pays():
    """Two wells each holding two states: the far pair's split gains the most by the BIC but is
    one Gaussian in the held-out sequences (there its observations are drawn from the merged
    state's Gaussian), the near pair's split pays and resolves. The test reports the one that
    pays, so its verdict, its warnings and what training acts on agree."""
    sticky = np.exp(markov.sticky(4, 20.0)).tolist()
    spec = HMMSpec(
        name="two-pairs",
        transition_matrix=sticky,
        initial_distribution=[0.25] * 4,
        means=[[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0], [0.0, 8.0]],
        covariances=[np.eye(2).tolist()] * 4,
        splits={},
    )
    train = sample(spec, 50, 200, seed=0)
    pairs = merge_states(merge_states(spec_chain(spec), 0, 1), 0, 1)  # [far pair, near pair]
    chain = baum_welch(pairs, subsample(train.x, 0), rounds=10, tol=1e-5)
    x = train.x.copy()
    held = np.arange(len(x)) % HOLD_OUT == HOLD_OUT - 1
    far = np.isin(train.states, (0, 1)) & held[:, None]
    x[far] = np.random.default_rng(0).multivariate_normal(
        chain.means[0], chain.covariances[0], int(far.sum())
    )
    split = split_test(chain, x)
    assert split.gains[0] > split.gains[1] > 0  # the BIC prefers splitting the far pair most
    assert split.held_out_gains[0] < 0 < split.held_out_gains[1]
    assert split.merged == (1,) and split.not_gaussian == ()
    assert split.preferred and split.state == 1 and split.gain == split.gains[1]


def arc_and_blob(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two states switching every 20 steps on average: state 0 emits N((0, -3), 0.3^2 I),
    state 1 points of a half circle of radius 3 (the angle uniform) with noise 0.1: not one
    Gaussian, and neither is any part of it. x [40, 200, 2], states [40, 200]."""
    rng = np.random.default_rng(seed)
    states = np.zeros((40, 200), dtype=int)
    for t in range(1, 200):
        switch = rng.random(40) < 0.05
        states[:, t] = np.where(switch, 1 - states[:, t - 1], states[:, t - 1])
    angle = rng.uniform(0, np.pi, states.shape)
    arc = 3 * np.stack([np.cos(angle), np.sin(angle)], -1) + 0.1 * rng.normal(size=(40, 200, 2))
    blob = np.array([0.0, -3.0]) + 0.3 * rng.normal(size=(40, 200, 2))
    return np.where(states[..., None] == 1, arc, blob), states


def test_a_state_on_an_arc_pays_for_a_split_that_does_not_resolve():
    x, states = arc_and_blob(seed=0)
    flat, lab = x.reshape(-1, 2), states.reshape(-1)
    means = np.stack([flat[lab == j].mean(0) for j in (0, 1)])
    covs = np.stack([np.cov(flat[lab == j].T) for j in (0, 1)])
    chain = StateChain(
        np.zeros((2, 1)), means, covs, np.full(2, -np.log(2)), markov.sticky(2, 20.0), -np.inf, 0
    )
    split = split_test(chain, x)
    assert split.preferred and split.state == 1 and split.gains[0] < 0
    assert split.merged == () and split.not_gaussian == (1,)
    record = split.summary()
    assert record["not_gaussian"] == [1] and len(record["positions"]) == 2
