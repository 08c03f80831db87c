"""The stage that acts on the split test (nld.fitting.separate): where it puts the targets, which
states it splits, and that a round which finds no new well leaves the model as it was."""

import shutil

import numpy as np
import torch

from nld import checkpoint
from nld.fitting.config import load_config
from nld.fitting.separate import describe, separate, split_states, targets


def test_targets_keep_the_minima_and_put_split_halves_apart():
    minima = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    means = np.zeros((5, 2))  # halves of state 0: 0 and 3; of state 1: 1 and 4
    means[3] = [1.0, 0.0]  # state 0's halves lie along +x ...
    means[1], means[4] = [1.0, 0.0], [0.0, 0.0]  # ... and state 1's along -x: into them
    centers, spacing = targets(minima, [0, 1], means, seed=0)
    assert spacing == 1.0
    np.testing.assert_allclose(centers[2], minima[2])  # not split: its minimum
    np.testing.assert_allclose(centers[[0, 3]], [[-0.5, 0.0], [0.5, 0.0]])  # own direction
    np.testing.assert_allclose(centers[[1, 4]].mean(0), minima[1])  # either side of it
    np.testing.assert_allclose(np.linalg.norm(centers[4] - centers[1]), spacing)
    gaps = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
    assert gaps[np.triu_indices(5, 1)].min() > 0.25  # turned away from state 0's halves


def test_split_states_reads_the_basin_heads_record():
    def record(split):
        return {"chain": {"kept": True, "split": split}}

    assert split_states(record({"state": 1, "preferred": True, "gains": [-3.0, 5.0, 2.0]})) == [
        1,
        2,
    ]
    assert split_states(record({"state": 0, "preferred": False, "gains": [-3.0, -5.0]})) == []
    assert split_states(record({"state": 1, "preferred": True})) == [1]  # before gains were kept
    assert split_states({"chain": {"kept": False}}) == split_states(None) == []


def test_a_round_without_a_new_well_restores_the_model(smoke_run, easy_data, tmp_path):
    # Two true states, two wells: told that one well holds two states, the stage pulls its
    # halves apart, finds no third minimum, and leaves everything as it was.
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    model, fitted = checkpoint.load(run)
    _, meta = checkpoint.read_config(run)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    chain, minima = fitted.chain, fitted.minima
    head = meta["basin_head"] | {
        "chain": meta["basin_head"]["chain"]
        | {"split": {"state": 0, "preferred": True, "gains": [50.0, -10.0]}}
    }
    cfg = load_config("smoke")
    sections = (
        cfg.stage_settings("separate").model_copy(update={"iterations": 30}),
        cfg.stage_settings("calibrate"),
        cfg.stage_settings("basin-head"),
    )
    record, head_after, calibration = separate(
        model,
        fitted,
        easy_data[0],
        cfg.train,
        sections,
        head,
        meta["calibration"],
        progress_bar=False,
    )
    (only,) = record["rounds"]
    assert only["split"] == [0] and only["minima_before"] == 2 and not only["kept"]
    assert head_after is head and calibration is meta["calibration"]
    assert fitted.chain is chain and torch.equal(fitted.minima, minima)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_each_round_is_described():
    record = {
        "rounds": [
            {"split": [1], "minima_before": 2, "minima_after": 3, "kept": True, "seconds": 250.2},
            {
                "split": [0],
                "minima_before": 3,
                "why": "no new minimum",
                "kept": False,
                "seconds": 9,
            },
        ]
    }
    first, second = describe(record)
    assert "minima 1 apart" in first and "2 -> 3 minima, kept" in first and "250 s" in first
    assert "not kept (no new minimum), the model restored" in second
    assert describe(None) == describe({"rounds": []}) == []
