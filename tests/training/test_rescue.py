"""The single-well guard of the default preset (nld.fitting.rescue)."""

import json

import numpy as np
import torch

from nld import checkpoint
from nld.fitting import trainer
from nld.fitting.config import load_config
from nld.fitting.rescue import DIP, single_well, valley_ratio


def test_valley_ratio_tells_one_mode_from_several():
    rng = np.random.default_rng(0)
    one = rng.normal(size=(1200, 3)) * [1.0, 2.0, 0.5]
    banana = np.c_[np.linspace(-2, 2, 1200), np.linspace(-2, 2, 1200) ** 2, np.zeros(1200)]
    banana += 0.3 * rng.normal(size=banana.shape)
    centres = np.array([[0, 0, 0], [4, 0, 0], [0, 4, 0]])
    three = (centres[:, None] + 0.5 * rng.normal(size=(3, 400, 3))).reshape(-1, 3)
    assert valley_ratio(one) > DIP and valley_ratio(banana) > DIP
    assert valley_ratio(three) < 0.2


def test_single_well_fires_only_on_one_minimum_with_clustered_readout(smoke_run, easy_data):
    model, _ = checkpoint.load(smoke_run[0])
    assert single_well(model, easy_data[0]) is None  # two wells, two states: nothing to do
    with torch.no_grad():  # flatten the energy to its confining quadratic: one minimum
        model.prior.energy.out.weight.zero_()
    why = single_well(model, easy_data[0])
    assert why is not None and "several modes" in why


def test_a_single_well_run_is_continued_at_the_rescue_kl(tmp_path, easy_data, monkeypatch):
    calls = []

    def once(model, data):
        calls.append(1)
        return "the energy has a single minimum" if len(calls) == 1 else None

    monkeypatch.setattr(trainer, "single_well", once)
    cfg = load_config("smoke")
    cfg.train.iterations, cfg.train.kl_warmup = 20, 10
    cfg.train.rescue_kl, cfg.train.rescue_iterations = 0.2, 10
    trainer.train(cfg, easy_data[0], tmp_path / "run", progress_bar=False)
    _, meta = checkpoint.read_config(tmp_path / "run")
    assert meta["iteration"] == 30 and meta["train"]["train"]["kl_final"] == 0.2
    assert len(calls) == 1  # the continued run is not checked again
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert rows[-1]["iteration"] == 30 and rows[-1]["kl_weight"] == 0.2
