"""The basin head (nld.fitting.basin_head, nld.inference.head_order / basin_labels)."""

import shutil

import numpy as np
import torch

from nld import checkpoint, state_chain
from nld.analysis import Minimum
from nld.fitted import Fitted
from nld.fitting import basin_head
from nld.fitting.config import load_config
from nld.fitting.trainer import train
from nld.inference import (
    LABELS_FROM_CHAIN,
    LABELS_FROM_HEAD,
    LABELS_FROM_POSITION,
    basin_labels,
    head_order,
    read_path,
)
from nld.model import ModelConfig, NLDModel
from training.evaluate import evaluate


def _minimum(position):
    return Minimum(np.asarray(position, dtype=float), 0.0, np.ones(2), np.eye(2))


def _fitted(minima) -> Fitted:
    fitted = Fitted.none(ModelConfig(obs_dim=3, latent_dim=2, basin_head=True))
    fitted.set_minima(torch.tensor(minima))
    return fitted


def test_head_order_finds_each_class_among_minima_found_in_another_order():
    fitted = _fitted([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    found = [_minimum([0.0, 3.0]), _minimum([0.0, 0.001]), _minimum([2.0, 0.0])]
    order = head_order(fitted, found)
    assert order is not None and order.tolist() == [1, 2, 0]
    classes = np.array([[0, 1, 2, 2]])
    labels, source = basin_labels(order, classes, np.zeros((1, 4, 2)), lambda z: None)
    assert source == LABELS_FROM_HEAD and labels.tolist() == [[1, 2, 0, 0]]


def test_without_a_usable_head_labels_are_the_basins_of_the_positions():
    fitted = _fitted([[0.0, 0.0], [2.0, 0.0]])
    other = [_minimum([0.0, 0.0]), _minimum([2.0, 0.0]), _minimum([5.0, 5.0])]
    assert head_order(fitted, other) is None  # another search found a third minimum
    moved = [_minimum([0.0, 0.0]), _minimum([2.0, 1.0])]
    assert head_order(fitted, moved) is None  # a minimum is not where the head's was
    unfitted = Fitted.none(ModelConfig(obs_dim=3, latent_dim=2, basin_head=True))
    assert head_order(unfitted, moved) is None and unfitted.minima.shape == (0, 2)
    positions = np.zeros((1, 3, 2))
    labels, source = basin_labels(None, np.zeros((1, 3), int), positions, lambda z: z[..., 0] + 7)
    assert source == LABELS_FROM_POSITION and labels.tolist() == [[7, 7, 7]]


def test_trained_head_labels_the_known_states_and_survives_the_checkpoint(smoke_run, easy_data):
    run, _ = smoke_run
    _, meta = checkpoint.read_config(run)
    fit = meta["basin_head"]
    model, fitted = checkpoint.load(run)  # strict: the head and its minima are in the weights
    assert fit["classes"] == fitted.classes >= 2
    assert fit["agreement"] > 0.9  # well-separated states: head and position agree
    res = evaluate(model, fitted, easy_data[1]).record
    assert res["labels_from"] == LABELS_FROM_CHAIN  # the head's classes, refined by the chain
    assert res["n_minima"] == 2 and res["accuracy_mean"] > 0.9
    chain = meta["basin_head"]["chain"]
    assert chain["kept"] and chain["agreement"] > 0.9
    np.testing.assert_allclose(chain["dwell_steps"], 20.0, rtol=0.2)  # stay 0.95 in the data
    assert fitted.chain is not None  # saved in the weights file, beside the network
    # reported with its states in the order of the minima found
    minima = np.array([m["position"] for m in res["minima"]])
    np.testing.assert_allclose(res["chain"]["positions"], minima, atol=0.05)
    np.testing.assert_allclose(fitted.chain.dwell_steps(), chain["dwell_steps"])
    fitted.set_chain(None)  # without it: the head's own classes
    assert evaluate(model, fitted, easy_data[1]).record["labels_from"] == LABELS_FROM_HEAD
    _, classes = read_path(model, fitted, easy_data[1].x[:2])
    assert classes is not None and classes.shape == (2, easy_data[1].length)


def test_resuming_a_finished_run_keeps_its_state_chain(smoke_run, easy_data, tmp_path):
    # The trainer's own state carries the chain: a resume that saves again must not drop it.
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    before = checkpoint.load(run)[1].chain
    _, fitted = train(load_config("smoke"), easy_data[0], run, resume=True, progress_bar=False)
    after = checkpoint.load(run)[1].chain
    assert before is not None and fitted.chain is not None and after is not None
    np.testing.assert_array_equal(after.covariances, before.covariances)
    np.testing.assert_array_equal(after.log_trans, before.log_trans)


def test_no_chain_above_its_dimension_cap(monkeypatch):
    monkeypatch.setattr(state_chain, "MAX_DIM", 2)
    model = NLDModel(ModelConfig(obs_dim=3, latent_dim=2, basin_head=True))  # 3 observed dims
    fitted = _fitted([[-1.0, 0.0], [1.0, 0.0]])
    x, classes = torch.randn(2, 10, 3), np.zeros((2, 10), int)
    fit = basin_head.fit_chain(model, fitted, x, classes, seed=0)
    assert not fit["kept"] and "3 observed dimensions" in fit["why"] and fitted.chain is None
