"""A stage of training: set the wells' relative depths to the time the data spend in each state.

The calibration stage (`nld.fitting.calibrate`) fits exp(-beta E) to the posterior's sampled
positions. Their basin fractions are a noisy witness of the time the data spend in each
state: on exp2 they sat .016-.022 (l1) from the data's state frequencies, the energy's
occupancies followed them (.022-.024), while the state chain's stationary distribution, fitted
to the same data without labels, sat .002 from them (bench/occupancy_source.py, bench/RESULTS.md
"Where exp2's occupancy error comes from"). This stage calibrates once more with the positions
weighted so that each basin carries the chain's stationary share of them: the shape of every
well still comes from where the posterior goes, its depth relative to the others from the
chain. It runs after the separation stage (on the final chain) and before the clock (which is
fitted on the final landscape). The record keeps the chain's shares and the masses of
exp(-beta E) in the same basins before and after (`meta.depths`, states in the chain's order).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from nld.analysis import BasinIndex, Minimum
from nld.analysis.energy import model_energy
from nld.analysis.occupancy import quadrature
from nld.data import Dataset
from nld.errors import NLDError
from nld.fitted import Fitted
from nld.fitting.calibrate import applies as calibration_applies
from nld.fitting.calibrate import calibrate
from nld.fitting.clock import readout_positions
from nld.fitting.record import StageRecord, values
from nld.inference import head_order
from nld.landscape import quadrature_box, wells
from nld.model import NLDModel


class DepthsFit(StageRecord):
    iterations: int
    target: list[float]  # the state chain's stationary distribution
    mass_before: list[float]  # exp(-beta E) in each state's basin before the stage
    mass_after: list[float]  # ... and after it (same basins; states in the chain's order)
    seconds: float
    skipped: str | None = None  # why the depths were left as they were
    kept: bool = False  # False: the fit did not lower the weighted loss and was undone
    undone: str | None = None  # why a fit that lowered its loss was undone all the same

    def changed(self) -> bool:
        return self.kept and self.skipped is None

    def describe(self) -> list[str]:
        if self.skipped:
            return [f"depths: left as they were ({self.skipped})"]
        undone = (
            ""
            if self.kept
            else f": undone, {self.undone}"
            if self.undone
            else ": the fit did not lower its loss and was undone"
        )
        return [
            f"depths: {self.iterations} steps ({self.seconds:.0f} s){undone}",
            f"  state chain's shares: {values(self.target, '.3f')}",
            f"  basin mass before: {values(self.mass_before, '.3f')}",
            f"  basin mass after:  {values(self.mass_after, '.3f')}",
        ]


class Settings(BaseModel):
    """[stages.depths]"""

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(
        300,
        ge=0,
        description="steps of the stage that refits the wells' depths to the state chain's "
        "stationary distribution (energy models with a state chain, latent dimension <= 3; "
        "0: never)",
    )


def applies(model: NLDModel, fitted: Fitted) -> bool:
    return calibration_applies(model) and fitted.chain is not None


def basin_weights(index: BasinIndex, share: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
    """Weights for positions [n, d] under which basin k holds the share `share[k]` of them
    (a basin none of them is in stays empty)."""

    def weigh(q: torch.Tensor) -> torch.Tensor:
        basins = index.assign(q.double().numpy(), exact=False)
        seen = np.bincount(basins, minlength=len(share)) / len(basins)
        return torch.from_numpy(share / np.maximum(seen, 1e-12))[basins]

    return weigh


def fit_depths(
    model: NLDModel,
    fitted: Fitted,
    data: Dataset,
    iterations: int,
    seed: int,
    progress_bar: bool = True,
) -> DepthsFit:
    """Refit the depths of `model`'s wells to its state chain's (`fitted.chain`) stationary
    distribution, in place; see the module. Where that cannot be done the model is left as it
    was, and the record says why."""
    start = time.perf_counter()

    def skip(why: str) -> DepthsFit:
        return DepthsFit(
            iterations=iterations,
            target=[],
            mass_before=[],
            mass_after=[],
            seconds=round(time.perf_counter() - start, 3),
            skipped=why,
        )

    if not applies(model, fitted):
        return skip("needs an energy model with a state chain and latent dimension <= 3")
    assert fitted.chain is not None
    latents = readout_positions(model, data, seed)
    try:
        res = wells(model, latents, seed=seed)
    except NLDError as e:
        return skip(str(e))
    order, index = head_order(fitted, res.minima), res.index
    if order is None or index is None:
        return skip("the analysis found other minima than the chain's")
    target = np.zeros(len(res.minima))
    target[order] = fitted.chain.stationary()
    lo, hi = quadrature_box(latents.double().numpy())

    def mass() -> list[float]:
        m = quadrature(model_energy(model), res.minima, res.beta, lo, hi, assign=index.assign)
        return m[order].tolist()

    before = mass()
    weigh = basin_weights(index, target)
    energy = model.prior.energy
    assert energy is not None
    saved = {k: v.detach().clone() for k, v in energy.state_dict().items()}
    fit = calibrate(model, data, iterations, seed, progress_bar, weigh=weigh)
    kept, undone = fit.nll_after < fit.nll_before, None
    if kept and head_order(fitted, _minima(model, latents, seed)) is None:
        # Deeper and shallower wells can merge or part: then the basin head and the state
        # chain no longer stand for the landscape's minima, and labels would lose them.
        energy.load_state_dict(saved)
        kept = False
        undone = "it merged or moved wells: the chain's states were no longer the minima"
    return DepthsFit(
        iterations=iterations,
        target=target[order].tolist(),
        mass_before=before,
        mass_after=mass(),
        seconds=round(time.perf_counter() - start, 3),
        kept=kept,
        undone=undone,
    )


def _minima(model: NLDModel, latents: torch.Tensor, seed: int) -> list[Minimum]:
    try:
        return wells(model, latents, seed=seed).minima
    except NLDError:  # no minimum in the region searched
        return []
