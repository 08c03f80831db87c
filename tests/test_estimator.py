"""The estimator API: fit / predict / predict_proba / transform / score / save / load."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest
import torch

import nld
from nld import estimator
from nld.data import sample
from nld.data.recordings import as_recordings, training_set
from nld.errors import ConfigError, DataError, NLDError
from tests.fixtures import easy_spec


@pytest.fixture(scope="module")
def data():
    return sample(easy_spec(), 60, 100, seed=0)


@pytest.fixture(scope="module")
def fitted(data):
    return nld.NLD("smoke", threads=1, progress=False).fit(data.x)


def test_fit_finds_the_states_and_labels_them(fitted, data):
    assert fitted.n_states_ == 2
    assert fitted.minima_.shape == (2, 2)
    labels = fitted.predict(data.x)
    assert labels.shape == data.x.shape[:2]
    # Labels index the minima; up to the names of the states they are the hidden states.
    agree = (labels == data.states).mean()
    assert max(agree, 1 - agree) > 0.9


def test_probabilities_agree_with_labels(fitted, data):
    p = fitted.predict_proba(data.x[:5])
    assert p.shape == (5, 100, 2)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(p.argmax(-1), fitted.predict(data.x[:5]))


def test_offline_labels_smooth_with_the_state_chain(fitted, data):
    assert fitted.chain_ is not None
    online = fitted.predict_proba(data.x[:5])
    offline = fitted.predict_proba(data.x[:5], online=False)
    # The last step has no future: smoothing and filtering agree there, and differ before.
    np.testing.assert_allclose(offline[:, -1], online[:, -1], atol=1e-9)
    assert np.abs(offline - online).max() > 1e-3
    np.testing.assert_array_equal(fitted.predict(data.x[:5], online=False), offline.argmax(-1))


def test_outputs_follow_the_input_shape(fitted, data):
    one = data.x[0]
    assert fitted.predict(one).shape == (100,)
    assert fitted.transform(one).shape == (100, 2)
    ragged = fitted.predict([data.x[0], data.x[1][:30]])
    assert [a.shape for a in ragged] == [(100,), (30,)]
    # A recording labels the same alone as in a batch (online labels are causal per row).
    np.testing.assert_array_equal(ragged[0], fitted.predict(data.x[:2])[0])
    assert np.isfinite(fitted.score(data.x[:10]))


def test_save_and_load_predict_identically(fitted, data, tmp_path):
    run = fitted.save(tmp_path / "run")
    assert sorted(p.name for p in run.iterdir()) == [
        "analysis.safetensors",
        "config.json",
        "model.safetensors",
    ]
    again = nld.load(run)
    np.testing.assert_array_equal(again.predict(data.x), fitted.predict(data.x))
    np.testing.assert_array_equal(again.minima_, fitted.minima_)


def test_the_seed_decides_and_no_global_state_is_touched(data):
    small = data.x[:20]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    threads = torch.get_num_threads()
    a = nld.NLD("smoke", iterations=30, threads=1, progress=False, state_chain=False).fit(small)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    b = nld.NLD("smoke", iterations=30, threads=1, progress=False, state_chain=False).fit(small)
    for (k, v), w in zip(
        a.model_.state_dict().items(), b.model_.state_dict().values(), strict=True
    ):
        assert torch.equal(v, w), k


def test_recordings_are_cut_into_pieces_without_losing_a_step():
    x = np.arange(2 * 250, dtype=np.float32).reshape(250, 2)
    data = training_set(as_recordings(x), window=25)
    assert data.x.shape == (3, 100, 2)  # 0-99, 100-199, and 150-249 ending at the end
    assert data.x[-1, -1, 0] == x[-1, 0]
    ragged = training_set(as_recordings([x, x[:60]]), window=25)
    assert ragged.x.shape[1] == 60


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((3,)), "one recording [T, D]"),
        (np.array([["a", "b"]]), "real numbers"),
        ([np.zeros((5, 2)), np.zeros((5, 3))], "different numbers of channels"),
        (np.array([[0.0, np.nan]]), "first at step 0, channel 1"),
        ([], "an empty list"),
    ],
)
def test_bad_input_is_named(x, message):
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        as_recordings(x)


def test_errors_before_and_after_fitting(fitted):
    with pytest.raises(ConfigError, match="'clock' is both"):
        nld.NLD("smoke", clock=1.0)
    with pytest.raises(ConfigError, match="not a model or training setting"):
        nld.NLD("smoke", itterations=5)
    with pytest.raises(ConfigError, match="iterations"):
        nld.NLD("smoke", iterations=-1)
    with pytest.raises(nld.NotFittedError, match="call fit"):
        nld.NLD("smoke").predict(np.zeros((5, 4)))
    with pytest.raises(NLDError, match="X has 3 channels; the model was trained on 4"):
        fitted.predict(np.zeros((5, 3)))


def test_a_data_frame_keeps_its_column_names(fitted):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"time": pd.date_range("2026-01-01", periods=50, freq="s")}
        | {f"c{i}": np.random.default_rng(i).normal(size=50) for i in range(4)}
    )
    recs = as_recordings(frame)
    assert recs.columns == ["c0", "c1", "c2", "c3"] and recs.arrays[0].shape == (50, 4)
    with pytest.raises(DataError, match="column"):
        as_recordings(frame.assign(note="x"))


def test_docstring_examples_run():
    result = doctest.testmod(estimator, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_import_nld_loads_neither_torch_nor_the_service():
    heavy = "{'torch', 'fastapi', 'matplotlib', 'training', 'service'}"
    code = f"import sys, nld; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_settings_come_from_the_preset_unless_given():
    assert nld.NLD("smoke").seed == 0 and nld.NLD("smoke", seed=4).config.train.seed == 4
    assert nld.NLD("smoke", settings={"train.seed": 5}).seed == 5
    est = nld.NLD("smoke", iterations=7, settings={"stages.clock.enabled": False})
    assert est.config.train.iterations == 7 and est.config.stages["clock"] == {"enabled": False}
    from sklearn.base import clone

    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin.config == est.config
    assert est.set_params(iterations=9).config.train.iterations == 9
    with pytest.raises(ConfigError, match="not both"):
        nld.NLD("smoke", config="other.toml")


def test_nested_lists_are_one_recording_and_a_list_of_arrays_a_list():
    assert as_recordings([[1.0, 2.0], [3.0, 4.0]]).kind == "one"
    assert as_recordings([np.zeros((3, 2)), np.zeros((3, 2))]).kind == "list"


def test_a_run_dir_is_not_trained_over(fitted, data, tmp_path):
    run = fitted.save(tmp_path / "run")
    with pytest.raises(NLDError, match="already holds a run: give another run_dir"):
        nld.NLD("smoke", run_dir=run).fit(data.x)


def test_without_the_state_chain_offline_labels_and_regimes_come_from_the_head_chain(
    fitted, data, monkeypatch
):
    """A state chain not kept (its labels too different from the head's: forced here) leaves
    the chain on the head's probabilities for offline labels and kinetics."""
    import copy

    from nld.fitting import basin_head
    from nld.inference import read_path

    model, mine = fitted.model_, copy.deepcopy(fitted.fitted_)
    x = torch.from_numpy(data.x)
    _, classes = read_path(model, mine, x, chain=False)
    monkeypatch.setattr(basin_head, "MIN_AGREEMENT", 1.01)
    record = basin_head.fit_chain(model, mine, x, classes, seed=0)
    assert not record["kept"] and mine.chain is None and mine.head_chain is not None
    assert len(record["head_chain"]["dwell_steps"]) == 2
    est = estimator.from_parts(model, mine, fitted.meta_, fitted.landscape_)
    assert est.chain_ is None and est.head_chain_ is not None and est.n_regimes_ == 2
    online = est.predict(data.x)
    offline = est.predict(data.x, online=False)
    np.testing.assert_array_equal(offline, est.predict_proba(data.x, online=False).argmax(-1))
    assert est.predict(data.x, online=False, method="viterbi").shape == offline.shape

    def accuracy(labels: np.ndarray) -> float:
        agree = (labels == data.states).mean()
        return max(agree, 1 - agree)

    # A head this near the truth leaves smoothing little to mend, and a step or two to move at
    # switches where it wavers.
    assert accuracy(online) > 0.99 and accuracy(offline) > accuracy(online) - 0.005
    from nld.data import Dataset
    from training.evaluate import evaluate

    record = evaluate(model, mine, Dataset(data.x, data.states)).record
    assert record["labels_from"] == "basin head" and record["n_regimes"] == 2
    assert len(record["head_chain"]["dwell_steps"]) == 2
    assert record["offline_accuracy_mean"] == pytest.approx(accuracy(offline))
    mine.set_head_chain(None)
    bare = estimator.from_parts(model, mine, fitted.meta_, fitted.landscape_)
    assert bare.n_regimes_ is None
    with pytest.raises(NLDError, match="nld fit-chain"):
        bare.predict(data.x, online=False)
