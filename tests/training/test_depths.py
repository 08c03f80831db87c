"""The stage that refits the wells' depths to the state chain (nld.fitting.depths)."""

import shutil
from dataclasses import replace

import numpy as np

from nld import checkpoint
from nld.data.dataset import save
from nld.fitted import Fitted
from nld.fitting.depths import fit_depths
from nld.model import ModelConfig, NLDModel
from training.cli import main


def _l1(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).sum())


def test_training_ends_with_the_depths_at_the_chains_shares(smoke_run):
    """The easy data spend half their time in each state: the chain says so, and the mass
    of exp(-beta E) in each basin is at least as near to it after the stage as before."""
    _, meta = checkpoint.read_config(smoke_run[0])
    fit = meta["depths"]
    assert fit["skipped"] is None and fit["iterations"] == 100
    np.testing.assert_allclose(fit["target"], 0.5, atol=0.05)
    assert _l1(fit["mass_after"], fit["target"]) <= _l1(fit["mass_before"], fit["target"]) + 0.01


def test_the_depths_follow_the_chain_not_the_posterior(smoke_run, easy_data):
    """A chain that stays in its first state 4x as long (stationary 0.8 / 0.2) while the
    posterior's positions still split half and half: the stage must move the mass toward the
    chain's shares."""
    model, fitted = checkpoint.load(smoke_run[0])
    assert fitted.chain is not None
    trans = np.array([[0.95, 0.05], [0.2, 0.8]])
    fitted.set_chain(replace(fitted.chain, log_trans=np.log(trans)))
    fit = fit_depths(model, fitted, easy_data[0], 100, seed=0, progress_bar=False)
    assert fit.skipped is None and fit.kept
    np.testing.assert_allclose(fit.target, [0.8, 0.2], atol=1e-6)
    assert abs(fit.mass_before[0] - 0.5) < 0.15, fit.mass_before
    assert _l1(fit.mass_after, fit.target) < 0.5 * _l1(fit.mass_before, fit.target), fit


def test_without_a_chain_the_depths_stay_and_the_record_says_why(smoke_run, easy_data):
    model, fitted = checkpoint.load(smoke_run[0])
    fitted.set_chain(None)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    fit = fit_depths(model, fitted, easy_data[0], 10, seed=0, progress_bar=False)
    assert fit.skipped is not None and "state chain" in fit.skipped
    for k, v in model.state_dict().items():
        assert (v == weights[k]).all(), k


def test_nld_depths_refits_an_older_run_and_its_clock(smoke_run, easy_data, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    model, fitted = checkpoint.load(run)
    _, meta = checkpoint.read_config(run)
    del meta["depths"]
    checkpoint.save(run, model, fitted, meta=meta)  # as a run trained before the stage
    save(tmp_path / "train.npz", easy_data[0])
    args = ["depths", str(run), "--data", str(tmp_path / "train.npz"), "--iterations", "20"]
    assert main([*args, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "basin mass after" in out and "clock: run again, the depths stage changed" in out
    _, meta = checkpoint.read_config(run)
    assert meta["depths"]["iterations"] == 20 and meta["depths"]["kept"]
    assert meta["clock"]["skipped"] is None
    nsde = tmp_path / "nsde"
    cfg = ModelConfig(obs_dim=4, dynamics="nsde")
    checkpoint.save(nsde, NLDModel(cfg), Fitted.none(cfg))
    assert main(["depths", str(nsde), "--data", str(tmp_path / "train.npz")]) == 2
    err = capsys.readouterr().err
    assert "stage depths does not apply: the model has no energy" in err
    assert "Traceback" not in err


def test_resuming_a_run_from_before_the_stage_refits_depths_then_clock(
    smoke_run, easy_data, tmp_path
):
    """A finished run whose trainer state has no depths record (trained before the stage):
    `--resume` runs the stage, and then the clock again, on the new landscape."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from nld.fitting.config import load_config
    from nld.fitting.state import FILE
    from nld.fitting.trainer import train

    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    with safe_open(str(run / FILE), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    progress = json.loads(meta["progress"])
    old_clock = progress["records"]["clock"]
    # The trainer state as runs from before the stage wrote it: a field per stage, no depths.
    old = {k: v for k, v in progress.items() if k != "records"} | progress["records"]
    old["depths"] = None
    save_file(tensors, str(run / FILE), metadata={**meta, "progress": json.dumps(old)})
    train(load_config("smoke"), easy_data[0], run, resume=True, progress_bar=False)
    _, meta = checkpoint.read_config(run)
    assert meta["depths"]["skipped"] is None and meta["depths"]["kept"] and meta["finished"]
    assert meta["clock"]["skipped"] is None and meta["clock"] != old_clock


def test_an_undone_depths_fit_leaves_the_clock_as_it_was(
    smoke_run, easy_data, tmp_path, capsys, monkeypatch
):
    """When the fit does not lower its loss the calibration restores the weights: the landscape
    is the one the clock was set on, so `nld depths` keeps that clock."""
    import nld.fitting.depths
    from nld.fitting.calibrate import Calibration

    def no_better(model, data, iterations, *args, **kwargs):
        return Calibration(iterations=iterations, nll_before=1.0, nll_after=1.0, seconds=0.0)

    monkeypatch.setattr(nld.fitting.depths, "calibrate", no_better)
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    _, before = checkpoint.read_config(run)
    save(tmp_path / "train.npz", easy_data[0])
    assert main(["depths", str(run), "--data", str(tmp_path / "train.npz"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "was undone" in out and "run again" not in out
    _, meta = checkpoint.read_config(run)
    assert not meta["depths"]["kept"] and meta["clock"] == before["clock"]


def test_a_fit_that_merges_wells_is_undone(smoke_run, easy_data, monkeypatch):
    """A fit that lowers its loss but leaves other minima than the state chain's (two wells
    merged) would cost the model its chain's labels: it is undone."""
    import torch

    import nld.fitting.depths
    from nld.fitting.calibrate import Calibration

    def deepens(model, data, iterations, *args, **kwargs):
        with torch.no_grad():
            for w in model.prior.energy.parameters():
                w.add_(0.1)
        return Calibration(iterations=iterations, nll_before=1.0, nll_after=0.5, seconds=0.0)

    model, fitted = checkpoint.load(smoke_run[0])
    before = {k: v.clone() for k, v in model.prior.energy.state_dict().items()}
    monkeypatch.setattr(nld.fitting.depths, "calibrate", deepens)
    monkeypatch.setattr(nld.fitting.depths, "_minima", lambda *args: [])  # the wells merged
    fit = fit_depths(model, fitted, easy_data[0], 10, seed=0, progress_bar=False)
    assert not fit.kept and "merged or moved wells" in fit.undone and not fit.changed()
    assert "undone, it merged" in fit.describe()[0]
    for k, v in model.prior.energy.state_dict().items():
        assert torch.equal(v, before[k]), k
    # ... while a fit that keeps the chain's minima (here: changes nothing) is kept.
    monkeypatch.undo()

    def better(model, data, iterations, *args, **kwargs):
        return Calibration(iterations=iterations, nll_before=1.0, nll_after=0.5, seconds=0.0)

    monkeypatch.setattr(nld.fitting.depths, "calibrate", better)
    assert fit_depths(model, fitted, easy_data[0], 10, seed=0, progress_bar=False).kept
