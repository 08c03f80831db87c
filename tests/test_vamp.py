"""The VAMP-2 score of labels against its closed form on a known chain and against deeptime."""

import numpy as np
import pytest

from nld.vamp import slow_score, vamp2

K = 3
STAY = 0.96  # a sticky chain: eigenvalues 1 and STAY - (1 - STAY) / 2 twice


def chain_labels(n: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    trans = np.full((K, K), (1 - STAY) / 2)
    np.fill_diagonal(trans, STAY)
    labels = np.zeros((n, length), dtype=np.int64)
    labels[:, 0] = rng.integers(K, size=n)
    for t in range(1, length):
        u = rng.random(n)[:, None]
        labels[:, t] = (u > np.cumsum(trans[labels[:, t - 1]], axis=1)).sum(1)
    return labels


@pytest.fixture(scope="module")
def labels():
    return chain_labels(200, 400, seed=0)


def test_vamp2_of_a_chains_own_states_is_one_plus_its_eigenvalues_squared(labels):
    slow = STAY - (1 - STAY) / 2
    for lag in (1, 5, 20):
        assert vamp2(labels, K, lag) == pytest.approx(1 + 2 * slow ** (2 * lag), abs=0.03)


def test_vamp2_is_deeptimes_score(labels):
    from deeptime.decomposition import VAMP

    trajectories = [np.eye(K)[row] for row in labels[:20]]
    for lag in (1, 7):
        model = VAMP(lagtime=lag).fit(trajectories).fetch_model()
        assert vamp2(labels[:20], K, lag) == pytest.approx(model.score(r=2), rel=1e-9)


def test_labels_that_blur_the_states_keep_less_of_the_slow_dynamics(labels):
    rng = np.random.default_rng(1)
    wrong = rng.random(labels.shape) < 0.3
    blurred = np.where(wrong, rng.integers(K, size=labels.shape), labels)
    merged = np.minimum(labels, 1)  # states 1 and 2 as one class
    truth = slow_score(labels, K)
    # each slow process counts about half its timescale, summed over the lags
    slow = STAY - (1 - STAY) / 2
    assert truth == pytest.approx(2 * sum(slow ** (2 * t) for t in range(1, 201)), rel=0.05)
    assert slow_score(blurred, K) < 0.7 * truth
    assert slow_score(merged, K) < 0.6 * truth
    # a class that never occurs adds nothing
    assert slow_score(labels, K + 2) == pytest.approx(truth)


def test_a_lag_beyond_the_recordings_is_refused(labels):
    with pytest.raises(ValueError, match=r"lag 400 is not in 1\.\.399"):
        vamp2(labels, K, 400)
