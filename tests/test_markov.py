import itertools

import numpy as np
import pytest

from nld import markov
from nld.data import sample
from nld.data.hmm import random_spec
from nld.data.limits import emission_loglik


def test_forward_continues_across_chunks():
    rng = np.random.default_rng(0)
    ll = rng.normal(size=(4, 30, 3))
    log_init, log_trans = np.log([0.2, 0.3, 0.5]), markov.sticky(3, 8.0)
    whole, evidence = markov.forward(log_init, log_trans, ll)
    first, ev1 = markov.forward(log_init, log_trans, ll[:, :12])
    rest, ev2 = markov.forward(log_init, log_trans, ll[:, 12:], previous=first[:, -1])
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, atol=1e-12)
    np.testing.assert_allclose(ev1 + ev2, evidence, rtol=1e-12)


def test_smoother_at_the_last_step_is_the_filter():
    rng = np.random.default_rng(1)
    ll = rng.normal(size=(3, 20, 4))
    log_init, log_trans = np.full(4, -np.log(4)), markov.sticky(4, 5.0)
    alpha, _ = markov.forward(log_init, log_trans, ll)
    gamma = markov.smooth(log_init, log_trans, ll)
    np.testing.assert_allclose(gamma[:, -1], alpha[:, -1], atol=1e-12)
    np.testing.assert_allclose(np.exp(gamma).sum(-1), 1.0)


def test_sticky_rows_are_distributions_with_the_dwell():
    p = np.exp(markov.sticky(3, 20.0))
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert p[0, 0] == pytest.approx(0.95)
    assert markov.sticky(1, 20.0).tolist() == [[0.0]]


def test_em_step_from_the_true_chain_stays_there():
    # The true parameters are (up to sampling noise) a fixed point of Baum-Welch: the
    # expected counts under them give them back, dwell times 10 / 20 / 50 included.
    spec = random_spec(3, 4, dwell=[10, 20, 50], seed=2, separation=4.0)
    data = sample(spec, 60, 300, seed=3)
    ll = emission_loglik(spec, data.x)
    truth = np.asarray(spec.transition_matrix)
    e = markov.expectations(np.log(spec.initial_distribution), np.log(truth), ll)
    np.testing.assert_allclose(e.posterior.sum(-1), 1.0)
    assert e.transitions.sum() == pytest.approx(60 * 299)
    _, log_trans = markov.maximise(e)
    assert np.abs(np.exp(log_trans) - truth).max() < 0.02
    np.testing.assert_allclose(markov.dwell_steps(log_trans), [10, 20, 50], rtol=0.25)
    # ...and one step from a wrong, sticky start raises the evidence.
    start = markov.expectations(np.full(3, -np.log(3)), markov.sticky(3, 3.0), ll)
    again = markov.expectations(*markov.maximise(start), ll)
    assert again.evidence.sum() > start.evidence.sum()


def test_expectations_equal_the_sum_over_every_path():
    rng = np.random.default_rng(3)
    k, t_len = 3, 5
    log_init = np.log(rng.dirichlet(np.ones(k)))
    log_trans = np.log(rng.dirichlet(np.ones(k), size=k))
    ll = rng.normal(scale=3.0, size=(2, t_len, k)) - 50.0  # far from 0: scaling is exercised
    e = markov.expectations(log_init, log_trans, ll)
    paths = np.array(list(itertools.product(range(k), repeat=t_len)))  # [k^T, T]
    counts = np.zeros((k, k))
    for n in range(2):
        logp = log_init[paths[:, 0]] + ll[n, np.arange(t_len), paths].sum(1)
        logp += log_trans[paths[:, :-1], paths[:, 1:]].sum(1)
        evidence = np.logaddexp.reduce(logp)
        assert e.evidence[n] == pytest.approx(evidence, rel=1e-12)
        w = np.exp(logp - evidence)
        for t in range(t_len):
            marginal = np.bincount(paths[:, t], w, minlength=k)
            np.testing.assert_allclose(e.posterior[n, t], marginal, atol=1e-12)
            if t < t_len - 1:
                np.add.at(counts, (paths[:, t], paths[:, t + 1]), w)
    np.testing.assert_allclose(e.transitions, counts, atol=1e-12)


def test_viterbi_is_the_most_probable_path_by_enumeration():
    import itertools

    from nld.markov import viterbi

    rng = np.random.default_rng(3)
    k, t_len = 3, 5
    log_init = np.log(rng.dirichlet(np.ones(k)))
    log_trans = np.log(rng.dirichlet(np.ones(k), size=k))
    ll = rng.normal(size=(4, t_len, k))
    for n in range(4):
        best = max(
            itertools.product(range(k), repeat=t_len),
            key=lambda p: (
                log_init[p[0]]
                + sum(log_trans[a, b] for a, b in itertools.pairwise(p))
                + sum(ll[n, t, s] for t, s in enumerate(p))
            ),
        )
        assert tuple(viterbi(log_init, log_trans, ll)[n]) == best
