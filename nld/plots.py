"""Figures of a learned landscape (matplotlib, headless). Each function takes computed
results and returns a Figure; `save` writes it as PNG atomically. Nothing here computes
an analysis: see `nld.landscape` and `nld.analysis`."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from nld.analysis.grid import Grid, Plane
from nld.analysis.minima import Minimum
from nld.analysis.transitions import Saddle
from nld.io import read_jsonl, write_bytes

DriftFn = Callable[[np.ndarray], np.ndarray]  # latent points [n, d] -> drift [n, d]


def save(fig: Figure, path: str | Path) -> None:
    write_bytes(path, png(fig))


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (and closed)."""
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()


def _levels(e: np.ndarray, n: int = 30) -> np.ndarray:
    """Contour levels from the minimum to a high quantile (an energy's confinement makes
    the box's corners dwarf the wells otherwise)."""
    lo, hi = float(e.min()), float(np.quantile(e, 0.7))
    return np.linspace(lo, hi if hi > lo else lo + 1, n)


def _mark(ax, plane: Plane, minima: list[Minimum], saddles: list[Saddle]) -> None:
    for s in saddles:
        path = plane.project(s.path)
        ax.plot(path[:, 0], path[:, 1], "w-", lw=1.5)
        p = plane.project(s.position)
        ax.plot(p[0], p[1], "wx", ms=9, mew=2)
    for i, m in enumerate(minima):
        p = plane.project(m.position)
        ax.plot(p[0], p[1], "o", color="white", mec="black", ms=8)
        ax.annotate(str(i), (p[0], p[1]), textcoords="offset points", xytext=(6, 6), color="white")


def contour(
    grid: Grid,
    plane: Plane,
    minima: list[Minimum],
    saddles: Sequence[Saddle] = (),
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    title: str = "E on the plane of the minima",
) -> Figure:
    """Contours of E on a plane grid, with minima (o), saddles (x), minimum energy paths
    (white) and encoded data points [N, T, d] coloured by their labels [N, T] (the path of
    the first recording drawn as a line: a stream moving between the wells)."""
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    u, v = grid.axes
    cs = ax.contourf(u, v, grid.energy.T, levels=_levels(grid.energy), cmap="viridis", extend="max")
    fig.colorbar(cs, ax=ax, label="E")
    if points is not None:
        d = points.shape[-1]
        uv = plane.project(points.reshape(-1, d))
        if labels is None:
            ax.scatter(uv[:, 0], uv[:, 1], s=4, color="0.85", alpha=0.4, lw=0)
        else:
            flat = labels.ravel()
            for k in np.unique(flat):
                at = flat == k
                ax.scatter(
                    uv[at, 0],
                    uv[at, 1],
                    s=4,
                    color=f"C{k % 10}",
                    alpha=0.5,
                    lw=0,
                    label=f"label {k}",
                )
            ax.legend(loc="upper right", fontsize=8, markerscale=3, framealpha=0.8)
        if points.ndim == 3:
            first = plane.project(points[0])
            ax.plot(first[:, 0], first[:, 1], color="white", lw=0.5, alpha=0.6)
    _mark(ax, plane, minima, list(saddles))
    ax.set(xlabel="plane axis 1", ylabel="plane axis 2", title=title)
    ax.set_xlim(u[0], u[-1])
    ax.set_ylim(v[0], v[-1])
    return fig


def profile(
    grid: Grid, minima: Sequence[Minimum], title: str = "E along the latent axis"
) -> Figure:
    """Latent dimension 1: E on a line grid, with the minima (o) numbered."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(grid.axes[0], grid.energy, color="0.25")
    for i, m in enumerate(minima):
        ax.plot(m.position[0], m.energy, "o", color=f"C{i % 10}", mec="black", ms=9)
        ax.annotate(str(i), (m.position[0], m.energy), textcoords="offset points", xytext=(6, 6))
    ax.set(xlabel="z", ylabel="E", title=title)
    return fig


def surface(grid: Grid, title: str = "E on the plane of the minima") -> Figure:
    fig = plt.figure(figsize=(6.4, 5.4))
    ax = fig.add_subplot(projection="3d")
    u, v = np.meshgrid(*grid.axes, indexing="ij")
    e = np.minimum(grid.energy, _levels(grid.energy)[-1])
    ax.plot_surface(u, v, e, cmap="viridis", rstride=2, cstride=2, lw=0, antialiased=True)
    ax.set(xlabel="plane axis 1", ylabel="plane axis 2", zlabel="E", title=title)
    return fig


def volume(grid: Grid, minima: list[Minimum], quantile: float = 0.15) -> Figure:
    """Latent dimension 3: the grid points of lowest energy (the wells), coloured by E."""
    fig = plt.figure(figsize=(6.4, 5.4))
    ax = fig.add_subplot(projection="3d")
    e = grid.energy.ravel()
    pts = grid.points.reshape(-1, 3)
    keep = e <= np.quantile(e, quantile)
    sc = ax.scatter(*pts[keep].T, c=e[keep], cmap="viridis", s=3, alpha=0.25)
    for i, m in enumerate(minima):
        ax.scatter(*m.position, color="red", s=40)
        ax.text(*m.position, f" {i}")
    fig.colorbar(sc, ax=ax, label="E", shrink=0.7)
    ax.set(xlabel="z1", ylabel="z2", zlabel="z3", title=f"lowest {quantile:.0%} of E on a grid")
    return fig


def drift_field(
    drift: DriftFn,
    plane: Plane,
    extent: tuple[float, float, float, float],
    minima: Sequence[Minimum] = (),
    n: int = 25,
    title: str = "prior drift on the plane",
) -> Figure:
    """Quiver and flow lines of a drift projected on a plane (for an NSDE, its only picture)."""
    u = np.linspace(extent[0], extent[1], n)
    v = np.linspace(extent[2], extent[3], n)
    uv = np.stack(np.meshgrid(u, v, indexing="xy"), -1)
    f = drift(plane.embed(uv).reshape(-1, plane.origin.shape[0]))
    fp = (f @ plane.basis.T).reshape(n, n, 2)
    speed = np.linalg.norm(fp, axis=-1)
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    ax.streamplot(u, v, fp[..., 0], fp[..., 1], color=speed, cmap="magma", density=1.2)
    ax.quiver(u[::2], v[::2], fp[::2, ::2, 0], fp[::2, ::2, 1], alpha=0.4)
    for i, m in enumerate(minima):
        p = plane.project(m.position)
        ax.plot(p[0], p[1], "o", color="tab:blue", ms=8)
        ax.annotate(str(i), (p[0], p[1]), textcoords="offset points", xytext=(6, 6))
    ax.set(xlabel="plane axis 1", ylabel="plane axis 2", title=title)
    return fig


def segmentation(
    labels: np.ndarray, states: np.ndarray | None = None, n_sequences: int = 3
) -> Figure:
    """Predicted basin over time (and the true state, when known) for a few sequences."""
    n = min(n_sequences, len(labels))
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.8 * n + 0.4), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        if states is not None:
            ax.step(
                np.arange(labels.shape[1]),
                states[i],
                where="mid",
                color="black",
                lw=2,
                label="true state",
            )
        ax.step(
            np.arange(labels.shape[1]),
            labels[i],
            where="mid",
            color="tab:orange",
            lw=1.2,
            label="basin",
        )
        ax.set_ylabel(f"seq {i}")
        ax.set_yticks(range(int(max(labels.max(), -1 if states is None else states.max())) + 1))
    axes[0, 0].legend(loc="upper right", ncols=2)
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(
        "segmentation: online label (basin index)" + (" vs truth" if states is not None else "")
    )
    return fig


def path_profiles(saddles: Sequence[Saddle], minima: list[Minimum], beta: float) -> Figure:
    """Energy along each minimum energy path (arc length normalised), barriers in 1/beta."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in saddles:
        seg = np.linalg.norm(np.diff(s.path, axis=0), axis=1)
        arc = np.concatenate([[0], np.cumsum(seg)])
        arc = arc / max(arc[-1], 1e-12)
        b = [beta * x for x in s.barrier(minima)]
        ax.plot(arc, s.path_energy, label=f"{s.pair[0]} - {s.pair[1]}: {b[0]:.1f} / {b[1]:.1f} kT")
    ax.set(
        xlabel="position along the path",
        ylabel="E",
        title="minimum energy paths (barriers from each end)",
    )
    if saddles:
        ax.legend()
    return fig


def training_curves(metrics: str | Path) -> Figure:
    rows = read_jsonl(metrics)
    it = [r["iteration"] for r in rows]
    keys = [k for k in ("elbo", "loglik", "kl_path", "kl0", "readout", "beta") if k in rows[0]]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.6 * len(keys) + 0.4), sharex=True)
    for ax, k in zip(np.atleast_1d(axes), keys, strict=True):
        ax.plot(it, [r[k] for r in rows], lw=1)
        ax.set_ylabel(k)
    np.atleast_1d(axes)[-1].set_xlabel("iteration")
    fig.suptitle("training (per step, from metrics.jsonl)")
    return fig
