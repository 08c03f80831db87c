import pytest
import torch

from nld import checkpoint
from nld.errors import NLDError
from nld.fitting.config import TrainConfig, load_config, with_overrides
from nld.fitting.restarts import CANDIDATES, fit, objective_per_step
from nld.fitting.trainer import TrainingDiverged, train
from nld.model import NLDModel


def _smoke(**train: object) -> TrainConfig:
    """The smoke preset with these training settings (older stage settings migrated)."""
    return with_overrides(load_config("smoke"), {f"train.{k}": v for k, v in train.items()})


def test_the_score_is_reproducible_and_prefers_a_trained_model(smoke_run, easy_data):
    run, _ = smoke_run
    train_set, _ = easy_data
    trained, _ = checkpoint.load(run)
    untrained = NLDModel(trained.cfg)
    untrained.load_state_dict(
        {k: v for k, v in trained.state_dict().items() if k in ("x_mean", "x_std")},
        strict=False,
    )
    score = objective_per_step(trained, train_set, seed=3)
    assert score == objective_per_step(trained, train_set, seed=3)
    assert score > objective_per_step(untrained, train_set, seed=3) + 1.0
    # A lower KL weight discounts the KL: the score rises.
    assert objective_per_step(trained, train_set, 0.2, seed=3) > score


def test_restarts_keep_the_best_candidate_and_resume_reuses_them(tmp_path, easy_data):
    train_set, _ = easy_data
    cfg = _smoke(
        iterations=40,
        checkpoint_every=20,
        calibrate_iterations=10,
        basin_head_iterations=10,
        depths_iterations=10,
        restarts=2,
        threads=2,
        seed=5,
    )
    out = tmp_path / "run"
    with pytest.raises(NLDError, match="nothing to resume"):
        fit(cfg, train_set, out, resume=True, progress_bar=False)
    model, fitted = fit(cfg, train_set, out, progress_bar=False)

    meta = checkpoint.read_config(out)[1]
    record = meta["restarts"]
    assert record["kl_weight"] == 1.0  # no candidate was rescued: the ELBO itself
    scores = {c["seed"]: c["score"] for c in record["candidates"]}
    assert sorted(scores) == [5, 6]
    assert record["kept"] == max(scores, key=lambda s: scores[s])
    kept = out / CANDIDATES / f"seed{record['kept']}"
    network, stored = checkpoint.load(kept)
    weights = network.state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k]), k
    assert torch.equal(fitted.minima, stored.minima)
    assert (out / "metrics.jsonl").read_bytes() == (kept / "metrics.jsonl").read_bytes()
    assert meta["finished"] and meta["train"]["train"]["seed"] == record["kept"]
    # The candidates leave the separation stage to the one kept (their settings as asked
    # for: the runner skips it there); two easy states: no round.
    assert meta["train"]["stages"]["separate"]["rounds"] == cfg.stages["separate"]["rounds"] > 0
    assert checkpoint.read_config(kept)[1]["separation"] is None
    assert meta["separation"]["rounds"] == []
    # ... and the depths stage, which then finds no state chain after 40 iterations.
    assert checkpoint.read_config(kept)[1]["depths"] is None
    assert meta["depths"]["iterations"] == 10 and "state chain" in meta["depths"]["skipped"]

    with pytest.raises(NLDError, match="--resume"):
        fit(cfg, train_set, out, progress_bar=False)
    stamps = {p: p.stat().st_mtime_ns for p in (out / CANDIDATES).rglob("*.safetensors")}
    fit(cfg, train_set, out, resume=True, progress_bar=False)  # finished: nothing retrained
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert checkpoint.read_config(out)[1]["restarts"] == record


def test_when_every_candidate_diverges_the_error_says_so(tmp_path, easy_data):
    cfg = _smoke(iterations=20, lr=1e6, lr_final=1e6, max_rollbacks=0, restarts=2, threads=2)
    with pytest.raises(TrainingDiverged, match="diverged"):
        fit(cfg, easy_data[0], tmp_path / "run", progress_bar=False)


def test_a_diverged_candidate_is_recorded_and_the_other_kept(tmp_path, easy_data):
    train_set, _ = easy_data
    short = {"iterations": 20, "calibrate_iterations": 10, "basin_head_iterations": 10}
    out = tmp_path / "run"
    train(_smoke(**short), train_set, out / CANDIDATES / "seed0", progress_bar=False)  # done
    bad = _smoke(**short, lr=1e6, lr_final=1e6, max_rollbacks=0, restarts=2, threads=2)
    fit(bad, train_set, out, resume=True, progress_bar=False)  # trains seed 1 only: it diverges

    record = checkpoint.read_config(out)[1]["restarts"]
    first, second = record["candidates"]
    assert record["kept"] == 0 and "score" in first and "error" not in first
    assert "diverged" in second["error"] and "score" not in second


def test_candidates_in_this_process_are_the_models_worker_processes_train(tmp_path, easy_data):
    """What the estimator does (no spawned workers, which would re-run a user's script)."""
    short = {"iterations": 20, "calibrate_iterations": 5, "basin_head_iterations": 5}
    cfg = _smoke(**short, depths_iterations=5, restarts=2, threads=2)
    workers, fitted = fit(cfg, easy_data[0], tmp_path / "workers", progress_bar=False)
    here, ours = fit(cfg, easy_data[0], tmp_path / "here", progress_bar=False, processes=False)
    theirs = here.state_dict()
    for k, v in workers.state_dict().items():
        assert torch.equal(v, theirs[k]), k
    assert torch.equal(fitted.minima, ours.minima)
    records = [checkpoint.read_config(tmp_path / d)[1]["restarts"] for d in ("workers", "here")]
    assert records[0] == records[1]
