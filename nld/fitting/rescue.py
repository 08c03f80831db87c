"""The guard against a single well: when hidden states switch every few steps, each jump of
the posterior path costs path KL, so the full ELBO keeps the wells within about one step's
noise of each other and the energy can end with a single minimum although the readout
positions are clearly clustered by state. Then nothing can be segmented; a lower KL weight
lets the wells separate (measured in bench/unseen.py, case 0).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import gaussian_kde
from sklearn.mixture import GaussianMixture

from nld.data import Dataset
from nld.inference import find_landscape, readout_path
from nld.model import NLDModel

DIP = 0.5  # a valley below this fraction of the lower mode's density makes two modes


def readout_points(model: NLDModel, data: Dataset, n: int = 4000, seed: int = 0) -> np.ndarray:
    """Up to `n` readout positions r(c_t) of the data, drawn at random, [n, d]."""
    x = data.x[: max(1, min(len(data.x), 4 * n // data.length + 1))]
    r = readout_path(model, x).reshape(-1, model.cfg.latent_dim).double().numpy()
    rng = np.random.default_rng(seed)
    return r[rng.permutation(len(r))[:n]]


def valley_ratio(points: np.ndarray, seed: int = 0) -> float:
    """How deep the density dips between the two halves of the points.

    A two-component Gaussian mixture names the two halves; along the line through their
    means, the ratio of the lowest kernel density between the means to the lower of the
    densities at the means: about 1 for one mode, near 0 for two well-separated ones.
    """
    gm = GaussianMixture(2, covariance_type="full", random_state=seed, n_init=3).fit(points)
    axis = gm.means_[1] - gm.means_[0]
    norm = float(np.linalg.norm(axis))
    if norm == 0:
        return 1.0
    proj = points @ (axis / norm)
    a, b = sorted(gm.means_ @ (axis / norm))
    density = gaussian_kde(proj)(np.linspace(a, b, 101))
    return float(density.min() / min(density[0], density[-1]))


def single_well(model: NLDModel, data: Dataset) -> str | None:
    """Why the model needs rescuing (one energy minimum, multimodal readout), or None."""
    if model.readout is None or not model.cfg.has_energy:
        return None
    points = readout_points(model, data)
    minima = find_landscape(model, torch.from_numpy(points)).minima
    if len(minima) != 1:
        return None
    ratio = valley_ratio(points)
    if ratio >= DIP:
        return None
    return (
        "the energy has a single minimum but the readout positions have several modes "
        f"(the density between two dips to {ratio:.0%} of their peaks)"
    )
