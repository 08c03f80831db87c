"""The hot path of streaming segmentation: continue a stream's GRU, read out the latent
position, look its basin up (no gradient flow per event) and its energy."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nld.analysis.grid import energy_on
from service.registry import LoadedModel


class NonFiniteOutput(ValueError):
    pass


@torch.no_grad()
def label_chunk(
    lm: LoadedModel, x: np.ndarray, h: Tensor | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Tensor]:
    """Labels [..., T], positions [..., T, d], energies [..., T] for observations x [T, D]
    (one stream) or [B, T, D] (B streams stepped together, h [1, B, H]) that continue the
    streams whose GRU state is h; and the new state."""
    assert lm.analysis is not None and lm.analysis.index is not None
    batched = x.ndim == 3
    xt = torch.from_numpy(x).float()
    r, h_new = lm.model.readout_position(xt if batched else xt[None], h)
    z = r.double().numpy()
    if not batched:
        z = z[0]
    energy = energy_on(lm.analysis.index.energy, z)
    if not (np.isfinite(z).all() and np.isfinite(energy).all()):
        raise NonFiniteOutput(
            "the model produced non-finite values for these observations "
            "(are they on the scale of its training data?)"
        )
    return lm.analysis.index.assign(z), z, energy, h_new
