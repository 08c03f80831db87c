import json

import numpy as np
import pytest

from nld.data import load_spec, sample
from nld.data.hmm import HMMSpec, random_spec
from nld.errors import ConfigError

from ..conftest import shared_file


def test_shipped_specs_equal_the_pinned_ones():
    for name in ("exp1", "exp2"):
        pinned = json.loads(shared_file(f"benchmarks/{name}.json").read_text())
        spec = load_spec(name)
        assert spec.transition_matrix == pinned["transition_matrix"]
        assert spec.means == pinned["means"] and spec.covariances == pinned["covariances"]


def test_generator_reproduces_stationary_distribution():
    spec = load_spec("exp2")
    d = sample(spec, n_sequences=400, length=400, seed=3)
    freq = np.bincount(d.states[:, 50:].ravel(), minlength=3) / d.states[:, 50:].size
    np.testing.assert_allclose(spec.stationary(), [0.45, 0.35, 0.2], atol=1e-6)
    np.testing.assert_allclose(freq, spec.stationary(), atol=0.015)


def test_generator_transitions_and_emissions():
    spec = load_spec("exp1")
    d = sample(spec, n_sequences=300, length=200, seed=0)
    a, b = d.states[:, :-1].ravel(), d.states[:, 1:].ravel()
    stay = (a == b).mean()
    assert abs(stay - 0.95) < 0.005
    x0 = d.x[d.states == 0]
    np.testing.assert_allclose(x0.mean(0), spec.means[0], atol=0.03)
    np.testing.assert_allclose(np.cov(x0.T), spec.covariances[0], atol=0.06)


def test_same_seed_same_data():
    spec = load_spec("exp1")
    np.testing.assert_array_equal(sample(spec, 3, 10, 5).x, sample(spec, 3, 10, 5).x)


def test_bad_specs(tmp_path):
    with pytest.raises(ConfigError, match="no spec"):
        load_spec("nonexistent")
    good = json.loads(load_spec("exp1").model_dump_json())
    bad = dict(good, transition_matrix=[[0.5, 0.5], [0.5, 0.5]])
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="3x3"):
        load_spec(str(p))
    with pytest.raises(ValueError, match="positive definite"):
        HMMSpec.model_validate(dict(good, covariances=[[[-1.0] * 15] * 15] * 3))


def test_random_spec_is_valid_and_reproducible():
    a = random_spec(5, 7, dwell=15, seed=3)
    b = random_spec(5, 7, dwell=15, seed=3)
    assert a == b and a.n_states == 5 and a.dim == 7
    np.testing.assert_allclose(a.stationary(), 0.2, atol=1e-9)
    d = sample(a, 100, 300, seed=0)
    stay = (d.states[:, 1:] == d.states[:, :-1]).mean()
    assert abs(stay - (1 - 1 / 15)) < 0.01


def test_random_spec_with_a_dwell_time_per_state():
    spec = random_spec(3, 4, dwell=[10, 20, 50], seed=1)
    np.testing.assert_allclose(spec.stationary(), [0.125, 0.25, 0.625], atol=1e-9)
    d = sample(spec, 200, 400, seed=0)
    now, after = d.states[:, :-1].ravel(), d.states[:, 1:].ravel()
    dwell = [1 / (1 - (after[now == i] == i).mean()) for i in range(3)]
    np.testing.assert_allclose(dwell, [10, 20, 50], rtol=0.1)
    with pytest.raises(ConfigError, match="2 dwell times for 3 states"):
        random_spec(3, 4, dwell=[10, 20], seed=1)
    with pytest.raises(ConfigError, match="above 1 step"):
        random_spec(3, 4, dwell=[10, 1, 5], seed=1)
