import itertools
import json

import numpy as np
import pytest
from scipy.special import logsumexp

from nld.data import bayes_limits, load, load_spec, sample
from nld.data.limits import emission_loglik, forward_filter

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


def test_log_evidence_is_the_sum_over_every_state_path():
    spec = load_spec("exp1")
    x = sample(spec, 2, 4, seed=3).x
    ll = emission_loglik(spec, x)
    alpha, evidence = forward_filter(spec, ll)
    logp = np.log(np.asarray(spec.transition_matrix))
    log_pi = np.log(np.asarray(spec.initial_distribution))
    k = spec.n_states
    for n in range(len(x)):
        paths = [
            log_pi[p[0]]
            + sum(logp[a, b] for a, b in itertools.pairwise(p))
            + sum(ll[n, t, s] for t, s in enumerate(p))
            for p in itertools.product(range(k), repeat=x.shape[1])
        ]
        assert evidence[n] == pytest.approx(logsumexp(paths), rel=1e-12)
    np.testing.assert_allclose(np.exp(alpha).sum(-1), 1.0)
