"""How well the split test (nld.chain_split) tells a merged state from a true one, on the
unseen cases of bench/unseen.py, where the true chains are known.

    python bench/split_power.py [--cases 0 1 ...]

For each case: the test on the true chain (a positive gain there would be a false alarm),
and on the chain with its two least distinguishable states merged into one and refitted
(Bhattacharyya distance; the hardest merge to detect): whether it finds that state, and the
accuracy of the split chain's filter on the test set against the Bayes online-filter limit.
No training: this measures the test, not the models.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from unseen import CASES, case_data

from nld.analysis import match_labels
from nld.chain_split import merge_states, split_test
from nld.state_chain import MAX_DIM, baum_welch, spec_chain, subsample


def bhattacharyya(m1: np.ndarray, c1: np.ndarray, m2: np.ndarray, c2: np.ndarray) -> float:
    c = (c1 + c2) / 2
    d = m1 - m2
    logdets = [np.linalg.slogdet(v)[1] for v in (c, c1, c2)]
    return float(d @ np.linalg.solve(c, d) / 8 + 0.5 * (logdets[0] - (logdets[1] + logdets[2]) / 2))


def closest_pair(means: np.ndarray, covs: np.ndarray) -> tuple[int, int, float]:
    k = len(means)
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    dist = [bhattacharyya(means[a], covs[a], means[b], covs[b]) for a, b in pairs]
    i = int(np.argmin(dist))
    return (*pairs[i], dist[i])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, nargs="+", default=list(range(len(CASES))))
    a = p.parse_args()
    print(
        "| case | states | D | true chain: BIC gain | merged pair | Bhattacharyya "
        "| merged: BIC gain | split state found | split chain accuracy | online filter limit "
        "| s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case in a.cases:
        start = time.perf_counter()
        spec, train, test, limits = case_data(case)
        k, dim = len(spec.means), len(spec.means[0])
        if dim > MAX_DIM:
            continue
        truth = spec_chain(spec)
        clean = split_test(truth, train.x)
        x, y, dist = closest_pair(truth.means, truth.covariances)
        merged = baum_welch(merge_states(truth, x, y), subsample(train.x, 0), rounds=10, tol=1e-5)
        split = split_test(merged, train.x)
        found = split.preferred and split.state == k - 2  # the merged state goes last
        assert test.states is not None
        accuracy = match_labels(split.chain.labels(test.x), test.states, k).accuracy_mean
        print(
            f"| {case} | {k} | {dim} | {clean.gain:.0f} | {x}+{y} | {dist:.2f} | "
            f"{split.gain:.0f} | {'yes' if found else 'no'} | {accuracy:.1%} | "
            f"{limits['online_filter_accuracy_mean']:.1%} | {time.perf_counter() - start:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
