"""Fast basin lookup: gradient flow once on reference points, then nearest neighbours.

Assigning a point by gradient flow costs hundreds of energy evaluations. A `BasinIndex`
flows a set of reference points once (a grid over the data's box in latent dimension <= 3,
else the given points with jittered copies) and labels new points by their k nearest
reference points. A point whose neighbours disagree, or that lies farther from them than
the reference spacing, is near a basin boundary or outside the reference set: it falls back
to the exact flow. The index thus agrees with `assign_basins` except inside a basin thinner
than the reference spacing.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from nld.analysis.energy import EnergyFn
from nld.analysis.grid import grid_points
from nld.analysis.minima import Minimum, assign_basins


class BasinIndex:
    def __init__(
        self,
        energy: EnergyFn,
        minima: list[Minimum],
        reference: Tensor | np.ndarray,
        *,
        k: int = 8,
        grid: tuple[np.ndarray, np.ndarray, tuple[int, ...]] | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        """`grid` = (lo, step, shape) when `reference` is the regular grid of those points in
        'ij' order: then `assign(exact=False)` finds a point's nearest node by arithmetic.
        `labels` are the reference points' basins when they are known (a stored index);
        otherwise each reference point flows to its minimum."""
        if not minima:
            raise ValueError("no minima to assign basins to")
        ref = np.asarray(reference, dtype=np.float64).reshape(-1, minima[0].position.shape[0])
        self.energy = energy
        self.minima = minima
        self.k = min(k, len(ref))
        if labels is None:
            self.labels_ = assign_basins(energy, torch.from_numpy(ref), minima)
        else:
            self.labels_ = np.asarray(labels, dtype=np.int64)
            if (
                self.labels_.shape != (len(ref),)
                or not ((self.labels_ >= 0) & (self.labels_ < len(minima))).all()
            ):
                raise ValueError(
                    f"labels must be {len(ref)} basin indices in [0, {len(minima)}), one per "
                    "reference point"
                )
        self.reference_ = ref
        self.grid_ = grid
        self.box_: tuple[np.ndarray, np.ndarray, int] | None = None
        self.tree_ = cKDTree(ref)
        dist, _ = self.tree_.query(ref, k=min(2, len(ref)))
        # A point farther than this from every reference point is outside the index.
        self.radius_ = 2.0 * float(np.median(dist[:, -1])) if len(ref) > 1 else np.inf

    @classmethod
    def around(
        cls,
        energy: EnergyFn,
        minima: list[Minimum],
        points: Tensor | np.ndarray,
        *,
        n_reference: int = 20000,
        seed: int = 0,
    ) -> BasinIndex:
        """An index covering `points` [..., d] (e.g. encoded data): a grid over their box
        widened by half its size for d <= 3, else `n_reference` jittered copies of them."""
        flat = np.asarray(points, dtype=np.float64).reshape(-1, minima[0].position.shape[0])
        d = flat.shape[1]
        lo, hi = flat.min(0), flat.max(0)
        span = np.maximum(hi - lo, 1e-6)
        lo, hi = lo - 0.5 * span, hi + 0.5 * span
        if d <= 3:
            return cls.on_grid(energy, minima, lo, hi, max(2, round(n_reference ** (1 / d))))
        rng = np.random.default_rng(seed)
        pick = flat[rng.integers(len(flat), size=n_reference)]
        ref = pick + 0.1 * span * rng.standard_normal(pick.shape)
        return cls(energy, minima, ref)

    @classmethod
    def on_grid(
        cls,
        energy: EnergyFn,
        minima: list[Minimum],
        lo: np.ndarray,
        hi: np.ndarray,
        n: int,
        *,
        labels: np.ndarray | None = None,
    ) -> BasinIndex:
        """An index whose reference points are the grid of n points per axis over [lo, hi]
        (`box_` keeps lo, hi and n, from which the same grid is rebuilt)."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        d = len(lo)
        ref = grid_points(lo, hi, n)[1].reshape(-1, d)
        index = cls(energy, minima, ref, grid=(lo, (hi - lo) / (n - 1), (n,) * d), labels=labels)
        index.box_ = (lo, hi, n)
        return index

    def assign(self, points: Tensor | np.ndarray, *, exact: bool = True) -> np.ndarray:
        """Basin index of each point [..., d] -> [...] (int64).

        `exact=False` is the bounded-time path for serving: on a grid index a point takes the
        label of its nearest node; otherwise a point whose neighbours disagree (within about
        one reference spacing of a basin boundary) takes their majority vote instead of a
        gradient flow. Only points outside the reference set still flow.
        """
        arr = np.asarray(points, dtype=np.float64)
        flat = arr.reshape(-1, arr.shape[-1])
        if len(self.minima) == 1:
            return np.zeros(arr.shape[:-1], dtype=np.int64)
        if not exact and self.grid_ is not None:
            return self._nearest_node(flat).reshape(arr.shape[:-1])
        dist, idx = self.tree_.query(flat, k=self.k)
        dist, idx = dist.reshape(len(flat), -1), idx.reshape(len(flat), -1)
        votes = self.labels_[idx]
        out = votes[:, 0].copy()
        outside = dist[:, -1] > self.radius_
        split = (votes != votes[:, :1]).any(1)
        if not exact and split.any():
            counts = np.stack([(votes[split] == i).sum(1) for i in range(len(self.minima))], 1)
            out[split] = counts.argmax(1)
        unsure = outside | split if exact else outside
        if unsure.any():
            out[unsure] = assign_basins(self.energy, torch.from_numpy(flat[unsure]), self.minima)
        return out.reshape(arr.shape[:-1])

    def _nearest_node(self, flat: np.ndarray) -> np.ndarray:
        """The label of each point's nearest grid node (a few array operations: no tree);
        points beyond the grid flow."""
        assert self.grid_ is not None
        lo, step, shape = self.grid_
        node = np.rint((flat - lo) / step).astype(np.int64)
        outside = ((node < 0) | (node >= np.asarray(shape))).any(1)
        node = np.clip(node, 0, np.asarray(shape) - 1)
        out = self.labels_[np.ravel_multi_index(tuple(node.T), shape)]
        if outside.any():
            out[outside] = assign_basins(self.energy, torch.from_numpy(flat[outside]), self.minima)
        return out
