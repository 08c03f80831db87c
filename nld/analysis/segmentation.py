"""Scores of a segmentation against known hidden states."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Matching:
    """Best one-to-one map of predicted labels to true states over a whole data set."""

    mapping: dict[int, int]  # predicted label -> true state (unmatched labels are absent)
    accuracy_per_sequence: np.ndarray  # [N]

    @property
    def accuracy_mean(self) -> float:
        return float(self.accuracy_per_sequence.mean())

    @property
    def accuracy_std(self) -> float:
        return float(self.accuracy_per_sequence.std())


def match_labels(pred: np.ndarray, states: np.ndarray, n_labels: int | None = None) -> Matching:
    """Match labels to states with `linear_sum_assignment` on the confusion matrix."""
    if pred.shape != states.shape:
        raise ValueError(f"labels {pred.shape} and states {states.shape} differ in shape")
    n_pred = int(max(pred.max() + 1, n_labels or 0))
    n_true = int(states.max() + 1)
    conf = np.zeros((n_pred, n_true), dtype=np.int64)
    np.add.at(conf, (pred.ravel(), states.ravel()), 1)
    rows, cols = linear_sum_assignment(conf, maximize=True)
    mapping = {int(r): int(c) for r, c in zip(rows, cols, strict=True)}
    lut = np.full(n_pred, -1)
    lut[rows] = cols
    per_seq = (lut[pred] == states).mean(axis=1)
    return Matching(mapping, per_seq)


def per_state(occupancy: np.ndarray, mapping: dict[int, int], n_states: int) -> np.ndarray:
    """Basin occupancies [k] summed into the states [n_states] `mapping` assigns them to
    (basins without a state are left out)."""
    est = np.zeros(n_states, dtype=np.float64)
    for i, w in enumerate(occupancy):
        if i in mapping:
            est[mapping[i]] += w
    return est


def matched_l1(occupancy: np.ndarray, truth: np.ndarray, mapping: dict[int, int]) -> float:
    """l1 distance of basin occupancies to the true state distribution under `mapping`.

    Basins without a state count fully as error, and so do states without a basin.
    """
    unmatched = sum(float(w) for i, w in enumerate(occupancy) if i not in mapping)
    return float(np.abs(per_state(occupancy, mapping, len(truth)) - truth).sum() + unmatched)


def many_to_one(pred: np.ndarray, states: np.ndarray) -> float:
    """Accuracy when each predicted label stands for the true state it overlaps most: the
    score for a segmentation with more (or fewer) labels than true states."""
    n_pred, n_true = int(pred.max() + 1), int(states.max() + 1)
    conf = np.zeros((n_pred, n_true), dtype=np.int64)
    np.add.at(conf, (pred.ravel(), states.ravel()), 1)
    return float(conf.max(axis=1).sum() / pred.size)


def dwell_lengths(labels: np.ndarray, n_labels: int) -> list[np.ndarray]:
    """Lengths of the runs of each label in sequences [N, T]; runs cut by a sequence's start
    or end are left out (their length is unknown)."""
    out: list[list[int]] = [[] for _ in range(n_labels)]
    for seq in np.atleast_2d(labels):
        change = np.flatnonzero(np.diff(seq)) + 1
        bounds = np.concatenate([[0], change, [len(seq)]])
        for a, b in pairwise(bounds[1:-1]):
            out[int(seq[a])].append(int(b - a))
    return [np.asarray(r, dtype=np.int64) for r in out]
