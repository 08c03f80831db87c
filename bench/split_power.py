"""How well the split test (nld.chain_split) tells a merged state from a true one, where the
true states are known, beside two criteria that do not assume Gaussian states.

    python bench/split_power.py [--cases 0 1 ...]   # bench/unseen.py's Gaussian cases
    python bench/split_power.py --non-gaussian      # bench/regimes.py's cases

Gaussian cases: the test on the true chain (a positive gain there would be a false alarm),
on the chain with its two least distinguishable states merged into one and refitted
(Bhattacharyya distance; the hardest merge to detect): whether it finds that state, and the
accuracy of the split chain's filter on the test set against the Bayes online-filter limit;
and on the chain with a third state merged into that one (the state closest to it): a well
that holds three states.

Non-Gaussian cases (AR(1) regimes with one marginal, arcs of a curved ring, speakers of real
speech features): the chain fitted to the true labels (each state's mean and covariance,
transitions counted, then Baum-Welch) has one state per true state, so every state whose
split pays is a false alarm.

Each split the BIC prefers is judged by what the test acts on and by two other criteria:
- held-out: the split chain, fitted without every fifth sequence, gives those sequences a
  higher likelihood than the chain without the split (the BIC and this: the split pays);
- resolves (what training acts on): the split pays and, within
  nld.chain_split.RESOLVE_DEPTH more levels of splitting the parts that still pay, no part
  pays: the split ends in Gaussian states;
- kinetic: the halves fall into two regimes of the split chain (nld.regimes: PCCA+ at the gap
  in its implied timescales) and the split adds a timescale of at least a step; halves that
  interconvert within one regime are sub-states of one state;
- autoregressive: the split still pays when every state's emission is conditioned on the
  previous observation (x_t ~ N(A_k x_{t-1} + b_k, S_k), an AR(1) hidden Markov model, fitted
  by EM from the Gaussian chain; BIC on the steps after the first), so that a state's own
  dynamics cannot be mistaken for a second state.
Beside them, the mean dwell times of the split state and of its two halves in the split chain:
whether two states persist where one state's sub-states would alternate.
No training: this measures the tests, not the models.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from regimes import CASES as NON_GAUSSIAN
from regimes import splits
from unseen import CASES, case_data

from nld import markov
from nld.analysis import match_labels
from nld.chain_split import merge_states, split_state, split_test
from nld.regimes import RESOLVED, regimes
from nld.state_chain import MAX_DIM, StateChain, baum_welch, ridge, spec_chain, subsample

STEPS = 50_000  # as nld.chain_split.MAX_STEPS


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


def labelled_chain(x: np.ndarray, states: np.ndarray, k: int) -> StateChain:
    """The Gaussian chain of the true labels, refined by Baum-Welch."""
    flat, lab = x.reshape(-1, x.shape[-1]).astype(np.float64), states.reshape(-1)
    means = np.stack([flat[lab == j].mean(0) for j in range(k)])
    covs = np.stack([np.cov(flat[lab == j].T) for j in range(k)]) + ridge(x)
    counts = np.ones((k, k))
    np.add.at(counts, (states[:, :-1].ravel(), states[:, 1:].ravel()), 1)
    log_trans = np.log(counts / counts.sum(1, keepdims=True))
    chain = StateChain(np.zeros((k, 1)), means, covs, np.full(k, -np.log(k)), log_trans, -np.inf, 0)
    return baum_welch(chain, subsample(x, 0, STEPS), rounds=10, tol=1e-5)


def kinetically_apart(base: StateChain, split: StateChain, j: int) -> bool:
    """Whether the halves of state j (j and the last state of `split`) are two regimes of the
    split chain, which resolves one more timescale of at least a step than `base`."""
    before, after = regimes(np.exp(base.log_trans)), regimes(np.exp(split.log_trans))
    more = (after.timescales >= RESOLVED).sum() > (before.timescales >= RESOLVED).sum()
    return bool(more and after.of_state[j] != after.of_state[-1])


def dwell(chain: StateChain, j: int) -> float:
    """Mean dwell time of state j of `chain`, steps."""
    stay = chain.log_trans[j, j]
    return float(1 / -np.expm1(stay)) if stay < 0 else np.inf


# An AR(1) hidden Markov model: state k emits x_t ~ N(A_k x_{t-1} + b_k, S_k), t >= 1.
ARState = tuple[np.ndarray, np.ndarray, np.ndarray]  # A [D, D], b [D], S [D, D]


def _ar_loglik(states: list[ARState], xs: np.ndarray) -> np.ndarray:
    prev, cur = xs[:, :-1], xs[:, 1:]
    out = []
    for a, b, s in states:
        chol = np.linalg.cholesky(s)
        white = np.linalg.solve(chol, (cur - b - prev @ a.T).reshape(-1, xs.shape[-1]).T)
        norm = np.log(np.diag(chol)).sum() + 0.5 * xs.shape[-1] * np.log(2 * np.pi)
        out.append(-0.5 * (white**2).sum(0) - norm)
    return np.stack(out, -1).reshape(*cur.shape[:2], len(states))


def ar_fit(
    states: list[ARState],
    log_init: np.ndarray,
    log_trans: np.ndarray,
    xs: np.ndarray,
    *,
    rounds: int = 16,
) -> tuple[float, list[ARState], np.ndarray, np.ndarray]:
    """EM of an AR(1) HMM on xs [N, T, D] (state k: x_t ~ N(A_k x_{t-1} + b_k, S_k)), at most
    `rounds` rounds, until a round gains less than 1e-5 nats per step: the log-likelihood per
    step of the steps after the first, and the parameters."""
    d = xs.shape[-1]
    cur = xs[:, 1:].reshape(-1, d)
    z = np.hstack([xs[:, :-1].reshape(-1, d), np.ones((len(cur), 1))])  # x_{t-1} and 1
    add, last = ridge(xs), -np.inf
    for _ in range(rounds):
        e = markov.expectations(log_init, log_trans, _ar_loglik(states, xs))
        score = float(e.evidence.sum()) / len(cur)
        if score - last < 1e-5:
            break
        last = score
        log_init, log_trans = markov.maximise(e)
        states = []
        for w in e.posterior.reshape(-1, len(log_init)).T:  # weighted least squares
            coef = np.linalg.solve(
                (z * w[:, None]).T @ z + 1e-8 * np.eye(d + 1), (z * w[:, None]).T @ cur
            )
            res = cur - z @ coef
            states.append((coef[:d].T, coef[-1], (res * w[:, None]).T @ res / w.sum() + add))
    return score, states, log_init, log_trans


def ar_split_gains(chain: StateChain, xs: np.ndarray) -> list[float]:
    """BIC gain of splitting each state of the AR(1) HMM started from `chain`, nats."""
    n, d, k = xs.shape[0] * (xs.shape[1] - 1), xs.shape[-1], len(chain.means)
    start = [(np.zeros((d, d)), m, s) for m, s in zip(chain.means, chain.covariances, strict=True)]
    base, states, log_init, log_trans = ar_fit(start, chain.log_init, chain.log_trans, xs)
    price = 0.5 * (d * d + d + d * (d + 1) / 2 + 2 * k + 1) * np.log(n)
    # The halves as nld.chain_split makes them: offsets b_k and noise S_k play the means and
    # covariances (each half keeps its state's A_k).
    fitted = StateChain(
        chain.positions,
        np.stack([b for _, b, _ in states]),
        np.stack([s for _, _, s in states]),
        log_init,
        log_trans,
        -np.inf,
        0,
    )
    gains = []
    for j in range(k):
        halves = split_state(fitted, j)
        coupling = [a for a, _, _ in states] + [states[j][0]]
        ar_halves = list(zip(coupling, halves.means, halves.covariances, strict=True))
        split, *_ = ar_fit(ar_halves, halves.log_init, halves.log_trans, xs)
        gains.append(n * (split - base) - price)
    return gains


def verdicts(chain: StateChain, x: np.ndarray) -> dict:
    """The criteria on every state of `chain`: BIC gains of the Gaussian split, the states
    whose split resolves, whether each split's halves are kinetically apart, and the AR(1)
    HMM's split gains."""
    split = split_test(chain, x)
    xs = subsample(x, 0, STEPS)
    base = baum_welch(chain, xs, rounds=10, tol=1e-5)
    halves = [
        baum_welch(split_state(base, j), xs, rounds=10, tol=1e-5) for j in range(len(chain.means))
    ]
    return {
        "split": split,
        "gains": split.gains,
        "held_out": split.held_out_gains,
        "resolves": [j in split.merged for j in range(len(chain.means))],
        "apart": [kinetically_apart(base, h, j) for j, h in enumerate(halves)],
        "dwell": [(dwell(base, j), dwell(h, j), dwell(h, -1)) for j, h in enumerate(halves)],
        "ar": ar_split_gains(chain, xs),
    }


def _says(v: dict) -> tuple[int, int, int, int, int]:
    """States each criterion splits: BIC, BIC and held-out, those resolving, BIC and kinetic,
    BIC and autoregressive."""
    bic = [g > 0 for g in v["gains"]]
    return (
        sum(bic),
        sum(b and h > 0 for b, h in zip(bic, v["held_out"], strict=True)),
        sum(v["resolves"]),
        sum(b and a for b, a in zip(bic, v["apart"], strict=True)),
        sum(b and g > 0 for b, g in zip(bic, v["ar"], strict=True)),
    )


def merged_triple(truth: StateChain, x: np.ndarray) -> tuple[str, float, float, bool]:
    """The chain with the closest pair and then the state closest to that pair merged into one
    (last), refitted: the triple, the BIC and held-out gains of splitting it, whether the
    split resolves."""
    a, b, _ = closest_pair(truth.means, truth.covariances)
    pair = merge_states(truth, a, b)
    last = len(pair.means) - 1
    c = min(
        range(last),
        key=lambda j: bhattacharyya(
            pair.means[j], pair.covariances[j], pair.means[last], pair.covariances[last]
        ),
    )
    merged = baum_welch(merge_states(pair, c, last), subsample(x, 0), rounds=10, tol=1e-5)
    split = split_test(merged, x)
    m = len(merged.means) - 1
    return f"{a}+{b}+{c}", split.gains[m], split.held_out_gains[m], m in split.merged


def _dwells(dwells: list[tuple[float, float, float]]) -> str:
    return ", ".join(f"{d:.0f} -> {a:.1f} + {b:.1f}" for d, a, b in dwells)


def gaussian(cases: list[int]) -> None:
    print(
        "| case | states | D | true chain: best BIC gain, best held-out gain "
        "| states split (BIC / +held-out / +resolves / +kinetic / +AR) | merged pair "
        "| Bhattacharyya | merged: BIC gain, held-out gain "
        "| found (BIC / +held-out / +resolves / +kinetic / +AR) "
        "| merged pair's dwell: true; merged -> halves (steps) "
        "| split chain accuracy | online filter limit "
        "| merged triple: BIC gain, held-out gain, resolves | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        start = time.perf_counter()
        spec, train, test, limits = case_data(case)
        k, dim = len(spec.means), len(spec.means[0])
        if dim > MAX_DIM:
            continue
        truth = spec_chain(spec)
        clean = verdicts(truth, train.x)
        x, y, dist = closest_pair(truth.means, truth.covariances)
        merged = baum_welch(merge_states(truth, x, y), subsample(train.x, 0), rounds=10, tol=1e-5)
        found = verdicts(merged, train.x)
        m = k - 2  # the merged state goes last
        bic = found["gains"][m] > 0
        held = bic and found["held_out"][m] > 0
        by = [
            bic,
            held,
            found["resolves"][m],
            bic and found["apart"][m],
            bic and found["ar"][m] > 0,
        ]
        assert test.states is not None
        split = found["split"]
        accuracy = match_labels(split.chain.labels(test.x), test.states, k).accuracy_mean
        triple = "-"
        if k > 2:
            states, gain, held_gain, resolves = merged_triple(truth, train.x)
            triple = f"{states}: {gain:.0f}, {held_gain:.0f}, {'yes' if resolves else 'no'}"
        print(
            f"| {case} | {k} | {dim} | {max(clean['gains']):.0f}, {max(clean['held_out']):.0f} | "
            f"{' / '.join(map(str, _says(clean)))} | {x}+{y} | {dist:.2f} | "
            f"{found['gains'][m]:.0f}, {found['held_out'][m]:.0f} | "
            f"{' / '.join('yes' if b else 'no' for b in by)} | "
            f"{dwell(truth, x):.0f} + {dwell(truth, y):.0f}; {_dwells([found['dwell'][m]])} | "
            f"{accuracy:.1%} | {limits['online_filter_accuracy_mean']:.1%} | {triple} | "
            f"{time.perf_counter() - start:.0f} |",
            flush=True,
        )


def non_gaussian() -> None:
    print(
        "| case | states | D | BIC gains | held-out gains | states split: BIC | + held-out "
        "| + resolves | + kinetic | + AR | AR gains | dwell: state -> halves (steps) | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case, (name, _, _, k) in enumerate(NON_GAUSSIAN):
        start = time.perf_counter()
        train, _ = splits(case)
        assert train.states is not None
        v = verdicts(labelled_chain(train.x, train.states, k), train.x)
        bic, held, resolves, kinetic, ar = _says(v)
        print(
            f"| {name} | {k} | {train.x.shape[-1]} | {', '.join(f'{g:.0f}' for g in v['gains'])} "
            f"| {', '.join(f'{g:.0f}' for g in v['held_out'])} "
            f"| {bic} of {k} | {held} of {k} | {resolves} of {k} | {kinetic} of {k} | {ar} of {k} "
            f"| {', '.join(f'{g:.0f}' for g in v['ar'])} | {_dwells(v['dwell'])} "
            f"| {time.perf_counter() - start:.0f} |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, nargs="+", default=list(range(len(CASES))))
    p.add_argument("--non-gaussian", action="store_true", help="bench/regimes.py's cases")
    a = p.parse_args()
    if a.non_gaussian:
        non_gaussian()
    else:
        gaussian(a.cases)


if __name__ == "__main__":
    main()
