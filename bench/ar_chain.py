"""A chain over a trained model's states whose emissions follow each state's own dynamics:
does it find regimes that differ only by their dynamics, where the Gaussian chain and the
basin head do not, and does held-out data prefer it?

    python bench/ar_chain.py [--case 0]     # after python bench/regimes.py --cases 0

On a case of bench/regimes.py whose `default` run is in runs/regimes/NAME: the basin head's
classes of the training split start an AR(1) hidden Markov model over the model's states
(state k emits x_t ~ N(A_k x_{t-1} + b_k, S_k); the EM of bench/split_power.py, run until a
round gains less than 1e-5 nats per step), and a chain
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
from split_power import _ar_loglik, ar_fit, emission, regressors

import nld
from nld import markov
from nld.analysis import match_labels
from nld.inference import read_all
from nld.state_chain import ridge

RESULTS = ROOT / "bench" / "results" / "ar_chain.jsonl"
# Rounds of EM at most, by chain; each stops sooner where a round gains under 1e-5 nats a step.
ROUNDS = {"gaussian": 50, "ar1": 320}


def start(xs: np.ndarray, classes: np.ndarray, k: int, ar: bool) -> list:
    """Emissions fitted to the steps of each class: AR(1) (A, b, S), or Gaussian (A = 0)."""
    cur, z = regressors(xs, ar)
    said = classes[:, 1:].reshape(-1)
    return [emission(cur, z, (said == j).astype(float) + 1e-6, ridge(xs)) for j in range(k)]


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
    for kind, dynamics in (("gaussian", False), ("ar1", True)):
        first = start(xs, classes, k, dynamics)
        got = ar_fit(first, uniform, sticky, xs, rounds=ROUNDS[kind], dynamics=dynamics)
        row[kind] = {"train_loglik_per_step": got[0], **scores(got[1], got[2], got[3], test)}
        print(kind, row[kind], flush=True)
    row["command"] = f"python bench/ar_chain.py --case {a.case}"
    append_row(RESULTS, row)


if __name__ == "__main__":
    main()
