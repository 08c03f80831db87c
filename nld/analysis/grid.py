"""Energy on grids: axis-aligned boxes, and the plane through three (or more) minima."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nld.analysis.energy import EnergyFn


@dataclass(frozen=True)
class Plane:
    """Points origin + u a + v b, a and b orthonormal [d] (for d = 1, b is zero)."""

    origin: np.ndarray  # [d]
    basis: np.ndarray  # [2, d]

    def embed(self, uv: np.ndarray) -> np.ndarray:
        """Plane coordinates [..., 2] -> latent points [..., d]."""
        return self.origin + uv @ self.basis

    def project(self, points: np.ndarray) -> np.ndarray:
        """Latent points [..., d] -> plane coordinates [..., 2]."""
        return (points - self.origin) @ self.basis.T


def plane_through(points: np.ndarray) -> Plane:
    """The plane through three points, or the best (PCA) plane through more; centred on
    their mean. In d = 2 this is the latent plane itself (axes kept as they are)."""
    pts = np.asarray(points, dtype=np.float64)
    d = pts.shape[1]
    origin = pts.mean(0)
    if d == 1:
        return Plane(origin, np.array([[1.0], [0.0]]))
    if d == 2 or len(pts) < 3:
        basis = np.eye(d)[:2]
        if d > 2 and len(pts) == 2:
            a = (pts[1] - pts[0]) / max(np.linalg.norm(pts[1] - pts[0]), 1e-12)
            b = np.eye(d)[int(np.argmin(np.abs(a)))]
            b = b - (b @ a) * a
            basis = np.stack([a, b / np.linalg.norm(b)])
        return Plane(origin, basis)
    _, _, vt = np.linalg.svd(pts - origin, full_matrices=False)
    return Plane(origin, vt[:2])


@dataclass(frozen=True)
class Grid:
    axes: tuple[np.ndarray, ...]  # coordinates along each grid axis
    points: np.ndarray  # [n_1, ..., n_k, d] latent points
    energy: np.ndarray  # [n_1, ..., n_k]


def energy_on(energy: EnergyFn, points: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """E at points [..., d] (float64, batched)."""
    flat = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float64)).reshape(
        -1, points.shape[-1]
    )
    with torch.no_grad():
        e = torch.cat([energy(part) for part in flat.split(chunk)])
    return e.numpy().reshape(points.shape[:-1])


def grid_points(
    lo: np.ndarray, hi: np.ndarray, n: int | list[int]
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The axes of an axis-aligned grid over [lo, hi] with n points per axis, and its
    points [n_1, ..., n_k, d]."""
    counts = [n] * len(lo) if isinstance(n, int) else list(n)
    axes = tuple(np.linspace(float(a), float(b), c) for a, b, c in zip(lo, hi, counts, strict=True))
    return axes, np.stack(np.meshgrid(*axes, indexing="ij"), -1)


def box_grid(energy: EnergyFn, lo: np.ndarray, hi: np.ndarray, n: int | list[int]) -> Grid:
    """E on an axis-aligned grid over [lo, hi] with n points per axis."""
    axes, pts = grid_points(lo, hi, n)
    return Grid(axes, pts, energy_on(energy, pts))


def plane_grid(
    energy: EnergyFn, plane: Plane, extent: tuple[float, float, float, float], n: int
) -> Grid:
    """E on an n x n grid of the plane over (u_min, u_max, v_min, v_max)."""
    u = np.linspace(extent[0], extent[1], n)
    v = np.linspace(extent[2], extent[3], n)
    uv = np.stack(np.meshgrid(u, v, indexing="ij"), -1)
    pts = plane.embed(uv)
    return Grid((u, v), pts, energy_on(energy, pts))
