"""Which chain labels where states are not Gaussian: the basin head, the Gaussian state chain
and the dynamic chain (AR(1) emissions) over a trained model's minima, on data with known
regimes.

    python bench/dynamic_chain.py --cases 0 1 2     # after python bench/regimes.py --cases 0 1 2
    python bench/dynamic_chain.py --motions DIR     # after python bench/motions.py --out DIR

For each trained run: the test the basin-head stage runs where the Gaussian chain is not kept
(nld.fitting.basin_head.try_dynamic: the dynamic chain fitted to 80% of the training
sequences, its labels of the rest scored against the head's by nld.vamp.slow_score) and what
it decides; then, on the test split against the true regimes, the many-to-one accuracy (each
state to the regime it overlaps most) online and offline of each label source, each fitted to
the whole training split: the basin head (online; offline its head chain), the Gaussian chain
and the dynamic chain, and each chain's log-likelihood of the test split per step. Rows go to
bench/results/dynamic_chain.jsonl.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
from record import ROOT, append_row

import nld
from nld import markov
from nld.analysis import many_to_one
from nld.data import Dataset
from nld.fitting.basin_head import try_dynamic
from nld.head_chain import fit_head_chain
from nld.inference import read_all
from nld.state_chain import StateChain, fit_dynamic_chain, fit_state_chain

RESULTS = ROOT / "bench" / "results" / "dynamic_chain.jsonl"


def chain_labels(chain: StateChain, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A chain's filtered (online) and smoothed (offline) labels of x, and its log-likelihood
    of x per step."""
    ll = chain.loglik(x)
    alpha, evidence = markov.forward(chain.log_init, chain.log_trans, ll)
    smooth = markov.smooth(chain.log_init, chain.log_trans, ll)
    return alpha.argmax(-1), smooth.argmax(-1), float(evidence.sum()) / ll.shape[0] / ll.shape[1]


def measure(name: str, run: Path, train: Dataset, test: Dataset, command: str) -> dict:
    model = nld.load(run)
    net, fitted = model.model_, copy.deepcopy(model.fitted_)
    k = fitted.classes
    positions = fitted.minima.double().numpy()
    assert test.states is not None and k >= 2
    heads = [read_all(net, fitted, d.x)[1] for d in (train, test)]
    assert heads[0] is not None and heads[1] is not None
    said, said_test = heads[0].argmax(-1), heads[1].argmax(-1)
    xs = train.x.astype(np.float64)
    row: dict = {"case": name, "minima": k}
    decided = try_dynamic(fitted, xs, said, seed=0)
    row["test"] = {key: decided[key] for key in ("kept", "heldout_slow_score", "heldout_agreement")}
    gaussian = fit_state_chain(net.emissions(positions), xs, positions)
    sources = {
        "basin head": (said_test, fit_head_chain(said, k).smooth(said_test).argmax(-1), None),
        "Gaussian chain": chain_labels(gaussian, test.x),
        "dynamic chain": chain_labels(fit_dynamic_chain(xs, said, positions), test.x),
    }
    for source, (online, offline, loglik) in sources.items():
        row[source] = {
            "online": round(float(many_to_one(online, test.states)), 4),
            "offline": round(float(many_to_one(offline, test.states)), 4),
        } | ({} if loglik is None else {"test_loglik_per_step": round(loglik, 3)})
    return row | {"command": command}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, nargs="*", default=[])
    p.add_argument("--motions", type=Path, help="bench/motions.py's --out directory")
    a = p.parse_args()
    from regimes import CASES, splits

    for case in a.cases:
        name = CASES[case][0]
        command = f"python bench/dynamic_chain.py --cases {case}"
        row = measure(name, ROOT / "runs" / "regimes" / name, *splits(case), command)
        append_row(RESULTS, row)
    if a.motions:
        command = "python bench/dynamic_chain.py --motions DIR"
        from motions import datasets

        row = measure("BasicMotions", a.motions / "run", *datasets(a.motions), command)
        append_row(RESULTS, row)


if __name__ == "__main__":
    main()
