"""The training loop: ELBO with KL annealing, cosine learning rate, and rollback on divergence.

A step whose loss or gradient is not finite (or that leaves non-finite weights) is undone:
the model and optimizer return to the last good snapshot, the learning rate and the gradient
clip are halved, and training goes on. State is checkpointed atomically every
`checkpoint_every` iterations and on Ctrl-C, so `--resume` continues the same run.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from nld import checkpoint
from nld.data import Dataset
from nld.errors import NLDError
from nld.model import NLDModel
from training.config import TrainConfig
from training.state import FILE as STATE_FILE
from training.state import Progress, load_state, save_state

METRICS = "metrics.jsonl"


class TrainingDiverged(NLDError):
    pass


def _lr(cfg: TrainConfig, it: int) -> float:
    t = cfg.train
    frac = min(it / t.iterations, 1.0)
    return t.lr_final + 0.5 * (t.lr - t.lr_final) * (1 + math.cos(math.pi * frac))


def _kl_weight(cfg: TrainConfig, it: int) -> float:
    t = cfg.train
    if t.kl_warmup == 0:
        return 1.0
    return min(1.0, t.kl_start + (1 - t.kl_start) * it / t.kl_warmup)


def _batch(x: torch.Tensor, size: int, window: int | None, gen: torch.Generator) -> torch.Tensor:
    n, t_len, _ = x.shape
    idx = torch.randint(n, (size,), generator=gen)
    w = t_len if window is None else min(window, t_len)
    start = torch.randint(t_len - w + 1, (size,), generator=gen)
    steps = start[:, None] + torch.arange(w)[None]
    return x[idx[:, None], steps]


def _finite(model: NLDModel) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


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
    mcfg = cfg.model_config_for(data.dim)
    model = NLDModel(mcfg)
    x = torch.from_numpy(data.x)
    with torch.no_grad():
        model.x_mean.copy_(x.mean(dim=(0, 1)))
        model.x_std.copy_(x.std(dim=(0, 1)).clamp(min=1e-6))
    opt = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    gen = torch.Generator().manual_seed(t.seed)
    prog = Progress()
    if resume:
        if not (out / STATE_FILE).is_file():
            raise NLDError(f"{out}: nothing to resume ({STATE_FILE} not found)")
        prog = load_state(out, model, opt, gen)
        _truncate_metrics(out / METRICS, prog.iteration)
    elif (out / STATE_FILE).exists() or (out / checkpoint.CONFIG).exists():
        raise NLDError(f"{out} already holds a run: pass --resume to continue it, or another --out")
    out.mkdir(parents=True, exist_ok=True)

    def snapshot() -> tuple[dict[str, Any], dict[str, Any]]:
        return copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())

    good = snapshot()

    def save(final: bool = False) -> None:
        save_state(out, model, opt, gen, prog)
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
                "data": {"n_sequences": data.n_sequences, "length": data.length, "dim": data.dim},
            },
        )

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
                it = prog.iteration
                lr = _lr(cfg, it) * prog.lr_scale
                for group in opt.param_groups:
                    group["lr"] = lr
                kl_w = _kl_weight(cfg, it)
                xb = _batch(x, t.batch_size, t.window, gen)
                terms = model.elbo_terms(xb, generator=gen)
                steps = xb.shape[1]
                loss = -(terms["loglik"] - kl_w * (terms["kl0"] + terms["kl_path"])).mean() / steps
                loss_value, grad_norm = loss.item(), math.nan
                if math.isfinite(loss_value):
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = float(
                        torch.nn.utils.clip_grad_norm_(
                            model.parameters(), t.grad_clip * prog.clip_scale
                        )
                    )
                if not (math.isfinite(grad_norm) and math.isfinite(loss_value)):
                    _rollback(model, opt, good, prog, t.max_rollbacks, it)
                    continue
                opt.step()
                if not _finite(model):
                    _rollback(model, opt, good, prog, t.max_rollbacks, it)
                    continue
                prog.iteration += 1
                prog.seconds = time.perf_counter() - start
                if prog.iteration % 50 == 0:
                    good = snapshot()
                if prog.iteration % t.log_every == 0 or prog.iteration == t.iterations:
                    row = _metrics_row(model, terms, steps, prog, lr, kl_w, grad_norm)
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    bar.set_postfix(
                        elbo=f"{row['elbo']:.3f}",
                        ll=f"{row['loglik']:.3f}",
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
    save(final=True)
    return model.eval()


def _rollback(
    model: NLDModel,
    opt: torch.optim.Optimizer,
    good: tuple[dict[str, Any], dict[str, Any]],
    prog: Progress,
    limit: int,
    it: int,
) -> None:
    prog.rollbacks += 1
    if prog.rollbacks > limit:
        raise TrainingDiverged(
            f"training diverged {prog.rollbacks} times (last at iteration {it}) despite "
            "rolling back with smaller steps; lower lr or dt in the config"
        )
    model.load_state_dict(good[0])
    opt.load_state_dict(good[1])
    prog.lr_scale *= 0.5
    prog.clip_scale *= 0.5


def _metrics_row(
    model: NLDModel,
    terms: dict[str, torch.Tensor],
    steps: int,
    prog: Progress,
    lr: float,
    kl_w: float,
    grad_norm: float,
) -> dict[str, float]:
    row: dict[str, float] = {
        "iteration": prog.iteration,
        "seconds": round(prog.seconds, 3),
        **{k: float(v.detach().mean()) / steps for k, v in terms.items()},
        "kl_weight": kl_w,
        "lr": lr,
        "grad_norm": grad_norm,
        "rollbacks": prog.rollbacks,
    }
    if model.cfg.has_energy:
        row["beta"] = float(model.prior.beta())
    return row


def _truncate_metrics(path: Path, iteration: int) -> None:
    """Drop rows logged after the state we resume from, so the log reads as one run."""
    if not path.exists():
        return
    keep = [
        ln
        for ln in path.read_text().splitlines()
        if ln and json.loads(ln)["iteration"] <= iteration
    ]
    path.write_text("".join(ln + "\n" for ln in keep))
