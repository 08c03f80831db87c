"""The training loop: ELBO with KL annealing, cosine learning rate, and rollback on divergence.

Each iteration takes one step on the encoder, posterior, decoder and the scalars (beta, gamma,
m) from the ELBO, then `prior_steps` steps on the prior's drift (the energy) from the path KL
on the same, detached, posterior path: with a free posterior drift that is exactly where the
energy enters the ELBO, and several steps let the landscape keep up with the posterior.
The main step also fits the readout head that labels come from (`NLDModel.readout_mismatch`)
and, when the model has one, the predictive head (`ModelConfig.predictive_weight`).

A step whose loss or gradient is not finite (or that leaves non-finite weights) is undone:
the model and optimizers return to the last good snapshot, the learning rate and the gradient
clip are halved, and training goes on. After the last iteration (and the single-well rescue,
if it fires) the calibration stage of `training.calibrate` fits the wells' depths, for a
model with a basin head `training.basin_head` fits it (and the state chain) to the final
landscape, where the chain's split test says a well holds two states `training.separate`
pulls them apart, `training.depths` refits the depths to the chain's stationary distribution
and `training.clock` sets the prior's clock to the chain's dwell times. State is checkpointed
atomically every `checkpoint_every` iterations, after the final stages, and on Ctrl-C, so
`--resume` continues the same run.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from nld import checkpoint
from nld.data import Dataset
from nld.errors import NLDError
from nld.model import NLDModel
from training.basin_head import applies as basin_head_applies
from training.basin_head import fit_basin_head
from training.calibrate import applies as calibration_applies
from training.calibrate import calibrate
from training.clock import fit_clock
from training.config import TrainConfig, TrainSettings
from training.depths import fit_depths
from training.rescue import single_well
from training.separate import applies as separation_applies
from training.separate import separate
from training.state import FILE as STATE_FILE
from training.state import Progress, load_state, save_state
from training.step import NonFinite, cosine, elbo_step, optimizers, set_lr, window_index

METRICS = "metrics.jsonl"


class TrainingDiverged(NLDError):
    pass


def _lr(t: TrainSettings, it: int) -> float:
    return cosine(t.lr, t.lr_final, min(it / t.iterations, 1.0))


def _kl_weight(t: TrainSettings, it: int) -> float:
    if t.kl_warmup == 0:
        return t.kl_final
    start = min(t.kl_start, t.kl_final)
    return min(t.kl_final, start + (t.kl_final - start) * it / t.kl_warmup)


def _batch(x: Tensor, size: int, window: int | None, gen: torch.Generator) -> Tensor:
    rows, steps = window_index(x.shape[0], x.shape[1], size, window, gen)
    return x[rows, steps]


def initial_model(cfg: TrainConfig, x: Tensor) -> NLDModel:
    """A new model of `cfg` for observations x [N, T, D], standardising by their mean and std
    (its weights drawn from torch's global generator)."""
    model = NLDModel(cfg.model_config_for(x.shape[-1]))
    with torch.no_grad():
        model.x_mean.copy_(x.mean(dim=(0, 1)))
        model.x_std.copy_(x.std(dim=(0, 1)).clamp(min=1e-6))
    return model


def train(
    cfg: TrainConfig,
    data: Dataset,
    out: str | Path,
    *,
    resume: bool = False,
    progress_bar: bool = True,
) -> NLDModel:
    """Train a model on `data` and write its checkpoint to `out`."""
    out = Path(out)
    t = cfg.train
    torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    x = torch.from_numpy(data.x)
    model = initial_model(cfg, x)
    opts = optimizers(model, t)
    gen = torch.Generator().manual_seed(t.seed)
    prog = Progress()
    if resume:
        if not (out / STATE_FILE).is_file():
            raise NLDError(f"{out}: nothing to resume ({STATE_FILE} not found)")
        prog = load_state(out, model, opts, gen)
        _truncate_metrics(out / METRICS, prog.iteration)
    elif (out / STATE_FILE).exists() or (out / checkpoint.CONFIG).exists():
        raise NLDError(f"{out} already holds a run: pass --resume to continue it, or another --out")
    out.mkdir(parents=True, exist_ok=True)

    def snapshot() -> dict[str, Any]:
        return copy.deepcopy(
            {"model": model.state_dict(), **{k: o.state_dict() for k, o in opts.items()}}
        )

    def rollback() -> None:
        prog.rollbacks += 1
        if prog.rollbacks > t.max_rollbacks:
            raise TrainingDiverged(
                f"training diverged {prog.rollbacks} times (last at iteration {prog.iteration}) "
                "despite rolling back with smaller steps; lower lr or dt in the config"
            )
        model.load_state_dict(good["model"])
        for k, o in opts.items():
            o.load_state_dict(good[k])
        prog.lr_scale *= 0.5
        prog.clip_scale *= 0.5

    def save(final: bool = False) -> None:
        save_state(out, model, opts, gen, prog)
        checkpoint.save(
            out,
            model,
            meta={
                "preset": cfg.name,
                "train": cfg.model_dump(mode="json"),
                "iteration": prog.iteration,
                "finished": final,
                "train_seconds": round(prog.seconds, 2),
                "rollbacks": prog.rollbacks,
                "calibration": prog.calibration,
                "basin_head": prog.basin_head,
                "separation": prog.separation,
                "depths": prog.depths,
                "clock": prog.clock,
                "data": {"n_sequences": data.n_sequences, "length": data.length, "dim": data.dim},
            },
        )

    good = snapshot()
    bar = tqdm(
        total=t.iterations,
        initial=prog.iteration,
        disable=not progress_bar,
        desc=cfg.name,
        dynamic_ncols=True,
    )
    start = time.perf_counter() - prog.seconds
    model.train()
    try:
        with (out / METRICS).open("a") as log:
            while prog.iteration < t.iterations:
                lr = _lr(t, prog.iteration) * prog.lr_scale
                set_lr(opts, lr)
                kl_w = _kl_weight(t, prog.iteration)
                clip = t.grad_clip * prog.clip_scale
                xb = _batch(x, t.batch_size, t.window, gen)
                try:
                    terms, grad_norm = elbo_step(
                        model, opts, xb, gen, kl_weight=kl_w, clip=clip, prior_steps=t.prior_steps
                    )
                except NonFinite:
                    rollback()
                    continue
                prog.iteration += 1
                prog.seconds = time.perf_counter() - start
                if prog.iteration % 50 == 0:
                    good = snapshot()
                if prog.iteration % t.log_every == 0 or prog.iteration == t.iterations:
                    row = {
                        "iteration": prog.iteration,
                        "seconds": round(prog.seconds, 3),
                        **{k: float(v.detach().mean()) / xb.shape[1] for k, v in terms.items()},
                        "kl_weight": kl_w,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "rollbacks": prog.rollbacks,
                    }
                    if model.cfg.has_energy:
                        row["beta"] = float(model.prior.beta().detach())
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    bar.set_postfix(
                        elbo=f"{row['elbo']:.3f}",
                        kl=f"{row['kl_path'] + row['kl0']:.3f}",
                        beta=f"{row.get('beta', 0):.2f}",
                    )
                bar.update(1)
                if prog.iteration % t.checkpoint_every == 0:
                    save()
    except KeyboardInterrupt:
        save()
        bar.close()
        raise
    bar.close()
    # `finished` only once nothing is left to do: a run stopped during the rescue check or
    # the calibration resumes into them instead of being taken for done.
    rescuing = t.rescue_kl is not None and t.kl_final != t.rescue_kl
    calibrating = (
        t.calibrate_iterations > 0 and prog.calibration is None and calibration_applies(model)
    )
    heading = prog.basin_head is None and basin_head_applies(model)
    separating = prog.separation is None and separation_applies(model, t)
    # On the chain of the basin head's stage; without one the record says why it was skipped.
    deepening = t.depths_iterations > 0 and prog.depths is None and model.cfg.has_energy
    clocking = t.clock and prog.clock is None and model.cfg.has_energy
    stages = rescuing or calibrating or heading or separating or deepening or clocking
    save(final=not stages)
    model.eval()
    if rescuing:
        why = single_well(model, data)
        if why is not None:
            more = t.model_copy(
                update={
                    "iterations": t.iterations + t.rescue_iterations,
                    "kl_final": t.rescue_kl,
                }
            )
            tqdm.write(
                f"{why}: {t.rescue_iterations} more iterations at KL weight {t.rescue_kl}",
                file=sys.stderr,
            )
            rescued = cfg.model_copy(update={"train": more})
            return train(rescued, data, out, resume=True, progress_bar=progress_bar)
    if calibrating:
        done = calibrate(model, data, t.calibrate_iterations, t.seed, progress_bar)
        prog.calibration = asdict(done)
    if heading:  # last: it labels by the final landscape
        fitted = fit_basin_head(
            model, data, t.basin_head_iterations, t.seed, progress_bar, chain=t.state_chain
        )
        prog.basin_head = asdict(fitted)
    if separating:  # after the basin head, whose chain's split test it acts on
        prog.separation, prog.basin_head, prog.calibration = separate(
            model, data, t, prog.basin_head, prog.calibration, progress_bar
        )
    if deepening:  # on the final chain
        depths = fit_depths(model, data, t.depths_iterations, t.seed, progress_bar)
        prog.depths = asdict(depths)
        # A finished run from before the depths stage, resumed, had its clock set on the old
        # depths: set it again, unless the fit was undone.
        clocking = clocking or (t.clock and depths.kept and model.cfg.has_energy)
    if clocking:  # last: on the final landscape and chain
        prog.clock = asdict(fit_clock(model, data, t.seed))
    if stages:
        save(final=True)
    return model


def _truncate_metrics(path: Path, iteration: int) -> None:
    """Drop rows logged after the state we resume from, so the log reads as one run."""
    if not path.exists():
        return
    rows = [ln for ln in path.read_text().splitlines() if ln]
    keep = [ln for ln in rows if json.loads(ln)["iteration"] <= iteration]
    path.write_text("".join(ln + "\n" for ln in keep))
