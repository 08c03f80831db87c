"""Early stopping on the held-out ELBO: the rule on known curves, the held-out sequences kept
out of the batches, and a run that stops, says so, records it and resumes as stopped."""

import json

import pytest
import torch

from nld import checkpoint
from nld.errors import ConfigError
from nld.fitting import trainer
from nld.fitting.config import load_config, with_overrides
from nld.fitting.early_stop import Stopping, holdout_rows
from nld.fitting.trainer import train


def test_the_rule_stops_patience_iterations_after_the_last_real_gain():
    stop = Stopping()
    curve = {50: -9.0, 100: -6.0, 150: -5.0, 200: -4.995, 250: -4.99, 300: -4.0, 350: -3.995}
    curve |= {400: -3.999, 450: -3.992, 500: -3.991}
    stopped = [it for it, v in curve.items() if stop.update(it, v, 1.0, patience=200, gain=0.01)]
    # Gains under 0.01 do not count: the last real one is at 300, so it stops at 500.
    assert stop.best_at == 300 and stop.best == -4.0
    assert stopped == [500] and stop.stopped_at == 500
    # A resumed run at another KL weight (the single-well rescue) starts anew.
    stop.resume(kl_weight=0.2)
    assert stop.stopped_at is None
    assert not stop.update(550, -20.0, 0.2, patience=200, gain=0.01)
    assert stop.best == -20.0 and stop.best_at == 550
    stop.stopped_at = 700
    stop.resume(kl_weight=0.2)  # the same objective: the stop holds
    assert stop.stopped_at == 700


def test_holdout_rows_split_the_sequences():
    for n, share, held in [(200, 0.1, 20), (10, 0.25, 2), (3, 0.01, 1), (1, 0.3, 0), (50, 0.0, 0)]:
        rows, out = holdout_rows(n, share, seed=4)
        assert len(out) == held and len(rows) == n - held
        assert sorted(rows.tolist() + out.tolist()) == list(range(n))
    assert torch.equal(holdout_rows(200, 0.1, 4)[1], holdout_rows(200, 0.1, 4)[1])
    assert not torch.equal(holdout_rows(200, 0.1, 4)[1], holdout_rows(200, 0.1, 5)[1])
    with pytest.raises(ConfigError, match="holdout"):
        with_overrides(load_config("smoke"), {"train.holdout": 0.6})


def test_a_run_stops_when_the_held_out_elbo_stops_improving(tmp_path, easy_data, monkeypatch):
    data, _ = easy_data
    cfg = with_overrides(
        load_config("smoke"),
        {
            "train.holdout": 0.2,
            "train.iterations": 600,
            "train.patience": 100,
            "train.holdout_every": 20,
            "train.min_gain": 0.0025,
        },
    )
    seen = set()
    real_batch = trainer._batch

    def batch(x, *args, **kwargs):  # which sequences the loop trains on
        seen.add(len(x))
        return real_batch(x, *args, **kwargs)

    monkeypatch.setattr(trainer, "_batch", batch)
    train(cfg, data, tmp_path / "run", progress_bar=False, stages=[])
    assert seen == {160}  # 40 of the 200 sequences held out
    meta = checkpoint.read_config(tmp_path / "run")[1]
    stop = meta["early_stop"]
    assert meta["finished"] and meta["iteration"] == stop["stopped_at"] < 600
    assert stop["stopped_at"] - stop["best_at"] >= 100
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    held = {r["iteration"]: r["holdout_elbo"] for r in rows if "holdout_elbo" in r}
    assert min(held) == 40 and max(held) == stop["stopped_at"]  # from the end of the warm-up
    assert held[stop["best_at"]] == stop["best"] and max(held.values()) < stop["best"] + 0.01
    # Resumed, a stopped run trains no further.
    train(cfg, data, tmp_path / "run", resume=True, progress_bar=False, stages=[])
    assert checkpoint.read_config(tmp_path / "run")[1]["iteration"] == stop["stopped_at"]


def test_without_a_holdout_every_iteration_runs(smoke_run):
    meta = checkpoint.read_config(smoke_run[0])[1]
    assert meta["early_stop"] is None and meta["iteration"] == load_config("smoke").train.iterations
