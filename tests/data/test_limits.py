import json

import numpy as np
import pytest

from nld.data import bayes_limits, load, load_spec, sample

from ..conftest import shared_file


@pytest.mark.parametrize("name", ["exp1", "exp2"])
def test_limits_reproduce_the_pinned_values(name):
    pinned = json.loads(shared_file(f"benchmarks/{name}.json").read_text())["limits_on_test_split"]
    data = load(shared_file(f"benchmarks/{name}-test.npz"))
    got = bayes_limits(load_spec(name), data.x, data.states)
    for key, value in pinned.items():
        assert got[key] == pytest.approx(value, abs=6e-5), key


def test_filter_between_per_step_and_smoother():
    spec = load_spec("exp1")
    d = sample(spec, 50, 200, seed=1)
    lim = bayes_limits(spec, d.x, d.states)
    per, online, offline = (
        lim["per_step_accuracy_mean"],
        lim["online_filter_accuracy_mean"],
        lim["offline_smoother_accuracy_mean"],
    )
    assert 0.8 < per < online < offline <= 1.0
    assert np.isfinite(list(lim.values())).all()
