"""The last stage of training: set the prior's clock from how long the data stay in each state.

Training fits the prior's drift to the posterior's where the posterior goes. That pins the
landscape (its minima, the occupancies exp(-beta E) gives, the ratios of its rates) but not how
fast the prior moves through it: the posterior crosses a barrier in a step or two under its own
control, and no term of the ELBO asks how often the prior would. Measured before this stage,
the prior's simulated dwell times were 1.5-2.3x the data's on the 20 exp1/exp2 report runs and
3-23x on Langevin data (bench/RESULTS.md, "Kinetics: one clock factor").

One number fixes the scale: the prior's clock c (`ModelConfig.clock`, `nld.model.prior`), which
runs the same landscape c times faster and leaves the ELBO, the posterior and the labels as
they were. The stage finds the landscape as `nld analyze` does, simulates the prior between its
wells (`nld.landscape.simulated_cores`), and sets c to the geometric mean over states of the
prior's dwell time over the state chain's: the hidden Markov chain fitted to the training data
without labels (`nld.state_chain`). What is left is what the landscape says about the states
relative to each other. The prior is then simulated again with its clock and the clock
corrected once by what it gives; the checkpoint keeps the dwell times before and after
(`meta.clock`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from nld.analysis.energy import model_energy
from nld.analysis.transitions import milestone_dwell
from nld.data import Dataset
from nld.errors import NLDError
from nld.fitted import Fitted
from nld.fitting.basin_head import training_sequences
from nld.fitting.record import StageRecord, values
from nld.inference import head_order, readout_path
from nld.landscape import analyze, simulated_cores
from nld.model import NLDModel

MAX_POINTS = 20_000  # readout positions of the training data the analysis starts from
MAX_CLOCK = 100.0  # the fitted factor is kept within [1 / MAX_CLOCK, MAX_CLOCK]


class ClockFit(StageRecord):
    clock: float  # the factor set (when skipped: the clock as it was)
    chain_dwell: list[float]  # the state chain's mean dwell per state, observation steps
    dwell_before: list[float]  # the prior's simulated dwell per state before the clock
    dwell_after: list[float]  # ... and with it (states in the chain's order)
    seconds: float
    skipped: str | None = None  # why no clock was fitted

    def changed(self) -> bool:
        return self.skipped is None

    def describe(self) -> list[str]:
        if self.skipped:
            return [f"clock: left at {self.clock:.3g} ({self.skipped})"]
        return [
            f"clock {self.clock:.3g}: dwell times in steps",
            f"  state chain:  {values(self.chain_dwell, '.1f')}",
            f"  prior before: {values(self.dwell_before, '.1f')}",
            f"  prior after:  {values(self.dwell_after, '.1f')}",
        ]


def readout_positions(model: NLDModel, data: Dataset, seed: int) -> torch.Tensor:
    """At most MAX_POINTS readout positions [n, d] of the training data, drawn at random."""
    gen = torch.Generator().manual_seed(seed)
    latents = readout_path(model, training_sequences(data, gen)).reshape(-1, model.cfg.latent_dim)
    return latents[torch.randperm(len(latents), generator=gen)[:MAX_POINTS]]


class Settings(BaseModel):
    """[stages.clock]"""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True,
        description="once the other stages are done, set the prior's clock to the state "
        "chain's dwell times (energy models with a state chain)",
    )


def fit_clock(model: NLDModel, fitted: Fitted, data: Dataset, seed: int) -> ClockFit:
    """Set the clock of `model` (an energy model) to its state chain's (`fitted.chain`) dwell
    times, in place; see the module. Where that cannot be done the clock is left as it was,
    and the record says why."""
    start = time.perf_counter()
    if fitted.chain is None:
        why = "no state chain (stages.basin-head.state_chain)"
        return ClockFit(
            clock=model.cfg.clock,
            chain_dwell=[],
            dwell_before=[],
            dwell_after=[],
            seconds=0.0,
            skipped=why,
        )
    chain = fitted.chain.dwell_steps()
    previous = model.cfg.clock

    def done(before: np.ndarray, after: np.ndarray, skipped: str | None = None) -> ClockFit:
        if skipped:
            model.set_clock(previous)
        return ClockFit(
            clock=model.cfg.clock,
            chain_dwell=chain.tolist(),
            dwell_before=before.tolist(),
            dwell_after=after.tolist(),
            seconds=round(time.perf_counter() - start, 3),
            skipped=skipped,
        )

    model.set_clock(1.0)
    latents = readout_positions(model, data, seed)
    try:
        res = analyze(model, latents, seed=seed, quadrature_max_dim=0)  # no occupancy (d)
    except NLDError as e:
        return done(np.array([]), np.array([]), str(e))
    order = head_order(fitted, res.minima)
    if order is None:
        return done(np.array([]), np.array([]), "the analysis found other minima than the chain's")
    before = res.dwell_simulated[order]
    ok = np.isfinite(before) & (before > 0) & np.isfinite(chain)
    if not ok.any():
        return done(before, before, "the simulated prior never left its wells")
    assert res.index is not None
    index, energy, starts = res.index, model_energy(model), latents.double().numpy()

    def dwell() -> np.ndarray:
        cores = simulated_cores(
            model, energy, res.minima, res.saddles, index, starts, res.beta, seed=seed
        )
        return milestone_dwell(cores, len(res.minima))[order]

    # A first clock from the unclocked prior, then one correction from the clocked one: the
    # prior is seen once per observation step, where a faster one hides more of its recrossings
    # (the smoke test's model: clock 8.8 left it dwelling 22.3 and 23.7 steps against the
    # chain's 19.7 and 19.2; corrected to 10.4, 19.5 and 20.8).
    dwell_now = before
    for _ in range(2):
        ratio = dwell_now[ok] / chain[ok]
        if not np.isfinite(ratio).all() or (ratio <= 0).any():
            break
        factor = model.cfg.clock * math.exp(float(np.mean(np.log(ratio))))
        model.set_clock(min(max(factor, 1 / MAX_CLOCK), MAX_CLOCK))
        dwell_now = dwell()
    return done(before, dwell_now)
