"""A chain over a trained model's states whose emissions follow each state's own dynamics:
does it find regimes that differ only by their dynamics, where the Gaussian chain and the
basin head do not, and does held-out data prefer it?

    python bench/ar_chain.py [--case 0]     # after python bench/regimes.py --cases 0

On a case of bench/regimes.py whose `default` run is in runs/regimes/NAME: the basin head's
classes of the training split start an AR(1) hidden Markov model over the model's states
(state k emits x_t ~ N(A_k x_{t-1} + b_k, S_k); the EM of bench/split_power.py, run until
it gains less than 1e-5 nats per step), and a chain
of Gaussian emissions is started from the same classes. For each: the log-likelihood per step
of the test split (held out), and the accuracy of its filtered (online) and smoothed (offline)
labels against the true regimes (one-to-one), beside the model's own online labels. A row goes
to bench/results/ar_chain.jsonl.
"""

from __future__ import annotations

import argparse

import numpy as np
from record import ROOT, append_row
from regimes import CASES, splits
from split_power import _ar_loglik, ar_fit

import nld
from nld import markov
from nld.analysis import match_labels
from nld.inference import read_all
from nld.state_chain import ridge

RESULTS = ROOT / "bench" / "results" / "ar_chain.jsonl"


def start(xs: np.ndarray, classes: np.ndarray, k: int, ar: bool) -> list:
    """Emissions fitted to the steps of each class: AR(1) (A, b, S), or Gaussian (A = 0)."""
    d = xs.shape[-1]
    cur = xs[:, 1:].reshape(-1, d)
    z = np.hstack([xs[:, :-1].reshape(-1, d), np.ones((len(cur), 1))])
    said = classes[:, 1:].reshape(-1)
    out = []
    for j in range(k):
        w = (said == j).astype(float) + 1e-6
        zz = z if ar else z[:, -1:]
        coef = np.linalg.solve(
            (zz * w[:, None]).T @ zz + 1e-8 * np.eye(zz.shape[1]), (zz * w[:, None]).T @ cur
        )
        res = cur - zz @ coef
        a = coef[:d].T if ar else np.zeros((d, d))
        out.append((a, coef[-1], (res * w[:, None]).T @ res / w.sum() + ridge(xs)))
    return out


def gaussian_fit(states, log_init, log_trans, xs):
    """EM of the chain with Gaussian emissions (A fixed at 0), in the same form."""
    d = xs.shape[-1]
    cur = xs[:, 1:].reshape(-1, d)
    last, score = -np.inf, -np.inf
    for _ in range(50):
        e = markov.expectations(log_init, log_trans, _ar_loglik(states, xs))
        score = float(e.evidence.sum()) / len(cur)
        if score - last < 1e-5:
            break
        last = score
        log_init, log_trans = markov.maximise(e)
        states = []
        for w in e.posterior.reshape(-1, log_init.shape[0]).T:
            m = (w[:, None] * cur).sum(0) / w.sum()
            res = cur - m
            states.append((np.zeros((d, d)), m, (res * w[:, None]).T @ res / w.sum() + ridge(xs)))
    return score, states, log_init, log_trans


def converged_ar_fit(states, log_init, log_trans, xs, most: int = 20):
    """ar_fit (16 EM rounds a call) called until a call gains less than 1e-5 nats per step,
    at most `most` times."""
    last = -np.inf
    for _ in range(most):
        score, states, log_init, log_trans = ar_fit(states, log_init, log_trans, xs)
        if score - last < 1e-5:
            break
        last = score
    return score, states, log_init, log_trans


def scores(states, log_init, log_trans, test) -> dict[str, float]:
    ll = _ar_loglik(states, test.x.astype(np.float64))
    alpha, evidence = markov.forward(log_init, log_trans, ll)
    smooth = markov.smooth(log_init, log_trans, ll)
    truth = test.states[:, 1:]
    k = len(states)
    return {
        "heldout_loglik_per_step": float(evidence.sum()) / ll.shape[0] / ll.shape[1],
        "online": match_labels(alpha.argmax(-1), truth, k).accuracy_mean,
        "offline": match_labels(smooth.argmax(-1), truth, k).accuracy_mean,
        "dwell_steps": markov.dwell_steps(log_trans).round(1).tolist(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", type=int, default=0)
    a = p.parse_args()
    name = CASES[a.case][0]
    train, test = splits(a.case)
    model = nld.load(ROOT / "runs" / "regimes" / name)
    k = model.fitted_.classes
    _, head = read_all(model.model_, model.fitted_, train.x)
    assert head is not None
    classes = head.argmax(-1)
    xs = train.x.astype(np.float64)
    sticky = markov.sticky(k, 20.0)
    uniform = np.full(k, -np.log(k))
    row: dict = {"case": name, "states": k}
    own = model.predict(test.x)
    row["model_online"] = match_labels(own[:, 1:], test.states[:, 1:], k).accuracy_mean
    for kind, fit in (("gaussian", gaussian_fit), ("ar1", converged_ar_fit)):
        got = fit(start(xs, classes, k, kind == "ar1"), uniform, sticky, xs)
        row[kind] = {"train_loglik_per_step": got[0], **scores(got[1], got[2], got[3], test)}
        print(kind, row[kind], flush=True)
    row["command"] = f"python bench/ar_chain.py --case {a.case}"
    append_row(RESULTS, row)


if __name__ == "__main__":
    main()
