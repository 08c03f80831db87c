"""The split test on data with known hidden states: silent for the true chain, and where two
states were merged into one it finds that state, and splitting it recovers the Bayes filter."""

import numpy as np
import pytest

from nld.analysis import match_labels
from nld.chain_split import merge_states, split_state, split_test
from nld.data import bayes_limits, load_spec, sample
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


def test_a_merged_state_is_found_and_splitting_it_recovers_the_filter(data):
    train, test = data
    split = split_test(merged_chain(train.x), train.x)
    assert split.preferred and split.state == 1  # merged states go last
    assert split.gains[1] == split.gain > 0 > split.gains[0]  # only the merged state pays
    limit = bayes_limits(SPEC, test.x, test.states)["online_filter_accuracy_mean"]
    accuracy = match_labels(split.chain.labels(test.x), test.states, 3).accuracy_mean
    assert accuracy == pytest.approx(limit, abs=0.01)
    assert split.summary()["bic_gain"] == split.gain > 0
