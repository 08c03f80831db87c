"""The hot path of streaming segmentation: continue a stream's GRU (and the state chain's
filter, for models with one), read out the latent position and its label (the chain's or
the basin head's class, or the basin of the position looked up without gradient flow per
event), and its energy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nld.inference import basin_labels
from service.registry import LoadedModel


class NonFiniteOutput(ValueError):
    pass


@dataclass(frozen=True)
class Chunk:
    labels: np.ndarray  # [..., T]
    positions: np.ndarray  # [..., T, d]
    energies: np.ndarray  # [..., T]
    h: Tensor  # the GRU state after the chunk
    belief: np.ndarray | None  # [..., K] the state chain's log marginal after it


@torch.inference_mode()
def label_chunk(
    lm: LoadedModel, x: np.ndarray, h: Tensor | None, belief: np.ndarray | None = None
) -> Chunk:
    """Label observations x [T, D] (one stream) or [B, T, D] (B streams stepped together,
    h [1, B, H], belief [B, K]) that continue the streams whose GRU state is h and whose
    state chain's log marginal is `belief` (None at the start of a stream)."""
    assert lm.analysis is not None and lm.analysis.index is not None
    energy_fn = lm.model.prior.energy
    assert energy_fn is not None
    batched = x.ndim == 3
    xt = torch.from_numpy(x)
    chain, new_belief = lm.model.chain, None
    # The chain (whose states are the head's minima: checkpoint.load) labels by itself: the
    # head's classes are not needed then.
    r, classes, h_new = lm.model.read(xt if batched else xt[None], h, head=chain is None)
    if chain is not None:
        xs = x if batched else x[None]
        prev = None if belief is None else np.asarray(belief).reshape(len(xs), -1)
        marginals, _ = chain.filter(xs, prev)
        classes = torch.from_numpy(marginals.argmax(-1))
        new_belief = marginals[:, -1] if batched else marginals[0, -1]
    if not batched:
        r = r[0]
        classes = None if classes is None else classes[0]
    # The model's own float32 energy: one small forward, no copy to float64 per event.
    e = energy_fn(r)
    if not (torch.isfinite(r).all() and torch.isfinite(e).all()):
        raise NonFiniteOutput(
            "the model produced non-finite values for these observations "
            "(are they on the scale of its training data?)"
        )
    z = r.numpy().astype(np.float64)
    index = lm.analysis.index
    labels, _ = basin_labels(
        lm.head_order,
        None if classes is None else classes.numpy(),
        z,
        lambda p: index.assign(p, exact=False),
    )
    return Chunk(labels, z, e.numpy().astype(np.float64), h_new, new_belief)
