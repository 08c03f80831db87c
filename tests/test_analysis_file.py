"""A stored analysis reads back as the analysis that was stored, and only for its weights."""

import numpy as np
import pytest
import torch

from nld import analysis_file, checkpoint
from nld.analysis import BasinIndex, Minimum
from nld.errors import CheckpointError
from nld.landscape import analyze


@pytest.fixture(scope="module")
def stored(smoke_run, tmp_path_factory):
    model, _ = checkpoint.load(smoke_run[0])
    res = analyze(model, None, n_chains=32, n_steps=400, burn_in=100)
    path = tmp_path_factory.mktemp("stored") / analysis_file.FILE
    digest = checkpoint.weights_sha256(smoke_run[0])
    analysis_file.save(path, res, digest)
    return model, res, path, digest


def test_round_trip_is_the_identity(stored):
    model, res, path, digest = stored
    back = analysis_file.load(path, model, digest)
    assert back.to_dict() == res.to_dict()
    for a, b in zip(back.minima, res.minima, strict=True):
        np.testing.assert_array_equal(a.hessian, b.hessian)
    for a, b in zip(back.saddles, res.saddles, strict=True):
        np.testing.assert_array_equal(a.hessian, b.hessian)
    assert back.index is not None and res.index is not None
    np.testing.assert_array_equal(back.index.reference_, res.index.reference_)
    # The rebuilt index labels new points as the original does, by both of its paths.
    points = np.random.default_rng(0).normal(scale=2.0, size=(500, model.cfg.latent_dim))
    for exact in (True, False):
        np.testing.assert_array_equal(
            back.index.assign(points, exact=exact), res.index.assign(points, exact=exact)
        )


def test_an_analysis_of_other_weights_or_code_is_stale(stored, monkeypatch):
    model, _, path, digest = stored
    with pytest.raises(analysis_file.StaleAnalysis, match="other weights"):
        analysis_file.load(path, model, "0" * 64)
    monkeypatch.setattr(analysis_file, "ANALYSIS_VERSION", analysis_file.ANALYSIS_VERSION + 1)
    with pytest.raises(analysis_file.StaleAnalysis, match="analysis version"):
        analysis_file.check(path, digest)


def test_a_damaged_file_is_a_clear_error(stored, tmp_path):
    model, _, path, digest = stored
    bad = tmp_path / analysis_file.FILE
    bad.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match="not a readable stored analysis"):
        analysis_file.load(bad, model, digest)


def test_an_index_refuses_labels_that_are_not_basins():
    m = Minimum(np.zeros(2), 0.0, np.ones(2), np.eye(2))
    energy = lambda q: (q * q).sum(-1)  # noqa: E731
    ref = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="one per reference point"):
        BasinIndex(energy, [m], ref, labels=np.array([0, 0]))
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        BasinIndex(energy, [m], ref, labels=np.array([0, 1, 0]))
