"""The last stage of training for models with a basin head: learn which basin the posterior
is in from what the encoder has seen.

The readout r(c_t) estimates the posterior position L steps later by regression, i.e. its
conditional mean. When the observations so far leave two states plausible, that mean falls
between their wells, often in the wrong basin or on the boundary, so labelling by the basin
of r(c_t) loses accuracy exactly where states overlap (bench/unseen.py, case 6: 79.5% against
a 91.4% filter limit, although the wells are right). The basin head is a classifier of the
same context trained on the basin that sampled posterior paths occupy L steps later; its
most probable class is the Bayes decision for the label, whatever the shape of the posterior.

The stage holds everything else fixed: it finds the minima (from the readout positions of
the training data, as `nld train` reports them), labels sampled posterior paths by gradient
flow, and fits the head by cross-entropy. The minima's positions are stored with the head, so
that later searches can tell which class is which minimum (`nld.inference.head_order`).

With `state_chain` ([stages.basin-head]) the stage ends by fitting the hidden Markov chain
over the same minima (`fit_chain`, nld.state_chain), whose causal filter then gives the
labels: it weighs every observation with the emissions it learned, where the head sees only
what the context passed on (docs/concepts/model.md#the-state-chain). Where that chain, of
Gaussian emissions, disagrees with the head, the dynamic chain (AR(1) emissions) labels if its
labels keep clearly more of the slow dynamics than the head's (`try_dynamic`); otherwise the
head labels.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F
from tqdm import tqdm

from nld.chain_split import split_test
from nld.data import Dataset
from nld.fitted import Fitted
from nld.fitting.early_stop import holdout_rows
from nld.fitting.record import StageRecord, values
from nld.head_chain import fit_head_chain
from nld.inference import find_landscape, readout_path, segment
from nld.model import NLDModel
from nld.model.vae import MAX_BASINS
from nld.state_chain import (
    MAX_STEPS,
    TooManyDimensions,
    baum_welch,
    fit_dynamic_chain,
    fit_state_chain,
)
from nld.vamp import slow_score

# Of the state chain's labels with the head's, to label by the chain: where states are Gaussian
# the two agree on 95.8-99.5% of the training steps (the pinned presets; bench/unseen.py cases
# 3, 5, 6 and 9, before and after each separation round); where they are not, on 97.5-99.2%
# over wells that each hold one state (arcs of a curved ring, speakers: bench/regimes.py; the
# chain's labels .999 and .996, above the head's), on 69-83% where wells are sub-states of one
# state or states differ by their dynamics (bench/regimes.py, bench/motions.py), where the
# chain's own labels are up to 7 points worse.
MIN_AGREEMENT = 0.9
HELD_OUT = 0.2  # of the training sequences, to choose between the dynamic chain and the head
# How much more of the slow dynamics (nld.vamp.slow_score) the dynamic chain's labels must keep
# than the head's to label. Measured on held-out training sequences (bench/dynamic_chain.py):
# 54% more on regimes that differ by their dynamics alone (ar1), where its labels are right on
# .964 of the test steps and the head's on .659; where the head's are right (.991, .988, .902:
# arcs of a curved ring, speakers, smartwatch activities) 20%, 70% and 59% less.
SLOW_MARGIN = 0.1
DYNAMIC_ROUNDS = 200  # Baum-Welch rounds of the dynamic chain, at most, each time it is fitted
BATCH = 2048
LR = 3e-3


class BasinHeadFit(StageRecord):
    classes: int  # 0: not fitted (fewer than two minima, or more than MAX_BASINS)
    iterations: int
    cross_entropy: float  # on the sampled basins, after fitting (nats per step)
    agreement: float  # share of training steps where head and readout basin agree
    seconds: float
    chain: dict[str, Any] | None = None  # the state chain's fit (fit_chain), if one was tried

    def describe(self) -> list[str]:
        if not self.classes:
            return ["basin head: not fitted (fewer than two minima): labels by readout basin"]
        lines = [
            f"basin head: {self.classes} classes, agreeing with the basin of the readout "
            f"position on {self.agreement:.1%} of the training steps"
        ]
        return lines + chain_lines(self.chain)


def chain_lines(fit: dict[str, Any] | None) -> list[str]:
    """A state chain's fit (fit_chain's record), for the command line."""
    from nld.chain_split import split_warnings

    if not fit:
        return []
    lines = []
    if "why" in fit:
        lines.append(f"state chain: not fitted ({fit['why']})")
    else:
        kept = "kept, labels are its filter's" if fit["kept"] else "not kept (too different)"
        lines.append(
            f"state chain: dwell times {values(fit['dwell_steps'], '.1f')} steps; its labels "
            f"agree with the basin head's on {fit['agreement']:.1%} of the training steps: {kept}"
        )
    dynamic = fit.get("dynamic")
    if dynamic and "why" in dynamic:
        lines.append(f"dynamic chain: not fitted ({dynamic['why']})")
    elif dynamic:
        score = dynamic["heldout_slow_score"]
        kept = (
            f"kept, labels are its filter's; dwell times {values(dynamic['dwell_steps'], '.1f')} "
            "steps"
            if dynamic["kept"]
            else "not kept"
        )
        lines.append(
            f"dynamic chain (AR(1) emissions): its labels of held-out sequences keep slow "
            f"dynamics scoring {score['dynamic chain']:.1f} against the basin head's "
            f"{score['basin head']:.1f} (nld.vamp): {kept}"
        )
    if "head_chain" in fit:
        dwell = values(fit["head_chain"]["dwell_steps"], ".1f")
        lines.append(f"head chain (offline labels): dwell times {dwell} steps")
    return lines + [f"warning: {w}" for w in split_warnings(fit.get("split"))]


def training_sequences(data: Dataset, gen: torch.Generator) -> torch.Tensor:
    """Whole sequences of `data` drawn at random, at most MAX_STEPS steps in all."""
    n_seq = max(1, min(data.n_sequences, MAX_STEPS // data.length))
    return torch.from_numpy(data.x)[torch.randperm(data.n_sequences, generator=gen)[:n_seq]]


def fit_chain(
    model: NLDModel, fitted: Fitted, x: torch.Tensor, classes: np.ndarray, seed: int
) -> dict[str, Any]:
    """Fit the hidden Markov chain over the head's minima (`fitted.minima`) to x
    (nld.state_chain) and keep it in `fitted` as the label source if its causal labels agree
    with the head's `classes` (of x) on at least MIN_AGREEMENT of the steps. A chain of
    Gaussian emissions can only tell states apart by what single observations show; where
    states differ by their dynamics (a regime-switching process with one marginal, a periodic
    motion) it settles on other clusters. Then the dynamic chain, started from the head's
    classes, is tried (`try_dynamic`); where it is not kept either, the head stays the label
    source, and the chain on the head's classes (nld.head_chain) gives the offline labels and
    the kinetics."""
    start = time.perf_counter()
    fitted.set_chain(None)
    fitted.set_head_chain(None)
    out: dict[str, Any]
    xs = x.numpy()
    positions = fitted.minima.double().numpy()
    try:
        chain = fit_state_chain(model.emissions(positions), xs, positions, seed=seed)
    except TooManyDimensions as e:
        out = {"kept": False, "why": str(e)}
    else:
        agreement = float((chain.labels(xs) == classes).mean())
        kept = agreement >= MIN_AGREEMENT
        fitted.set_chain(chain if kept else None)
        out = {
            "kept": kept,
            "agreement": agreement,
            "rounds": chain.rounds,
            "evidence_per_step": chain.evidence,
            "dwell_steps": chain.dwell_steps().tolist(),
        }
        if kept:  # do the data hold a state the landscape merged into one of its wells?
            out["split"] = split_test(chain, xs, seed=seed).summary()
        else:
            out["dynamic"] = try_dynamic(fitted, xs, classes, seed)
    if fitted.chain is None:
        fitted.set_head_chain(fit_head_chain(classes, fitted.classes))
        assert fitted.head_chain is not None
        out["head_chain"] = fitted.head_chain.summary()
    return out | {"seconds": time.perf_counter() - start}


def try_dynamic(fitted: Fitted, xs: np.ndarray, classes: np.ndarray, seed: int) -> dict[str, Any]:
    """Fit the dynamic chain (AR(1) emissions, nld.state_chain) over the head's minima from
    the head's `classes` of xs [N, T, D], and keep it in `fitted` as the label source where its
    labels keep more of the slow dynamics than the head's: fitted to a part of the sequences,
    its causal labels of the rest (HELD_OUT of them) must score SLOW_MARGIN more than the
    head's classes of the same steps by nld.vamp.slow_score (the regimes a user means are the
    slow processes). A kept chain is then refined on all the sequences. Returns the record."""
    start = time.perf_counter()
    positions = fitted.minima.double().numpy()
    xs = np.asarray(xs, dtype=np.float64)
    fit_rows, cut = (rows.numpy() for rows in holdout_rows(len(xs), HELD_OUT, seed))
    if not len(cut):
        return {"kept": False, "why": "one training sequence: nothing to hold out"}
    dynamic = fit_dynamic_chain(
        xs[fit_rows], classes[fit_rows], positions, rounds=DYNAMIC_ROUNDS, seed=seed
    )
    said = dynamic.labels(xs[cut])
    scores = {
        "basin head": slow_score(classes[cut], len(positions)),
        "dynamic chain": slow_score(said, len(positions)),
    }
    kept = scores["dynamic chain"] >= (1 + SLOW_MARGIN) * scores["basin head"]
    if kept:
        dynamic = baum_welch(dynamic, xs, rounds=DYNAMIC_ROUNDS, tol=1e-5)
        fitted.set_chain(dynamic)
    return {
        "kept": kept,
        "heldout_slow_score": scores,
        "heldout_agreement": float((said == classes[cut]).mean()),
        "rounds": dynamic.rounds,
        "dwell_steps": dynamic.dwell_steps().tolist(),
        "seconds": time.perf_counter() - start,
    }


class Settings(BaseModel):
    """[stages.basin-head]"""

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(
        1500, gt=0, description="steps of the stage that fits the basin head (model.basin_head)"
    )
    state_chain: bool = Field(
        True,
        description="also fit the hidden Markov chain over the minima (nld.state_chain) and "
        "label by its causal filter, unless its labels agree with the basin head's on less "
        "than MIN_AGREEMENT of the training steps; then try the dynamic chain (AR(1) "
        "emissions), and where it does not label either, fit the chain on the head's classes "
        "(nld.head_chain) for offline labels",
    )


def applies(model: NLDModel) -> bool:
    return model.basin_head is not None


def fit_basin_head(
    model: NLDModel,
    fitted: Fitted,
    data: Dataset,
    iterations: int,
    seed: int,
    progress_bar: bool = True,
    chain: bool = False,
) -> BasinHeadFit:
    """Fit the model's basin head on `data` (in place) and record in `fitted` the minima its
    classes stand for, and with `chain` the state chain over them (fit_chain); everything else
    stays as it is."""
    head = model.basin_head
    assert head is not None
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    lag = model.cfg.readout_lag
    x = training_sequences(data, gen)
    latents = readout_path(model, x)
    landscape = find_landscape(model, latents, seed=seed)
    k = len(landscape.minima)
    fitted.set_minima(torch.empty(0, model.cfg.latent_dim))
    if not 2 <= k <= MAX_BASINS or data.length <= lag:
        model.train(was_training)
        return _unfitted(0, start)
    with torch.no_grad():
        ctx, pos = [], []
        for part in x.split(256):
            path = model.posterior(part, sample=True, generator=gen)
            ctx.append(path.context)
            pos.append(model.prior.position(path.y))
        basin = torch.from_numpy(segment(model, landscape, torch.cat(pos)))
    inputs = torch.cat(ctx)[:, : data.length - lag].reshape(-1, ctx[0].shape[-1])
    target = basin[:, lag:].reshape(-1)
    # The inputs are detached, so the loss reaches the head's parameters only.
    opt = torch.optim.Adam(head.parameters(), lr=LR)
    loss = torch.tensor(math.nan)
    for i in tqdm(range(iterations), desc="basin head", disable=not progress_bar, leave=False):
        opt.param_groups[0]["lr"] = LR * (1 - 0.9 * i / iterations)
        idx = torch.randint(len(target), (min(BATCH, len(target)),), generator=gen)
        loss = F.cross_entropy(head(inputs[idx])[:, :k], target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if not torch.isfinite(loss):  # leave the head unfitted: labels by readout position
        model.train(was_training)
        return _unfitted(iterations, start)
    with torch.no_grad():
        fitted.set_minima(torch.from_numpy(np.stack([m.position for m in landscape.minima])))
        classes = torch.cat([head(part)[..., :k].argmax(-1) for part in torch.cat(ctx).split(256)])
        by_position = segment(model, landscape, latents)
        agreement = float((classes.numpy() == by_position).mean())
    chained = fit_chain(model, fitted, x, classes.numpy(), seed) if chain else None
    model.train(was_training)
    return BasinHeadFit(
        classes=k,
        iterations=iterations,
        cross_entropy=float(loss.detach()),
        agreement=agreement,
        seconds=time.perf_counter() - start,
        chain=chained,
    )


def _unfitted(iterations: int, start: float) -> BasinHeadFit:
    return BasinHeadFit(
        classes=0,
        iterations=iterations,
        cross_entropy=math.nan,
        agreement=math.nan,
        seconds=time.perf_counter() - start,
    )
