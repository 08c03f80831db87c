"""From a trained model to its landscape and segmentations: the steps every consumer shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nld.analysis import Minimum, assign_basins, find_minima, model_energy
from nld.model import NLDModel


@torch.no_grad()
def readout_path(model: NLDModel, x: np.ndarray | torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The lag-free readout r(c_t) for every step: [N, T, d], causal in x; labels are its basins."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    return torch.cat([model.readout_position(part)[0] for part in xt.split(batch)])


@dataclass(frozen=True)
class Landscape:
    minima: list[Minimum]
    beta: float


def find_landscape(
    model: NLDModel, latents: torch.Tensor, n_starts: int = 512, seed: int = 0
) -> Landscape:
    """Minima of the model's energy, searched from encoded points and random starts."""
    energy = model_energy(model)
    flat = latents.reshape(-1, latents.shape[-1])
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(flat.shape[0], generator=gen)[:n_starts]
    minima = find_minima(energy, flat[idx], seed=seed)
    return Landscape(minima, float(model.prior.beta().detach()))


def segment(model: NLDModel, landscape: Landscape, latents: torch.Tensor) -> np.ndarray:
    """Basin index of every latent point: [N, T]."""
    return assign_basins(model_energy(model), latents, landscape.minima)


def label(
    model: NLDModel, x: np.ndarray | torch.Tensor, seed: int = 0
) -> tuple[np.ndarray, Landscape, torch.Tensor]:
    """Online labels [N, T] of x by basin, the landscape (minima searched from x's own
    readout points), and those points [N, T, d]."""
    latents = readout_path(model, x)
    landscape = find_landscape(model, latents, seed=seed)
    return segment(model, landscape, latents), landscape, latents
