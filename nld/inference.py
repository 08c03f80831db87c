"""From a trained model to its landscape and segmentations: the steps every consumer shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from nld import markov
from nld.analysis import Minimum, assign_basins, find_minima, model_energy
from nld.device import device_of
from nld.fitted import Fitted
from nld.model import NLDModel

LABELS_FROM_HEAD = "basin head"  # the most probable basin, from the basin head
LABELS_FROM_CHAIN = "state chain"  # the causal filter of the chain over the minima
LABELS_FROM_POSITION = "readout basins"  # the basin of the readout position
HEAD_TOLERANCE = 0.05  # of the minima's spacing: a fitted minimum this close is the same one


@torch.no_grad()
def readout_path(model: NLDModel, x: np.ndarray | torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The lag-free readout r(c_t) for every step: [N, T, d] on the CPU, causal in x; computed
    on the model's device."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    on = device_of(model)
    return torch.cat([model.read(part.to(on))[0].cpu() for part in xt.split(batch)])


@torch.no_grad()
def read_all(
    model: NLDModel, fitted: Fitted, x: np.ndarray | torch.Tensor, batch: int = 256
) -> tuple[torch.Tensor, np.ndarray | None]:
    """In one pass of the encoder: the readout r(c_t) [N, T, d] of every step, and the basin
    head's log p(class | c_t) [N, T, k] of the fitted minima (None without a fitted head),
    causal in x; computed on the model's device, returned on the CPU."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    on = device_of(model)
    parts = [model.read(part.to(on), classes=fitted.classes)[:2] for part in xt.split(batch)]
    positions = torch.cat([r.cpu() for r, _ in parts])
    if any(h is None for _, h in parts):
        return positions, None
    return positions, torch.cat([h.cpu() for _, h in parts if h is not None]).numpy()


def read_path(
    model: NLDModel,
    fitted: Fitted,
    x: np.ndarray | torch.Tensor,
    batch: int = 256,
    *,
    chain: bool = True,
) -> tuple[torch.Tensor, np.ndarray | None]:
    """The readout r(c_t) [N, T, d] of every step and its class [N, T] (an index of the
    fitted minima: the state chain's filter when there is one and `chain`, else the basin
    head's most probable basin; None without a fitted head), causal in x."""
    positions, head = read_all(model, fitted, x, batch)
    classes = None if head is None else head.argmax(-1)
    return positions, chain_classes(fitted, x, classes) if chain else classes


def chain_classes(
    fitted: Fitted, x: np.ndarray | torch.Tensor, head: np.ndarray | None
) -> np.ndarray | None:
    """The classes read_path gives for x, from the basin head's classes `head` of x: the
    state chain's filter when there is a chain and a fitted head, else `head`."""
    if head is None or fitted.chain is None:
        return head
    return fitted.chain.labels(torch.as_tensor(x).double().numpy())


def class_reading(
    fitted: Fitted,
    x: np.ndarray | torch.Tensor,
    head: np.ndarray | None,
    *,
    online: bool = True,
    viterbi: bool = False,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The class of every step [N, T] (an index of the fitted minima) and the log probability
    of each class [N, T, k], given the steps so far (online) or the whole of x (each step's
    most probable class, or with `viterbi` the most probable path): from the state chain where
    there is one, else from the basin head's log probabilities `head` (read_all), online as
    they are and offline through the head chain. None where there is neither."""
    chain = fitted.chain
    if chain is not None:
        ll = chain.loglik(torch.as_tensor(x).double().numpy())
        if online:
            log_p = markov.forward(chain.log_init, chain.log_trans, ll)[0]
            return log_p.argmax(-1), log_p
        log_p = markov.smooth(chain.log_init, chain.log_trans, ll)
        path = markov.viterbi(chain.log_init, chain.log_trans, ll) if viterbi else None
        return (log_p.argmax(-1) if path is None else path), log_p
    if head is None:
        return None
    if online:
        return head.argmax(-1), head
    if fitted.head_chain is None:
        return None
    said = head.argmax(-1)
    log_p = fitted.head_chain.smooth(said)
    return (fitted.head_chain.viterbi(said) if viterbi else log_p.argmax(-1)), log_p


def class_source(fitted: Fitted) -> str:
    """Where read_path's classes come from."""
    return LABELS_FROM_CHAIN if fitted.chain is not None else LABELS_FROM_HEAD


def head_order(fitted: Fitted, minima: list[Minimum]) -> np.ndarray | None:
    """For each class of the basin head, the index in `minima` of the minimum it stands for
    (`fitted.minima`); None without a fitted head or when its minima are not these (another
    search found more or fewer): then labels come from the readout's basins."""
    positions = fitted.minima.double().numpy()
    if len(positions) == 0 or len(positions) != len(minima):
        return None
    pos = np.stack([m.position for m in minima])
    dist = np.linalg.norm(positions[:, None] - pos[None], axis=-1)
    order = dist.argmin(1)
    gaps = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    spacing = float(gaps[np.triu_indices(len(pos), 1)].min()) if len(pos) > 1 else 1.0
    if len(set(order.tolist())) != len(order) or dist[np.arange(len(order)), order].max() > (
        HEAD_TOLERANCE * spacing
    ):
        return None
    return order


def basin_labels(
    order: np.ndarray | None,
    classes: np.ndarray | None,
    positions: torch.Tensor | np.ndarray,
    assign: Callable[[torch.Tensor | np.ndarray], np.ndarray],
    source: str = LABELS_FROM_HEAD,
) -> tuple[np.ndarray, str]:
    """Labels (indices of minima) and where they come from: the `classes` (from `source`:
    class_source) mapped by `order` (head_order) when there are both, else
    `assign`(positions), the basin of each readout position."""
    if order is not None and classes is not None:
        return order[classes], source
    return assign(positions), LABELS_FROM_POSITION


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


@dataclass(frozen=True)
class Labelled:
    """What `label` finds in data."""

    labels: np.ndarray  # [N, T] online labels: indices of landscape.minima
    landscape: Landscape  # minima searched from the data's own readout points
    latents: torch.Tensor  # [N, T, d] those points
    source: str  # where the labels come from (basin_labels)


def label(model: NLDModel, fitted: Fitted, x: np.ndarray | torch.Tensor, seed: int = 0) -> Labelled:
    """Online labels of x [N, T, D] by basin, on the minima searched from x's own readout
    points."""
    latents, classes = read_path(model, fitted, x)
    landscape = find_landscape(model, latents, seed=seed)
    labels, source = landscape_labels(model, fitted, landscape, latents, classes)
    return Labelled(labels, landscape, latents, source)


def landscape_labels(
    model: NLDModel,
    fitted: Fitted,
    landscape: Landscape,
    latents: torch.Tensor,
    classes: np.ndarray | None,
) -> tuple[np.ndarray, str]:
    """Labels [N, T] of readout points `latents` [N, T, d] with basin-head `classes` (read_path)
    on `landscape`, and where they come from (basin_labels; positions by gradient flow)."""
    return basin_labels(
        head_order(fitted, landscape.minima),
        classes,
        latents,
        lambda z: segment(model, landscape, torch.as_tensor(z)),
        class_source(fitted),
    )
