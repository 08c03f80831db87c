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
if it fires: `nld.fitting.rescue`, more iterations at a lower KL weight) the stages of
`nld.fitting.pipeline` run in their order. State is checkpointed atomically every
`checkpoint_every` iterations, after each stage, and on Ctrl-C, so `--resume` continues the
same run.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from nld import checkpoint
from nld.data import Dataset
from nld.device import resolve_device
from nld.errors import NLDError
from nld.fitted import Fitted
from nld.fitting import pipeline
from nld.fitting.config import TrainConfig, TrainSettings
from nld.fitting.early_stop import held_out_elbo, holdout_rows
from nld.fitting.pipeline import Context, Stage, pending, run_stages
from nld.fitting.rescue import single_well
from nld.fitting.state import FILE as STATE_FILE
from nld.fitting.state import Progress, load_state, save_state
from nld.fitting.step import NonFinite, cosine, elbo_step, optimizers, set_lr, window_index
from nld.model import NLDModel

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
    return x[rows.to(x.device), steps.to(x.device)]


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
    stages: Sequence[Stage] | None = None,
) -> tuple[NLDModel, Fitted]:
    """Train a model on `data` and write its checkpoint to `out`, running `stages` of
    `nld.fitting.pipeline` after the loop (default: all of them); the network and what the
    stages fitted beside it."""
    stages = pipeline.STAGES if stages is None else stages
    out = Path(out)
    t = cfg.train
    device = resolve_device(t.device)
    torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    x = torch.from_numpy(data.x).to(device)
    model = initial_model(cfg, x).to(device)  # standardised by every sequence
    rows, held = holdout_rows(len(x), t.holdout, t.seed)
    gain = t.min_gain * data.dim  # per step, as the held-out ELBO is
    x, x_held = (x, None) if len(held) == 0 else (x[rows.to(device)], x[held.to(device)])
    fitted = Fitted.none(model.cfg)
    opts = optimizers(model, t)
    # The random numbers are drawn on the CPU and moved: the same on every device, and a run's
    # generator state resumes anywhere.
    gen = torch.Generator().manual_seed(t.seed)
    prog = Progress()
    if resume:
        if not (out / STATE_FILE).is_file():
            raise NLDError(f"{out}: nothing to resume ({STATE_FILE} not found)")
        prog = load_state(out, model, fitted, opts, gen)
        prog.stopping.resume(t.kl_final)
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
        save_state(out, model, fitted, opts, gen, prog)
        checkpoint.save(
            out,
            model,
            fitted,
            meta={
                "preset": cfg.name,
                "train": cfg.model_dump(mode="json"),
                "iteration": prog.iteration,
                "finished": final,
                "train_seconds": round(prog.seconds, 2),
                "rollbacks": prog.rollbacks,
                "early_stop": asdict(prog.stopping) if x_held is not None else None,
                **{key: prog.records.get(key) for key in pipeline.record_keys()},
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
            while prog.iteration < t.iterations and prog.stopping.stopped_at is None:
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
                held_elbo = None
                if (
                    x_held is not None
                    and prog.iteration >= t.kl_warmup
                    and prog.iteration % t.holdout_every == 0
                ):
                    held_elbo = held_out_elbo(model, x_held, t.kl_final, t.seed)
                    if prog.stopping.update(
                        prog.iteration, held_elbo, t.kl_final, t.patience, gain
                    ):
                        stop = prog.stopping
                        assert stop.best is not None
                        tqdm.write(
                            f"stopped at iteration {prog.iteration}: the held-out ELBO "
                            f"({held_elbo:.3f} per step) has not gained {gain:.3g} over its "
                            f"best ({stop.best:.3f}, iteration {stop.best_at}) in {t.patience} "
                            "iterations",
                            file=sys.stderr,
                        )
                if (
                    prog.iteration % t.log_every == 0
                    or prog.iteration == t.iterations
                    or held_elbo is not None
                ):
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
                    if held_elbo is not None:
                        row["holdout_elbo"] = held_elbo
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
    # The stages and the analysis run on the CPU.
    _to_cpu(model, opts)
    # `finished` only once nothing is left to do: a run stopped during the rescue check or a
    # stage resumes into them instead of being taken for done.
    rescuing = t.rescue_kl is not None and t.kl_final != t.rescue_kl
    ctx = Context(model, fitted, data, t, prog.records, progress_bar, stages=cfg.stages)
    todo = rescuing or bool(pending(ctx, stages))
    save(final=not todo)
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
            return train(rescued, data, out, resume=True, progress_bar=progress_bar, stages=stages)
    # A finished run from before a stage existed, resumed, runs that stage, and after it the
    # later stages again if it changed the model (their records described the old one).
    if run_stages(ctx, stages, save=save) or todo:
        save(final=True)
    return model, fitted


def _to_cpu(model: NLDModel, opts: dict[str, torch.optim.Optimizer]) -> None:
    """Move the model and its optimizers' state (Adam's moments) to the CPU."""
    model.cpu()
    for opt in opts.values():
        for st in opt.state.values():
            for key, value in st.items():
                if isinstance(value, Tensor):
                    st[key] = value.cpu()


def _truncate_metrics(path: Path, iteration: int) -> None:
    """Drop rows logged after the state we resume from, so the log reads as one run."""
    if not path.exists():
        return
    rows = [ln for ln in path.read_text().splitlines() if ln]
    keep = [ln for ln in rows if json.loads(ln)["iteration"] <= iteration]
    path.write_text("".join(ln + "\n" for ln in keep))
