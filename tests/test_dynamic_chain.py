"""The dynamic state chain (AR(1) emissions) on regimes that differ only by their dynamics:
three 2-D AR(1) processes with the same N(0, I) marginal, switching by a Markov chain. The
true chain's filter is the Bayes limit; from classes that are wrong on 40% of the steps,
Baum-Welch reaches it, where a Gaussian chain cannot tell the regimes apart."""

import numpy as np
import pytest
import torch

from nld import markov, state_chain
from nld.analysis import match_labels
from nld.state_chain import StateChain, fit_dynamic_chain, from_tensors, to_tensors

PHI = np.array([0.95, 0.0, -0.9])  # each regime's lag-one correlation
DWELL = 40.0
POSITIONS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]])


def regimes(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Observations [n, length, 2] and their regimes [n, length]."""
    rng = np.random.default_rng(seed)
    trans = np.exp(markov.sticky(3, DWELL))
    states = np.empty((n, length), dtype=np.int64)
    states[:, 0] = rng.integers(3, size=n)
    x = np.empty((n, length, 2))
    x[:, 0] = rng.normal(size=(n, 2))
    for t in range(1, length):
        u = rng.random(n)[:, None]
        states[:, t] = (u > np.cumsum(trans[states[:, t - 1]], axis=1)).sum(1)
        phi = PHI[states[:, t]][:, None]
        x[:, t] = phi * x[:, t - 1] + np.sqrt(1 - phi**2) * rng.normal(size=(n, 2))
    return x, states


def true_chain() -> StateChain:
    eye = np.eye(2)
    return StateChain(
        POSITIONS,
        np.zeros((3, 2)),
        np.stack([(1 - p**2) * eye for p in PHI]),
        np.full(3, -np.log(3)),
        markov.sticky(3, DWELL),
        -np.inf,
        0,
        dynamics=np.stack([p * eye for p in PHI]),
        marginals=np.stack([eye] * 3),
    )


@pytest.fixture(scope="module")
def data():
    return regimes(120, 150, seed=1), regimes(60, 150, seed=2)


@pytest.fixture(scope="module")
def fitted(data):
    (x, states), _ = data
    rng = np.random.default_rng(0)
    wrong = rng.random(states.shape) < 0.4
    rough = np.where(wrong, rng.integers(3, size=states.shape), states)
    return fit_dynamic_chain(x, rough, POSITIONS)


def accuracy(labels: np.ndarray, states: np.ndarray) -> float:
    return match_labels(labels, states, 3).accuracy_mean


def test_dynamic_chain_reaches_the_bayes_filter(data, fitted):
    _, (x, states) = data
    limit = accuracy(true_chain().labels(x), states)
    assert limit > 0.85  # the regimes can be told apart from the dynamics alone
    assert accuracy(fitted.labels(x), states) == pytest.approx(limit, abs=0.01)
    assert fitted.dynamic and fitted.rounds >= 1
    np.testing.assert_allclose(
        np.diagonal(fitted.dynamics, axis1=1, axis2=2), np.c_[PHI, PHI], atol=0.05
    )
    np.testing.assert_allclose(fitted.dwell_steps(), DWELL, rtol=0.25)


def test_a_gaussian_chain_cannot_tell_these_regimes_apart(data):
    _, (x, states) = data
    gaussian = StateChain(
        *(getattr(true_chain(), f) for f in ("positions", "means")),
        np.stack([np.eye(2)] * 3),
        true_chain().log_init,
        true_chain().log_trans,
        -np.inf,
        0,
    )
    assert accuracy(gaussian.labels(x), states) < 0.5


def test_filter_continues_across_chunks(data, fitted):
    _, (x, _) = data
    whole, evidence, _ = fitted.filter(x)
    first, e1, carried = fitted.filter(x[:, :60])
    assert carried.shape == (len(x), 3 + 2)  # the belief and the last observation
    rest, e2, _ = fitted.filter(x[:, 60:], carried)
    np.testing.assert_allclose(np.concatenate([first, rest], 1), whole, atol=1e-10)
    np.testing.assert_allclose(e1 + e2, evidence, rtol=1e-10)


def test_the_first_step_uses_the_marginal(fitted):
    x = np.random.default_rng(3).normal(size=(4, 1, 2))
    ll = fitted.loglik(x)[:, 0]
    for k in range(3):
        cov = fitted.marginals[k]
        d = x[:, 0] - fitted.means[k]
        want = -0.5 * (
            np.einsum("nd,dc,nc->n", d, np.linalg.inv(cov), d)
            + np.linalg.slogdet(2 * np.pi * cov)[1]
        )
        np.testing.assert_allclose(ll[:, k], want, rtol=1e-10)


def test_dynamic_chain_round_trips_and_reorders(fitted, data):
    _, (x, _) = data
    back = from_tensors(to_tensors(fitted), obs_dim=2, latent_dim=2)
    assert back.dynamic
    np.testing.assert_array_equal(back.loglik(x), fitted.loglik(x))
    perm = np.array([2, 0, 1])
    np.testing.assert_allclose(fitted.reordered(perm).loglik(x), fitted.loglik(x)[..., perm])
    gaussian = to_tensors(
        StateChain(
            *(
                getattr(fitted, f)
                for f in (
                    "positions",
                    "means",
                    "covariances",
                    "log_init",
                    "log_trans",
                    "evidence",
                    "rounds",
                )
            )
        )
    )
    assert not from_tensors(gaussian, 2, 2).dynamic  # a checkpoint of a Gaussian chain
    half = gaussian | {state_chain.PREFIX + "dynamics": torch.zeros(3, 2, 2)}
    with pytest.raises(ValueError, match="state chain tensors"):
        from_tensors(half, 2, 2)
    broken = to_tensors(fitted) | {state_chain.PREFIX + "marginals": -torch.eye(2).repeat(3, 1, 1)}
    with pytest.raises(ValueError, match="marginals are not positive definite"):
        from_tensors(broken, 2, 2)


def test_the_basin_head_stage_labels_by_the_dynamic_chain_where_it_keeps_the_regimes(data):
    """try_dynamic keeps the dynamic chain where its held-out labels keep more of the slow
    dynamics than the head's classes: classes wrong on 45% of the steps (a head that cannot
    tell these regimes apart), not the true regimes themselves."""
    from nld.fitted import Fitted
    from nld.fitting.basin_head import try_dynamic

    (x, states), _ = data
    rng = np.random.default_rng(4)
    wrong = rng.random(states.shape) < 0.45
    for classes, keep in (
        (np.where(wrong, rng.integers(3, size=states.shape), states), True),
        (states, False),
    ):
        fitted = Fitted(torch.from_numpy(POSITIONS).float())
        record = try_dynamic(fitted, x, classes, seed=0)
        scores = record["heldout_slow_score"]
        assert record["kept"] is keep and (fitted.chain is not None) is keep, scores
        if keep:
            assert fitted.chain.dynamic and scores["dynamic chain"] > 1.5 * scores["basin head"]
            np.testing.assert_allclose(fitted.chain.dwell_steps(), DWELL, rtol=0.25)
