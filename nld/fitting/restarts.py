"""Several trainings from different seeds, and the one with the best objective kept.

A latent-SDE VAE's training is not convex: from one seed the energy can end with two hidden
states merged into one well, from another with both (bench/unseen.py case 7, 4 states: 3
minima from seed 0, 4 from seeds 1-3; ELBO per step on the training data -13.517 against
-13.485 / -13.488 / -13.490). As a Gaussian mixture fitted by EM is restarted
(scikit-learn's `n_init`), `restarts` > 1 trains that many candidates, seeds `seed`,
`seed + 1`, ..., side by side in their own processes (each with an equal share of `threads`),
and keeps the one whose training objective per step on the training data is highest: the
model's own, no labels, measured with the same noise for every candidate. Candidates are
compared under one objective, log-likelihood - w KL with w the smallest KL weight any of them
ended with: the ELBO (w = 1) unless the single-well rescue (`nld.fitting.rescue`) moved one to
its lower weight, whose objective the full ELBO would otherwise hold against it (case 5: the
rescued candidate, 3 minima, scores -11.14 nats per step at w = 1 and -7.07 at w = 0.2; the
other, 2 minima, -8.14 and -7.81). The candidates stay in `RUN_DIR/candidates/`; the winner's
checkpoint and metrics are copied to `RUN_DIR`, and its `config.json` records every
candidate's score under `meta.restarts`. Each candidate runs the stages of
`nld.fitting.pipeline` marked `in_candidates` (calibration, basin head); the later ones
(separation, depths, clock) run once, on the candidate kept. `--resume` resumes the
candidates that did not finish and reuses those that did.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from nld import checkpoint
from nld.data import Dataset
from nld.device import device_of
from nld.errors import NLDError
from nld.fitted import Fitted
from nld.fitting import pipeline
from nld.fitting.config import TrainConfig
from nld.fitting.pipeline import Context, run_stages
from nld.fitting.state import FILE as STATE_FILE
from nld.fitting.trainer import METRICS, train
from nld.io import write_bytes
from nld.model import NLDModel

CANDIDATES = "candidates"
SCORE_REPEATS = 4  # posterior samples per sequence for the ELBO of a candidate
SCORE_STEPS = 200_000  # at most this many observation steps of the training data scored


def fit(
    cfg: TrainConfig,
    data: Dataset,
    out: str | Path,
    *,
    resume: bool = False,
    progress_bar: bool = True,
    processes: bool = True,
) -> tuple[NLDModel, Fitted]:
    """Train `cfg` on `data` into `out`: one run, or with `cfg.train.restarts` > 1 the best
    of that many (see the module's docstring). The candidates train side by side in worker
    processes, or with `processes=False` one after another in this one, each on the same
    share of the threads (the same models, in more time): worker processes are started by
    spawning, which re-runs an unguarded script (no `if __name__ == "__main__":`)."""
    out = Path(out)
    t = cfg.train
    if t.restarts == 1:
        return train(cfg, data, out, resume=resume, progress_bar=progress_bar)
    started = (out / CANDIDATES).exists()
    if resume and not started:
        raise NLDError(f"{out}: nothing to resume ({CANDIDATES}/ not found)")
    if not resume and (started or (out / checkpoint.CONFIG).exists()):
        raise NLDError(f"{out} already holds a run: pass --resume to continue it, or another --out")
    dirs = [out / CANDIDATES / f"seed{t.seed + i}" for i in range(t.restarts)]
    failed = _train_candidates(cfg, data, dirs, progress_bar, processes)
    torch.set_num_threads(t.threads)
    done = [i for i in range(len(dirs)) if i not in failed]
    weight = min(checkpoint.read_config(dirs[i])[1]["train"]["train"]["kl_final"] for i in done)
    models = {i: checkpoint.load(dirs[i]) for i in done}
    rows: list[dict[str, Any]] = []
    for i, d in enumerate(dirs):
        row: dict[str, Any] = {"seed": t.seed + i, "run": str(d.relative_to(out))}
        if i in failed:
            row["error"] = failed[i]
        else:
            row["score"] = objective_per_step(models[i][0], data, weight, seed=t.seed)
        rows.append(row)
    best = max(done, key=lambda i: rows[i]["score"])
    _, meta = checkpoint.read_config(dirs[best])
    model, fitted = models[best]
    meta["restarts"] = {"kept": rows[best]["seed"], "kl_weight": weight, "candidates": rows}
    # The kept candidate's own seed, on all the threads, for the stages the candidates skip.
    kept = t.model_copy(update={"seed": rows[best]["seed"]})
    records = {key: meta.get(key) for key in pipeline.record_keys()}
    ctx = Context(model, fitted, data, kept, records, progress_bar, stages=cfg.stages)
    run_stages(ctx, [s for s in pipeline.STAGES if not s.in_candidates])
    meta.update(ctx.records)
    write_bytes(out / METRICS, (dirs[best] / METRICS).read_bytes())
    checkpoint.save(out, model, fitted, meta=meta)
    return model, fitted


def resumable(run_dir: str | Path) -> bool:
    """Whether `run_dir` holds a run (single, or candidates) that `resume=True` continues."""
    d = Path(run_dir)
    return (d / STATE_FILE).exists() or (d / CANDIDATES).exists()


def finished(run_dir: str | Path) -> bool:
    """Whether `run_dir` holds a checkpoint whose training ran to the end."""
    d = Path(run_dir)
    return (d / checkpoint.CONFIG).exists() and bool(checkpoint.read_config(d)[1].get("finished"))


def _train_candidate(cfg: TrainConfig, data: Dataset, run_dir: Path) -> None:
    """One candidate (module level, so that a worker process can be handed it), with the
    stages that run in every candidate."""
    stages = [s for s in pipeline.STAGES if s.in_candidates]
    train(cfg, data, run_dir, resume=resumable(run_dir), progress_bar=False, stages=stages)


def _train_candidates(
    cfg: TrainConfig, data: Dataset, dirs: list[Path], progress_bar: bool, processes: bool
) -> dict[int, str]:
    """Train the unfinished candidates side by side (the bar follows their metrics logs).
    Returns the error of each candidate that failed with one the user can act on (training
    diverged); raises it if every candidate failed, and any other error at once."""
    t = cfg.train
    todo = [(i, d) for i, d in enumerate(dirs) if not finished(d)]
    failed: dict[int, str] = {}
    if not todo:
        return failed
    workers = min(len(todo), t.threads)
    # Candidates end before the stages not `in_candidates`: they run on the one kept (fit), so
    # that candidates are compared under the ELBO alone and those stages' cost is paid once.
    per_worker = t.model_copy(update={"threads": max(1, t.threads // workers)})
    jobs = [
        (i, d, cfg.model_copy(update={"train": per_worker.model_copy(update={"seed": t.seed + i})}))
        for i, d in todo
    ]
    bar = tqdm(
        total=len(todo) * t.iterations,
        desc=f"{cfg.name}: {len(todo)} candidates",
        disable=not progress_bar,
        dynamic_ncols=True,
    )
    errors: dict[int, BaseException | None] = {}
    if not processes:
        for i, d, one in jobs:
            try:
                _train_candidate(one, data, d)
                errors[i] = None
            except NLDError as e:  # reported below, as a worker's would be
                errors[i] = e
            bar.update(t.iterations)
    else:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
            futures = [pool.submit(_train_candidate, one, data, d) for _, d, one in jobs]
            while not all(f.done() for f in futures):
                time.sleep(1.0)
                bar.n = sum(min(_logged_iteration(d), t.iterations) for _, d in todo)
                if bar.n == bar.total:
                    bar.set_postfix_str("final stages: rescue check, calibration, basin head, ...")
                bar.refresh()
            errors = {i: f.exception() for (i, _), f in zip(todo, futures, strict=True)}
    bar.n = bar.total
    bar.close()
    for i, error in errors.items():
        if error is None:
            continue
        if not isinstance(error, NLDError) or len(failed) + 1 == len(dirs):
            raise error
        failed[i] = str(error)
    return failed


def _logged_iteration(run_dir: Path) -> int:
    """The last iteration in a run's metrics log (0 before the first row)."""
    log = run_dir / METRICS
    if not log.exists():
        return 0
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - 4096))
        tail = f.read().decode(errors="ignore").strip().splitlines()
    for line in reversed(tail):
        try:
            return int(json.loads(line)["iteration"])
        except (ValueError, KeyError):  # the first line of the tail may be cut
            continue
    return 0


@torch.no_grad()
def objective_per_step(
    model: NLDModel, data: Dataset, kl_weight: float = 1.0, *, seed: int = 0
) -> float:
    """log-likelihood - kl_weight * KL of `data` per observation step (the ELBO at weight 1),
    averaged over `SCORE_REPEATS` posterior samples drawn with the same generator for every
    model (so candidates are compared on the same noise) and over up to `SCORE_STEPS` steps."""
    model.eval()
    n = max(1, min(data.n_sequences, SCORE_STEPS // data.length))
    x = torch.from_numpy(data.x[:n])
    on = device_of(model)
    total = 0.0
    for rep in range(SCORE_REPEATS):
        gen = torch.Generator().manual_seed(seed + rep)
        for part in x.split(256):
            terms, _ = model.elbo_terms(part.to(on), generator=gen)
            kl = terms["kl0"] + terms["kl_path"]
            total += float((terms["loglik"] - kl_weight * kl).sum())
    return total / (SCORE_REPEATS * n * data.length)
