"""Separate hidden states that training merged into one well: act on the split test.

Training can end with two hidden states in one well (bench/unseen.py case 9: 2 minima for 3
states, 84.7% against a 93.6% filter limit), and the state chain's split test
(`nld.chain_split`) then says so: splitting that well's state pays thousands of nats. The
encoder does tell the pair apart (a nearest-neighbour probe on its readout reaches 92.6%),
but the posterior keeps them 0.17 apart where its own paths spread 0.75, so the energy fitted
to those paths has one well for both, and neither a lower KL weight nor a heavier predictive
head moved them apart.

This stage acts on the test's answer where the split resolves into Gaussian states (a state
whose observations are not one Gaussian pays for a split too, but its halves pay again:
nld.chain_split tells the two apart and this stage leaves such states alone). The chain with
every merged state split in two and refitted by Baum-Welch gives each training step a smoothed
probability of each of its K' states (no labels: the chain is fitted to the observations
alone). Each state gets a target position: the states the landscape has, their minimum; the two
halves of a split state, two points either side of its minimum, half the distance between the
closest two minima away from it, along the line through the halves' mean readout positions.
Every other minimum is then at least half that distance from both halves (by the triangle
inequality); only when the states of two neighbouring minima are split in one round can their
halves meet, and then the later pair is turned to the direction that keeps it farthest from the
other targets. Training then goes on from where it ended with one more term, the expected
squared distance of the posterior position to the target of its step's state in units of a
tenth of that distance, and the calibration and the basin head (with its chain and split test)
are fitted again: the calibration, which fits exp(-beta E) to the posterior's positions, is
what then digs the new well. A round is kept only if the landscape now has more minima than
before, else the model is restored as it was: nothing is lost. Rounds repeat while the split
test still finds merged states, at most `rounds` times ([stages.separate]).

The term stays on to the end of the stage. Released over the stage's second half, or over a
whole training from scratch that started with it, the ELBO merged the pair again (case 9: 2
minima, 84.5%); kept, case 9 ended with 3 minima, 93.6% against a 93.6% filter limit,
occupancy l1 .02, and the split test silent. So the model's last 1000 iterations train under
the ELBO plus the chain's states as targets: what the energy says about the data is then
partly what the chain said, which the checkpoint records (`meta.separation`).
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor
from tqdm import tqdm

from nld import markov
from nld.chain_split import split_state
from nld.data import Dataset
from nld.fitted import Fitted
from nld.fitting import basin_head, calibrate
from nld.fitting.config import TrainSettings
from nld.fitting.record import StageRecord
from nld.fitting.step import NonFinite, cosine, elbo_step, optimizers, set_lr, window_index
from nld.inference import readout_path
from nld.model import NLDModel
from nld.model.vae import PosteriorPath
from nld.state_chain import StateChain, baum_welch, subsample

READOUT_STEPS = 50_000  # training steps whose readout positions place the split halves
DIRECTIONS = 256  # directions tried when the halves of two split states would meet
WIDTH = 0.1  # of the spacing: the unit of distance of the target term


class Settings(BaseModel):
    """[stages.separate]"""

    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(
        2,
        ge=0,
        description="when the state chain's split test says a well holds two states, at most "
        "this many rounds of the stage that pulls them apart (0: never)",
    )
    iterations: int = Field(1000, gt=0, description="training iterations of one round")


def applies(model: NLDModel, own: Settings, head: basin_head.Settings) -> bool:
    """Whether training can end with this stage (it acts only if the split test pays)."""
    return (
        own.rounds > 0
        and head.state_chain
        and basin_head.applies(model)
        and calibrate.applies(model)
    )


def split_states(head: dict[str, Any] | None) -> list[int]:
    """The chain states the split test found merged (their split pays and resolves), from a
    basin head's record (BasinHeadFit as a dict)."""
    split = ((head or {}).get("chain") or {}).get("split") or {}
    if "merged" in split:  # the states whose split pays and resolves (nld.chain_split)
        return list(split["merged"])
    if "gains" not in split:  # recorded before the gains of every state were
        return [split["state"]] if split.get("preferred") else []
    return [j for j, g in enumerate(split["gains"]) if g > 0]


def split_chain(chain: StateChain, states: list[int], x: np.ndarray, seed: int) -> StateChain:
    """The chain with each of `states` split in two (halves j and K, K + 1, ...), refitted by
    Baum-Welch on x [N, T, D]."""
    for j in states:
        chain = split_state(chain, j)
    return baum_welch(chain, subsample(x, seed), rounds=10, tol=1e-5)


def state_probabilities(chain: StateChain, x: np.ndarray) -> Tensor:
    """p(s_t = k | x_1..x_T) under the chain for x [N, T, D]: [N, T, K] float32."""
    log_post = markov.smooth(chain.log_init, chain.log_trans, chain.loglik(x))
    return torch.from_numpy(np.exp(log_post)).float()


def targets(
    minima: np.ndarray, states: list[int], readout_means: np.ndarray, seed: int
) -> tuple[np.ndarray, float]:
    """Target positions [K + len(states), d] of the split chain's states, and the spacing s
    (the distance between the closest two minima). minima [K, d] are the landscape's; split
    state j's halves are j and K + i (i its place in `states`), whose mean readout positions
    are readout_means[j] and readout_means[K + i]."""
    k, d = minima.shape
    gaps = np.linalg.norm(minima[:, None] - minima[None], axis=-1)
    spacing = float(gaps[np.triu_indices(k, 1)].min())
    centers = np.concatenate([minima, minima[states]])
    rng = np.random.default_rng(seed)
    for i, j in enumerate(states):
        others = np.delete(centers, [j, k + i], axis=0)
        own = readout_means[k + i] - readout_means[j]
        options = np.vstack([own, rng.standard_normal((DIRECTIONS, d))])
        options /= np.maximum(np.linalg.norm(options, axis=1, keepdims=True), 1e-12)
        halves = minima[j] + 0.5 * spacing * np.stack([-options, options], axis=1)  # [n, 2, d]
        room = np.linalg.norm(halves[:, :, None] - others[None, None], axis=-1).min(axis=(1, 2))
        u = options[0] if room[0] >= 0.5 * spacing else options[int(room.argmax())]
        centers[j] = minima[j] - 0.5 * spacing * u
        centers[k + i] = minima[j] + 0.5 * spacing * u
    return centers, spacing


def _readout_means(model: NLDModel, data: Dataset, probs: Tensor) -> np.ndarray:
    """Mean readout position of each chain state, weighted by its probability: [K, d]."""
    n = max(1, min(data.n_sequences, READOUT_STEPS // data.length))
    r = readout_path(model, data.x[:n]).reshape(-1, model.cfg.latent_dim).double()
    w = probs[:n].reshape(-1, probs.shape[-1]).double()
    return ((w.T @ r) / w.sum(0).clamp(min=1e-12)[:, None]).numpy()


def _pull_apart(
    model: NLDModel,
    data: Dataset,
    probs: Tensor,
    centers: Tensor,
    spacing: float,
    t: TrainSettings,
    n: int,
    seed: int,
    progress_bar: bool,
) -> None:
    """n more training steps with the target term (raises NonFinite)."""
    x = torch.from_numpy(data.x)
    gen = torch.Generator().manual_seed(seed)
    opts = optimizers(model, t)
    scale = 2 * (WIDTH * spacing) ** 2
    model.train()
    try:
        for i in tqdm(range(n), desc="separate states", disable=not progress_bar, leave=False):
            set_lr(opts, cosine(t.lr / 3, t.lr_final, i / n))
            rows, steps = window_index(x.shape[0], x.shape[1], t.batch_size, t.window, gen)
            p = probs[rows, steps]  # [B, W, K']

            def pull(path: PosteriorPath, p: Tensor = p) -> Tensor:
                q = model.prior.position(path.y)  # [B, W, d]
                dist = ((q[:, :, None] - centers) ** 2).sum(-1)  # [B, W, K']
                return (p * dist).sum((1, 2)) / scale

            elbo_step(
                model,
                opts,
                x[rows, steps],
                gen,
                kl_weight=t.kl_final,
                clip=t.grad_clip,
                prior_steps=t.prior_steps,
                extra=pull,
            )
    finally:
        model.eval()


def separate(
    model: NLDModel,
    fitted: Fitted,
    data: Dataset,
    t: TrainSettings,
    settings: tuple[Settings, calibrate.Settings, basin_head.Settings],
    head: dict[str, Any] | None,
    calibration: dict[str, Any] | None,
    progress_bar: bool = True,
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """Run the stage on a trained model and what was fitted beside it (both in place) whose
    basin head record is `head`, with its settings and those of the calibration and the basin
    head, which its rounds fit again.
    Returns its record and the basin head's and calibration's records after it (the ones
    given when no round was kept)."""
    own, cal, fit_head = settings
    start = time.perf_counter()
    rounds: list[dict[str, Any]] = []
    for r in range(own.rounds):
        states = split_states(head)
        if not states or fitted.chain is None:
            break
        began = time.perf_counter()
        seed = t.seed + r
        saved = copy.deepcopy(model.state_dict()), replace(fitted), head, calibration
        minima = fitted.minima.double().numpy()
        chain = split_chain(fitted.chain, states, data.x, seed)
        probs = state_probabilities(chain, data.x)
        centers, spacing = targets(minima, states, _readout_means(model, data, probs), seed)
        record: dict[str, Any] = {"split": states, "minima_before": len(minima)}
        # How far the state chain agreed with the basin head, before and after the round
        # (it labels above basin_head.MIN_AGREEMENT).
        record["agreement_before"] = ((head or {}).get("chain") or {}).get("agreement")
        try:
            _pull_apart(
                model,
                data,
                probs,
                torch.from_numpy(centers).float(),
                spacing,
                t,
                own.iterations,
                seed,
                progress_bar,
            )
            if cal.iterations > 0:
                calibration = calibrate.calibrate(
                    model, data, cal.iterations, seed, progress_bar
                ).model_dump()
            refit = basin_head.fit_basin_head(
                model,
                fitted,
                data,
                fit_head.iterations,
                seed,
                progress_bar,
                chain=fit_head.state_chain,
            )
            record["minima_after"] = refit.classes
            record["agreement_after"] = (refit.chain or {}).get("agreement")
            if refit.classes <= len(minima):
                record["why"] = "the landscape has no more minima than before"
        except NonFinite:
            record["why"] = "the loss or a gradient was not finite"
        record["kept"] = "why" not in record
        record["seconds"] = round(time.perf_counter() - began, 2)
        rounds.append(record)
        if not record["kept"]:
            model.load_state_dict(saved[0])
            fitted.restore(saved[1])
            head, calibration = saved[2], saved[3]
            break
        head = refit.model_dump()
    out = {"rounds": rounds, "seconds": round(time.perf_counter() - start, 2)}
    return out, head, calibration


class Separation(StageRecord):
    # per round: split, minima_before/after, agreement_before/after, kept, why, seconds
    rounds: list[dict[str, Any]]
    seconds: float

    def changed(self) -> bool:
        return any(r["kept"] for r in self.rounds)

    def describe(self) -> list[str]:
        return describe(self.model_dump()) or [
            "separation: the split test finds no merged states: nothing to separate"
        ]


def describe(record: dict[str, Any] | None) -> list[str]:
    """One sentence per round of a stored separation record (`meta.separation`)."""
    out = []
    for i, r in enumerate((record or {}).get("rounds", []), 1):
        states = ", ".join(str(j) for j in r["split"])
        verdict = (
            f"{r['minima_before']} -> {r['minima_after']} minima, kept"
            if r["kept"]
            else f"not kept ({r['why']}), the model restored"
        )
        out.append(
            f"separation round {i} (nld.fitting.separate): pulled the states of minima {states} "
            f"apart on the split test's word: {verdict} ({r['seconds']:.0f} s)"
        )
    return out
