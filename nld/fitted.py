"""What the stages after training fit beside the network: the minima the basin head's classes
stand for, and a hidden Markov chain over them: the state chain (nld.state_chain, of Gaussian
or AR(1) emissions), or where neither fits the data, the chain on the basin head's classes
(nld.head_chain).

The network (nld.model.NLDModel, a torch module) holds what gradient descent learns; a
`Fitted` holds what is read off it afterwards, and is saved in the same weights file:

    basin_minima  [MAX_BASINS, d]   the first basin_count rows: the minima, in class order
    basin_count   []                how many (0: the basin head is not fitted)
    chain.*                         the state chain, whose states are those minima
                                    (chain.dynamics and chain.marginals: AR(1) emissions)
    head_chain.*                    the basin head's chain, over the same minima

A model without a basin head stores neither basin tensor. The prior's clock is not here: it
is a parameter of the generative prior (`ModelConfig.clock`), as its friction and mass are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nld import head_chain, state_chain
from nld.head_chain import HeadChain
from nld.model import ModelConfig
from nld.model.vae import MAX_BASINS
from nld.state_chain import StateChain

MINIMA, COUNT = "basin_minima", "basin_count"  # their names in a weights file
CHAIN_PREFIXES = (state_chain.PREFIX, head_chain.PREFIX)  # of the chains' tensors


@dataclass
class Fitted:
    minima: Tensor  # [k, d]
    chain: StateChain | None = None  # over `minima`, in their order; labels by its filter
    # Over `minima` where `chain` is None: offline labels and kinetics (online: the head's).
    head_chain: HeadChain | None = None

    @classmethod
    def none(cls, cfg: ModelConfig) -> Fitted:
        """Nothing fitted yet, for a network of config `cfg`."""
        return cls(torch.empty(0, cfg.latent_dim))

    @property
    def classes(self) -> int:
        """How many of the basin head's classes stand for a minimum (0: not fitted)."""
        return len(self.minima)

    def set_minima(self, positions: Tensor) -> None:
        """The positions [k, d] of the minima the basin head's first k classes stand for (float32,
        as the weights file keeps them); the chain, over the previous minima, is dropped."""
        if len(positions) > MAX_BASINS:
            raise ValueError(
                f"the basin head has room for 0..{MAX_BASINS} minima, not {len(positions)}"
            )
        self.minima = positions.detach().to(torch.float32).clone()
        self.chain = self.head_chain = None

    def restore(self, other: Fitted) -> None:
        """Take what `other` holds (a copy saved before a stage that was undone)."""
        self.minima, self.chain, self.head_chain = other.minima, other.chain, other.head_chain

    def set_chain(self, chain: StateChain | None) -> None:
        """Label by `chain` (None: by the basin head); its states must be the minima."""
        if chain is not None and not torch.equal(
            torch.as_tensor(chain.positions), self.minima.double()
        ):
            raise ValueError("the state chain's states are not the basin head's minima")
        self.chain = chain

    def set_head_chain(self, chain: HeadChain | None) -> None:
        """The basin head's chain (None: none); its states must be the minima."""
        if chain is not None and len(chain.log_init) != self.classes:
            raise ValueError(
                f"the head chain has {len(chain.log_init)} states, the basin head {self.classes}"
            )
        self.head_chain = chain

    def to_tensors(self, cfg: ModelConfig) -> dict[str, Tensor]:
        """Its tensors in a weights file (module docstring)."""
        out: dict[str, Tensor] = {}
        if cfg.basin_head:
            table = torch.zeros(MAX_BASINS, cfg.latent_dim)
            table[: self.classes] = self.minima
            out |= {MINIMA: table, COUNT: torch.tensor(self.classes, dtype=torch.long)}
        if self.chain is not None:
            out |= state_chain.to_tensors(self.chain)
        if self.head_chain is not None:
            out |= head_chain.to_tensors(self.head_chain)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], cfg: ModelConfig) -> Fitted:
        """The `Fitted` that `to_tensors` stored, taken out of `tensors` (the rest are the
        network's); ValueError naming what does not fit the config."""
        fitted = cls.none(cfg)
        chain = {k: tensors.pop(k) for k in list(tensors) if k.startswith(state_chain.PREFIX)}
        heads = {k: tensors.pop(k) for k in list(tensors) if k.startswith(head_chain.PREFIX)}
        if cfg.basin_head:
            if MINIMA not in tensors or COUNT not in tensors:
                raise ValueError(f"the basin head's {MINIMA} and {COUNT} are missing")
            table, count = tensors.pop(MINIMA), tensors.pop(COUNT)
            if table.shape != (MAX_BASINS, cfg.latent_dim) or count.shape != ():
                raise ValueError(
                    f"{MINIMA} has shape {tuple(table.shape)} and {COUNT} {tuple(count.shape)}, "
                    f"the config implies {(MAX_BASINS, cfg.latent_dim)} and ()"
                )
            k = int(count)
            if not 0 <= k <= MAX_BASINS or not torch.isfinite(table).all():
                raise ValueError(f"{COUNT} {k} is not in 0..{MAX_BASINS}, or {MINIMA} not finite")
            fitted.minima = table[:k].clone()
        if chain:
            fitted.set_chain(state_chain.from_tensors(chain, cfg.obs_dim, cfg.latent_dim))
        if heads:
            fitted.set_head_chain(head_chain.from_tensors(heads, fitted.classes))
        return fitted
