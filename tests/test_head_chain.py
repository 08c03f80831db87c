"""The chain on the basin head's classes, on data with known hidden states: from a head that
is right 80% of the time, Baum-Welch finds how reliable it is and how long the states last,
and its smoothed labels reach those of the true chain."""

import dataclasses

import numpy as np
import pytest
import torch

from nld import checkpoint, markov
from nld.analysis import match_labels
from nld.data import load_spec, sample
from nld.errors import CheckpointError
from nld.fitted import Fitted
from nld.head_chain import HeadChain, fit_head_chain
from nld.model import ModelConfig, NLDModel

RIGHT = 0.8


def noisy_head(states: np.ndarray, seed: int) -> np.ndarray:
    """The true state with probability RIGHT, else one of the two others at random."""
    rng = np.random.default_rng(seed)
    wrong = (states + rng.integers(1, 3, size=states.shape)) % 3
    return np.where(rng.random(states.shape) < RIGHT, states, wrong)


def test_the_fitted_chain_smooths_as_the_true_one():
    spec = load_spec("exp1")
    train, test = sample(spec, 200, 200, seed=5), sample(spec, 100, 200, seed=6)
    assert train.states is not None and test.states is not None
    chain = fit_head_chain(noisy_head(train.states, 0), 3)
    confusion = np.full((3, 3), (1 - RIGHT) / 2)
    np.fill_diagonal(confusion, RIGHT)
    true_trans = np.asarray(spec.transition_matrix)
    truth = HeadChain(confusion, np.log(np.full(3, 1 / 3)), np.log(true_trans), 0.0, 0)

    def accuracy(labels: np.ndarray) -> float:
        return match_labels(labels, test.states, 3).accuracy_mean

    said = noisy_head(test.states, 1)
    best = accuracy(truth.smooth(said).argmax(-1))
    assert accuracy(said) == pytest.approx(RIGHT, abs=0.01)
    assert best > RIGHT + 0.1  # what smoothing is for
    assert accuracy(chain.smooth(said).argmax(-1)) == pytest.approx(best, abs=0.005)
    assert accuracy(chain.viterbi(said)) > RIGHT + 0.1
    np.testing.assert_allclose(np.diag(chain.confusion), RIGHT, atol=0.02)
    true_dwell = markov.dwell_steps(np.log(true_trans))
    np.testing.assert_allclose(chain.dwell_steps(), true_dwell, rtol=0.15)
    assert 1 <= chain.rounds <= 50 and np.isfinite(chain.evidence)


def test_classes_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"classes must lie in 0\.\.1"):
        fit_head_chain(np.array([[0, 1, 2]]), 2)


def _fitted_model() -> tuple[NLDModel, Fitted]:
    torch.manual_seed(0)
    model = NLDModel(ModelConfig(obs_dim=3, latent_dim=2, basin_head=True))
    fitted = Fitted.none(model.cfg)
    fitted.set_minima(torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    said = np.random.default_rng(0).integers(0, 3, size=(4, 50))
    fitted.set_head_chain(fit_head_chain(said, 3))
    return model, fitted


def test_the_head_chain_round_trips_in_the_weights_file_and_is_checked(tmp_path):
    model, fitted = _fitted_model()
    checkpoint.save(tmp_path, model, fitted)
    _, stored = checkpoint.load(tmp_path)
    assert stored.chain is None and stored.head_chain is not None
    for f in dataclasses.fields(HeadChain):
        np.testing.assert_array_equal(
            getattr(stored.head_chain, f.name), getattr(fitted.head_chain, f.name)
        )
    good = fitted.head_chain
    assert good is not None
    for chain, message in (
        (dataclasses.replace(good, log_init=good.log_init[:2]), r"log_init has shape \(2,\)"),
        (dataclasses.replace(good, log_trans=good.log_trans + 1.0), "are not distributions"),
        (dataclasses.replace(good, confusion=-good.confusion), "are not distributions"),
        (dataclasses.replace(good, log_init=good.log_init * np.inf), "non-finite"),
    ):
        fitted.head_chain = chain  # assigned without set_head_chain's check, as a bad file has it
        checkpoint.save(tmp_path, model, fitted)
        with pytest.raises(CheckpointError, match=message):
            checkpoint.load(tmp_path)


def test_the_head_chain_must_have_the_heads_classes_and_goes_with_new_minima():
    _, fitted = _fitted_model()
    good = fitted.head_chain
    assert good is not None
    with pytest.raises(ValueError, match="head chain has 2 states, the basin head 3"):
        fitted.set_head_chain(dataclasses.replace(good, log_init=good.log_init[:2]))
    fitted.set_minima(torch.zeros(2, 2))
    assert fitted.head_chain is None
