"""`nld plot`: every figure of a checkpoint, written as PNGs into one directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nld import plots
from nld.analysis import match_labels, model_energy, value_and_grad
from nld.analysis.grid import Plane, box_grid, plane_grid, plane_through
from nld.data import Dataset
from nld.inference import readout_path
from nld.landscape import Analysis
from nld.model import NLDModel


def _drift(model: NLDModel) -> plots.DriftFn:
    """The prior's drift on positions: the force -grad E for NLD, the MLP for an NSDE."""
    if model.cfg.has_energy:
        energy = model_energy(model)

        def force(z: np.ndarray) -> np.ndarray:
            return -value_and_grad(energy, torch.from_numpy(z))[1].numpy()

        return force

    def mlp(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.prior.drift(torch.from_numpy(z).float()).double().numpy()

    return mlp


def _extent(plane: Plane, pts: np.ndarray) -> tuple[float, float, float, float]:
    uv = plane.project(pts)
    lo, hi = uv.min(0), uv.max(0)
    pad = 0.25 * np.maximum(hi - lo, 1e-2).max()
    return (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)


def write_figures(
    model: NLDModel,
    run_dir: str | Path,
    out: str | Path,
    *,
    data: Dataset | None = None,
    analysis: Analysis | None = None,
    labels: np.ndarray | None = None,
    grid_points: int = 120,
) -> list[Path]:
    """Write every figure that applies to this model; returns the paths written."""
    out = Path(out)
    written: list[Path] = []

    def put(fig: plots.Figure, name: str) -> None:
        plots.save(fig, out / name)
        written.append(out / name)

    metrics = Path(run_dir) / "metrics.jsonl"
    if metrics.exists() and metrics.stat().st_size:
        put(plots.training_curves(metrics), "training.png")
    latents = readout_path(model, data.x[:200]).numpy() if data is not None else None
    d = model.cfg.latent_dim
    if analysis is None:
        if latents is None:
            return written
        pts = latents.reshape(-1, d)
        plane = plane_through(pts[:: max(1, len(pts) // 2000)])
        put(plots.drift_field(_drift(model), plane, _extent(plane, pts)), "drift.png")
        return written

    centres = np.stack([m.position for m in analysis.minima])
    plane = plane_through(centres) if len(centres) >= 2 else Plane(centres[0], np.eye(d)[:2])
    cloud = centres if latents is None else np.concatenate([centres, latents.reshape(-1, d)])
    extent = _extent(plane, cloud)
    energy = model_energy(model)
    grid = plane_grid(energy, plane, extent, grid_points)
    shown = None if latents is None else latents[:20]
    shown_labels = None if labels is None else labels[:20]
    put(
        plots.contour(grid, plane, analysis.minima, analysis.saddles, shown, shown_labels),
        "landscape.png",
    )
    put(plots.surface(grid), "surface.png")
    if d == 3:
        lo, hi = cloud.min(0), cloud.max(0)
        pad = 0.25 * (hi - lo)
        put(plots.volume(box_grid(energy, lo - pad, hi + pad, 40), analysis.minima), "volume.png")
    put(
        plots.drift_field(_drift(model), plane, extent, analysis.minima, title="force -grad E"),
        "drift.png",
    )
    if analysis.saddles:
        put(plots.path_profiles(analysis.saddles, analysis.minima, analysis.beta), "paths.png")
    if labels is not None:
        states = data.states if data is not None else None
        if states is not None:
            # Number basins by the state they match, so the two step lines coincide.
            mapping = match_labels(labels, states, len(analysis.minima)).mapping
            lut = np.array([mapping.get(i, -1) for i in range(len(analysis.minima))])
            labels = lut[labels]
        put(plots.segmentation(labels, states), "segmentation.png")
    return written
