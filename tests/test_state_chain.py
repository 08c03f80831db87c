"""The model's state chain on data with known hidden states: from a rough decoder (means
nudged, noise twice too wide), Baum-Welch reaches the Bayes filter of the true chain."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from nld import markov
from nld.analysis import match_labels
from nld.data import bayes_limits, load_spec, sample
from nld.model import ModelConfig, NLDModel
from nld.state_chain import StateChain, fit_state_chain, spec_chain

POSITIONS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]])


def rough_model(means: np.ndarray) -> NLDModel:
    """A linear decoder through `means` (nudged) at POSITIONS, with a noise std of 2."""
    torch.manual_seed(0)
    dim = means.shape[1]
    model = NLDModel(ModelConfig(obs_dim=dim, latent_dim=2, decoder_noise="learned"))
    target = means + 0.3 * np.random.default_rng(0).normal(size=means.shape)
    affine = np.linalg.solve(np.c_[POSITIONS, np.ones(3)], target)  # [3, D]: W^T and b
    with torch.no_grad():
        model.decoder.mean.weight.copy_(torch.from_numpy(affine[:2].T))
        model.decoder.mean.bias.copy_(torch.from_numpy(affine[2]))
        model.decoder.log_std.fill_(np.log(2.0))
        model.x_mean.fill_(0.5)  # standardised space != raw space: the map back is tested
        model.x_std.fill_(2.0)
    return model


def test_decoder_emissions_are_in_raw_space():
    model = rough_model(np.zeros((3, 2)))
    with torch.no_grad():
        model.decoder.mean.weight.zero_()
        model.decoder.mean.bias.fill_(1.0)
        model.decoder.log_std.fill_(0.0)
    means, covs = model.emissions(POSITIONS)
    np.testing.assert_allclose(means, np.full((3, 2), 2.5))  # 1 * 2 + 0.5
    np.testing.assert_allclose(covs, np.broadcast_to(4 * np.eye(2), (3, 2, 2)), rtol=1e-6)


def test_refined_chain_reaches_the_bayes_filter_and_the_true_dwell():
    spec = load_spec("exp1")
    # the decoder works in standardised space: (x - 0.5) / 2
    model = rough_model((np.asarray(spec.means) - 0.5) / 2)
    train, test = sample(spec, 200, 200, seed=5), sample(spec, 100, 200, seed=6)
    limit = bayes_limits(spec, test.x, test.states)["online_filter_accuracy_mean"]

    def accuracy(labels: np.ndarray) -> float:
        return match_labels(labels, test.states, 3).accuracy_mean

    raw = fit_state_chain(model.emissions(POSITIONS), train.x, POSITIONS, rounds=0)
    chain = fit_state_chain(model.emissions(POSITIONS), train.x, POSITIONS)
    assert raw.rounds == 0 and 1 <= chain.rounds <= 10
    assert chain.evidence > raw.evidence
    assert accuracy(chain.labels(test.x)) == pytest.approx(limit, abs=0.005)
    assert accuracy(chain.labels(test.x)) > accuracy(raw.labels(test.x)) + 0.01
    np.testing.assert_allclose(chain.dwell_steps(), 20.0, rtol=0.15)
    np.testing.assert_allclose(chain.means, spec.means, atol=0.1)


def test_loglik_is_the_gaussian_density():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 3, 3))
    chain = StateChain(
        positions=np.zeros((2, 2)),
        means=rng.normal(size=(2, 3)),
        covariances=a @ a.transpose(0, 2, 1) + 0.5 * np.eye(3),
        log_init=np.log([0.5, 0.5]),
        log_trans=markov.sticky(2, 5.0),
        evidence=0.0,
        rounds=0,
    )
    x = rng.normal(size=(4, 6, 3))
    for k in range(2):
        ref = multivariate_normal(chain.means[k], chain.covariances[k]).logpdf(x.reshape(-1, 3))
        np.testing.assert_allclose(chain.loglik(x)[..., k].ravel(), ref, rtol=1e-10)


def test_reordered_renumbers_the_states():
    spec = load_spec("exp1")
    model = rough_model((np.asarray(spec.means) - 0.5) / 2)
    data = sample(spec, 20, 100, seed=7)
    chain = fit_state_chain(model.emissions(POSITIONS), data.x, POSITIONS, rounds=2)
    perm = np.array([2, 0, 1])  # new state j is old state perm[j]
    again = chain.reordered(perm)
    np.testing.assert_array_equal(again.positions, POSITIONS[perm])
    np.testing.assert_array_equal(np.argsort(perm)[chain.labels(data.x)], again.labels(data.x))
    np.testing.assert_allclose(again.dwell_steps(), chain.dwell_steps()[perm])


def test_stationary_is_the_time_share_of_the_chain():
    spec = load_spec("exp2")  # unequal shares: .45 / .35 / .20
    chain = spec_chain(spec)
    np.testing.assert_allclose(chain.stationary(), spec.stationary(), atol=1e-9)
    np.testing.assert_allclose(chain.reordered(np.array([2, 0, 1])).stationary(), [0.2, 0.45, 0.35])
