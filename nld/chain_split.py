"""Do the data hold more states than the landscape has wells? A BIC test of splitting each
state of the state chain (nld.state_chain) in two.

The chain's states are the energy's minima, so where training merged two hidden states into
one well the chain is one state short, and nothing in the landscape says so. The data can:
state j is split into two Gaussians one standard deviation either side of its mean along
the main axis of its covariance (transitions into it shared between the halves), Baum-Welch
refits the whole chain, and the gain in log-likelihood is set against the Bayesian
information criterion's price of the extra parameters, `(D + D (D + 1) / 2 + 2 K + 1) / 2
log n` for n steps. A positive gain for some j says the data prefer K + 1 states: the
landscape may have merged two states in well j, or the observations of that state are not
Gaussian (a Gaussian chain explains a skewed or heavy-tailed state better with two). EM from
one start can miss the better split, so a negative gain is weaker evidence than a positive.

The two causes differ in what comes after the split. Two merged Gaussian states split into two
Gaussians, and then neither half pays for a further split; a state whose observations are not
one Gaussian (an arc of a curved surface, a periodic motion, a process that wanders) is a
continuum, and its halves pay again, and their halves again. So a split that pays counts as a
merged state only where it *resolves*: within RESOLVE_DEPTH levels of splitting the parts that
still pay, no part pays (a well that merged three or four states resolves at the second level).

A split *pays* only where held-out data support it too: every fifth sequence the test sees
(with fewer than five sequences, the last fifth of each) is left out of every fit, and the
split chain must give those steps a higher likelihood than the chain without the split (the
forward algorithm, no price: what was not fitted cannot be over-fitted). The BIC is scored on
the fitted part.

bench/split_power.py measures this on data with known states: every merged pair of Gaussian
states the BIC finds resolves, and so does every merged triple; no state of the arcs, speakers
or AR(1) regimes of bench/regimes.py resolves, though all of them pay.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nld import markov
from nld.data.hmm import stationary_distribution
from nld.state_chain import StateChain, baum_welch, subsample

# Steps the test sees, at most: enough to find a merged pair (bench/split_power.py: gains of
# thousands of nats wherever it finds one), few enough to keep the test to seconds.
MAX_STEPS = 50_000
# Levels of further splits within which a paying split must resolve to count as merged states:
# 2 resolves up to four Gaussian states in one well; no non-Gaussian state measured resolves
# at 2 (bench/split_power.py: some quarter of each still pays).
RESOLVE_DEPTH = 2
# Every HOLD_OUT-th sequence is held out of the fits (a fifth of the steps).
HOLD_OUT = 5


@dataclass(frozen=True)
class Split:
    state: int  # the chain state whose split scored best by the BIC, of those that pay if any
    gain: float  # log-likelihood gain minus the BIC price on the fitted steps, nats
    loglik_gain: float  # nats per fitted step, before the price
    steps: int  # observation steps the chains were fitted to
    held_out_gain: float  # log-likelihood gain on the held-out steps, nats
    held_out_steps: int
    chain: StateChain  # the refitted chain with that state split (it is state j and state K)
    gains: tuple[float, ...] = ()  # the BIC gain of splitting each state, nats
    held_out_gains: tuple[float, ...] = ()  # the held-out gain of splitting each state, nats
    merged: tuple[int, ...] = ()  # states whose split pays and resolves: merged states, which
    # nld.fitting.separate splits
    not_gaussian: tuple[int, ...] = ()  # states whose split pays and does not resolve

    @property
    def preferred(self) -> bool:
        """The split pays: the BIC prefers it and the held-out steps support it."""
        return self.gain > 0 and self.held_out_gain > 0

    def summary(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "state": self.state,
            "position": self.chain.positions[self.state].tolist(),
            "positions": self.chain.positions[: len(self.gains)].tolist(),  # of every state
            "bic_gain": float(self.gain),
            "loglik_gain_per_step": float(self.loglik_gain),
            "steps": self.steps,
            "held_out_gain": float(self.held_out_gain),
            "held_out_steps": self.held_out_steps,
            "preferred": bool(self.preferred),
            "gains": [float(g) for g in self.gains],
            "held_out_gains": [float(g) for g in self.held_out_gains],
            "merged": list(self.merged),
            "not_gaussian": list(self.not_gaussian),
            "dwell_steps_after": self.chain.dwell_steps().tolist(),
        }


def split_state(chain: StateChain, j: int) -> StateChain:
    """The chain with state j replaced by two halves (j and a new last state K) whose means
    sit one standard deviation either side of j's along its covariance's main axis."""
    k = len(chain.means)
    values, vectors = np.linalg.eigh(chain.covariances[j])
    shift = np.sqrt(values[-1]) * vectors[:, -1]
    idx = np.r_[np.arange(k), j]
    means = chain.means[idx].copy()
    means[j] -= shift
    means[k] += shift
    log_trans = chain.log_trans[np.ix_(idx, idx)].copy()
    log_trans[:, [j, k]] -= np.log(2)  # what went into j now goes half to each
    log_init = chain.log_init[idx].copy()
    log_init[[j, k]] -= np.log(2)
    return StateChain(
        chain.positions[idx],
        means,
        chain.covariances[idx].copy(),
        log_init,
        log_trans,
        -np.inf,
        0,
    )


def merge_states(chain: StateChain, a: int, b: int) -> StateChain:
    """The chain with states a and b as one Gaussian (the moments of their mixture, weighted by
    the chain's stationary distribution), put last, and sticky transitions at the mean dwell
    time: what a chain over a landscape that merged them starts from. Refit it with
    baum_welch."""
    k = len(chain.means)
    pi = stationary_distribution(np.exp(chain.log_trans))
    w = pi[[a, b]] / pi[[a, b]].sum()
    mean = w @ chain.means[[a, b]]
    spread = chain.means[[a, b]] - mean
    cov = np.einsum("i,ijk->jk", w, chain.covariances[[a, b]]) + (spread.T * w) @ spread
    rest = [j for j in range(k) if j not in (a, b)]
    return StateChain(
        chain.positions[[*rest, a]],
        np.vstack([chain.means[rest], mean[None]]),
        np.concatenate([chain.covariances[rest], cov[None]]),
        np.full(k - 1, -np.log(k - 1)),
        markov.sticky(k - 1, float(chain.dwell_steps().mean())),
        -np.inf,
        0,
    )


def split_test(
    chain: StateChain,
    x: np.ndarray,
    *,
    rounds: int = 10,
    tol: float = 1e-5,
    seed: int = 0,
    max_steps: int = MAX_STEPS,
    depth: int = RESOLVE_DEPTH,
) -> Split:
    """The best split by the BIC of one of the chain's states (of those that pay, where any
    does) on x [N, T, D] (at most `max_steps` steps of it, whole sequences drawn with `seed`, a
    fifth held out), scored against the chain refitted to the same steps, and for each state
    whose split pays whether it resolves within `depth` levels. It costs K + 1 chain fits, and
    3 to 9 more for each state whose split pays."""
    data = held_out(subsample(x, seed, max_steps))
    splits = list(_splits(chain, range(len(chain.means)), data, rounds, tol))
    paying = [s for s in splits if s.preferred]
    best = max(paying or splits, key=lambda s: s.gain)  # reported: the best split that pays
    merged = [s.state for s in paying if _resolves(s.chain, s.state, data, depth, rounds, tol)]
    return replace(
        best,
        gains=tuple(s.gain for s in splits),
        held_out_gains=tuple(s.held_out_gain for s in splits),
        merged=tuple(merged),
        not_gaussian=tuple(s.state for s in paying if s.state not in merged),
    )


def held_out(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """xs [N, T, D] as the steps to fit and the steps held out: every HOLD_OUT-th sequence,
    or with fewer than HOLD_OUT sequences the last 1 / HOLD_OUT of each; none where the
    sequences are shorter than 2 HOLD_OUT steps too (then no split pays)."""
    n, t = xs.shape[:2]
    if n >= HOLD_OUT:
        held = np.arange(n) % HOLD_OUT == HOLD_OUT - 1
        return xs[~held], xs[held]
    cut = t - t // HOLD_OUT if t >= 2 * HOLD_OUT else t
    return xs[:, :cut], xs[:, cut:]


def _splits(
    chain: StateChain,
    states: Iterable[int],
    data: tuple[np.ndarray, np.ndarray],
    rounds: int,
    tol: float,
) -> Iterator[Split]:
    """The split of each of `states`, fitted to data's first part and scored against the chain
    refitted to it, by the BIC there and by the likelihood of data's held-out part; one at a
    time (a caller that has its answer stops fitting)."""
    xs, held = data
    n, d = xs.shape[0] * xs.shape[1], xs.shape[-1]
    k = len(chain.means)
    base = baum_welch(chain, xs, rounds=rounds, tol=tol)
    base_held = _loglik(base, held)
    price = 0.5 * (d + d * (d + 1) / 2 + 2 * k + 1) * np.log(n)
    for j in states:
        split = baum_welch(split_state(base, j), xs, rounds=rounds, tol=tol)
        per_step = split.evidence - base.evidence
        held_gain = _loglik(split, held) - base_held
        yield Split(
            j, n * per_step - price, per_step, n, held_gain, held.shape[0] * held.shape[1], split
        )


def _loglik(chain: StateChain, x: np.ndarray) -> float:
    """The chain's log-likelihood of x [N, T, D], nats (0 for no steps)."""
    return float(chain.filter(x)[1].sum()) if x.size else 0.0


def _resolves(
    split: StateChain,
    j: int,
    data: tuple[np.ndarray, np.ndarray],
    depth: int,
    rounds: int,
    tol: float,
) -> bool:
    """Whether the halves of state j in `split` (j and its last state) are Gaussian states:
    neither pays for a further split, or each one that does resolves within depth - 1 more
    levels."""
    halves = _splits(split, (j, len(split.means) - 1), data, rounds, tol)
    return all(
        not h.preferred or (depth > 1 and _resolves(h.chain, h.state, data, depth - 1, rounds, tol))
        for h in halves
    )


def stored_split(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The split test a checkpoint's training record (config.json's meta) holds, if any:
    training stores it with the basin head's state chain."""
    split = ((meta.get("basin_head") or {}).get("chain") or {}).get("split")
    return split if isinstance(split, dict) else None


def split_warnings(record: dict[str, Any] | None) -> list[str]:
    """What a stored split test (`Split.summary()`) says to the user: a warning for the wells
    that hold more than one Gaussian state, and one for the states that are not one Gaussian;
    none when no split pays, or without a test."""
    if not record or not record["preferred"]:
        return []
    if "merged" not in record:  # a record from before the split's resolution was tested
        return [_merged_warning([record["position"]], [record["bic_gain"]], [])]
    where, gains, held = record["positions"], record["gains"], record.get("held_out_gains")
    out = []
    if record["merged"]:
        states = record["merged"]
        out.append(
            _merged_warning(
                [where[j] for j in states],
                [gains[j] for j in states],
                [held[j] for j in states] if held else [],
            )
        )
    if record["not_gaussian"]:
        states = record["not_gaussian"]
        which = "state of the minimum" if len(states) == 1 else "states of the minima"
        out.append(
            f"the observations of the {which} at {_positions([where[j] for j in states])} are "
            "not one Gaussian: splitting pays, and so does splitting the halves again "
            "(nld.chain_split). The state chain's Gaussian emissions only approximate them, and "
            "its split test cannot count states there; training does not split them. Where such "
            "a state is several wells, nld.regimes groups them."
        )
    return out


def _merged_warning(positions: list[list[float]], gains: list[float], held_out: list[float]) -> str:
    held = f" and {_nats(held_out)} nats on held-out sequences" if held_out else ""
    return (
        f"the data support more states than the energy has minima: splitting the state of the "
        f"minimum at {_positions(positions)} in two gains {_nats(gains)} nats (BIC){held} "
        "(nld.chain_split), and the halves are Gaussian states: the landscape merged "
        "them in one well. `nld train` separates such states where it can (config.json's "
        "meta.separation says what it tried); another seed may too."
    )


def _nats(gains: list[float]) -> str:
    return ", ".join(f"{g:.0f}" for g in gains)


def _positions(positions: list[list[float]]) -> str:
    return "; ".join("(" + ", ".join(f"{v:.3f}" for v in p) + ")" for p in positions)
