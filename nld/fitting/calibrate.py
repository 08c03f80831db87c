"""A stage of training: fit the depths of the wells to the time spent in each.

Training fits the prior's drift to the posterior's at the points the posterior visits. Like
score matching, that learns the shape of each well but hardly how deep one well sits relative
to another: the posterior crosses the barriers in a step or two and leaves almost no points
there, while the occupancies exp(-beta E) gives each state hang on exactly those relative
depths (measured on exp1: basin masses off by 0.05-0.15 in l1 although the posterior spends
the right time in each state). This stage holds the posterior fixed, samples its paths on the
training data once, and takes a few hundred steps on the energy alone: the likelihood of all
those positions under exp(-beta E) / Z (Z on a grid, `nld.model.boltzmann`) plus the same
drift fit as before (so the dynamics stay what they were). It needs latent dimension <= 3.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from nld.data import Dataset
from nld.fitting.record import StageRecord
from nld.model import NLDModel
from nld.model.boltzmann import GRID, boltzmann_nll

MAX_POINTS = 200_000  # posterior positions sampled from the training data, at most
BATCH_POINTS = 50_000  # positions per step
BATCH_STEPS = 256  # integration steps of the drift fit per step
LR = 1e-3


class Calibration(StageRecord):
    iterations: int
    nll_before: float
    nll_after: float
    seconds: float

    def changed(self) -> bool:
        return self.nll_after != self.nll_before  # else restored

    def describe(self) -> list[str]:
        nll = f"{self.nll_before:.4f} -> {self.nll_after:.4f}"
        undone = "" if self.changed() else " (no better: undone)"
        return [f"calibration: {self.iterations} steps, positions' NLL {nll}{undone}"]


class Settings(BaseModel):
    """[stages.calibrate]"""

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(
        300,
        ge=0,
        description="steps of the stage that fits the wells' depths to the time the posterior "
        "spends in each (energy models, latent dimension <= 3; 0: never)",
    )


def applies(model: NLDModel) -> bool:
    return model.prior.energy is not None and model.cfg.latent_dim in GRID


@torch.no_grad()
def posterior_sample(
    model: NLDModel, data: Dataset, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sampled posterior positions [n, d] and the traced (state, drift) of every step."""
    n_seq = max(1, min(data.n_sequences, MAX_POINTS // data.length))
    pick = torch.randperm(data.n_sequences, generator=gen)[:n_seq]
    x = torch.from_numpy(data.x)[pick]
    qs, ys, fs = [], [], []
    for part in x.split(256):
        path = model.posterior(part, sample=True, generator=gen, trace=True)
        qs.append(model.prior.position(path.y).reshape(-1, model.cfg.latent_dim))
        if path.trace_y is not None and path.trace_f is not None:
            ys.append(path.trace_y.reshape(-1, path.trace_y.shape[-1]))
            fs.append(path.trace_f.reshape(-1, path.trace_f.shape[-1]))
    if not ys:  # sequences of one step: no drift to fit
        raise ValueError("calibration needs sequences of at least two steps")
    return torch.cat(qs), torch.cat(ys), torch.cat(fs)


def calibrate(
    model: NLDModel,
    data: Dataset,
    iterations: int,
    seed: int,
    progress_bar: bool = True,
    *,
    weigh: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Calibration:
    """Fit the energy's depths to the posterior's positions on `data` (in place).

    `weigh` maps the positions [n, d] to weights [n] (the positions are then resampled in
    proportion to them once, before the fit); by default every position counts alike. A step
    whose loss is not finite ends the stage with the energy as it was before it.
    """
    assert model.prior.energy is not None
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    q, trace_y, trace_f = posterior_sample(model, data, gen)
    if weigh is not None:
        q = q[torch.multinomial(weigh(q).double(), len(q), replacement=True, generator=gen)]
    energy = model.prior.energy
    beta = model.prior.beta().detach()
    before = {k: v.detach().clone() for k, v in energy.state_dict().items()}
    opt = torch.optim.Adam(energy.parameters(), lr=LR)

    def nll_of_all() -> float:
        with torch.no_grad():
            return float(boltzmann_nll(energy, beta, q))

    nll_before = nll_of_all()
    for i in tqdm(range(iterations), desc="calibrate", disable=not progress_bar, leave=False):
        opt.param_groups[0]["lr"] = LR * (1 - 0.9 * i / iterations)  # settle: LR -> LR / 10
        idx = torch.randint(q.shape[0], (min(BATCH_POINTS, q.shape[0]),), generator=gen)
        steps = torch.randint(trace_y.shape[0], (BATCH_STEPS,), generator=gen)
        loss = boltzmann_nll(energy, beta, q[idx]) + model.prior_mismatch(
            trace_y[steps], trace_f[steps]
        )
        if not torch.isfinite(loss):
            energy.load_state_dict(before)
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    nll_after = nll_of_all()
    if not math.isfinite(nll_after) or nll_after > nll_before:
        energy.load_state_dict(before)
        nll_after = nll_before
    model.train(was_training)
    return Calibration(
        iterations=iterations,
        nll_before=nll_before,
        nll_after=nll_after,
        seconds=time.perf_counter() - start,
    )
