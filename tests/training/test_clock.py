"""The prior's clock (ModelConfig.clock, nld.model.prior) and the stage that fits it
(nld.fitting.clock)."""

import shutil

import numpy as np
import pytest
import torch

from nld import checkpoint
from nld.data.dataset import save
from nld.fitted import Fitted
from nld.fitting.clock import fit_clock
from nld.model import ModelConfig, NLDModel
from nld.simulate import simulate_prior
from training.cli import main


@pytest.mark.parametrize("dynamics", ["overdamped", "underdamped"])
def test_a_clock_of_c_is_the_same_prior_with_time_running_c_times_faster(dynamics):
    """Exactly, step by step: with clock 3 one row of dt is 3 Euler steps of dt / 3 in the
    clocked prior (gamma / 3, m / 9), which are the unclocked prior's steps of dt on the same
    noise. Positions agree, momenta differ by the factor c (not returned)."""
    torch.manual_seed(0)
    model = NLDModel(ModelConfig(obs_dim=3, latent_dim=2, dynamics=dynamics, gamma=0.7))
    start = np.array([0.3, -0.2])
    plain = simulate_prior(model, 8, 60, 0.1, seed=4, start=start)
    model.set_clock(3.0)
    clocked = simulate_prior(model, 8, 20, 0.1, seed=4, start=start)
    np.testing.assert_allclose(clocked, plain[:, ::3], atol=1e-5)
    assert np.abs(plain[:, -1] - plain[:, 0]).max() > 0.05  # the paths did move


def test_the_clock_changes_neither_the_elbo_nor_the_labels():
    torch.manual_seed(0)
    model = NLDModel(ModelConfig(obs_dim=3, latent_dim=2, basin_head=True))
    x = torch.randn(4, 30, 3)

    def seen() -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(1)
        terms, path = model.elbo_terms(x, generator=gen)
        return (*(terms[k] for k in sorted(terms)), path.y, model.read(x)[0])

    before = seen()
    model.set_clock(5.0)
    for a, b in zip(before, seen(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="clock"):
        NLDModel(ModelConfig(obs_dim=3, dynamics="nsde", clock=2.0))


def test_training_sets_the_clock_to_the_known_dwell_times(smoke_run):
    """The easy data stay 20 steps in each state. Training ends by fitting the clock to its
    state chain: the prior it leaves then dwells as long as the data, and the clock survives
    the checkpoint."""
    run, _ = smoke_run
    _, meta = checkpoint.read_config(run)
    fit = meta["clock"]
    assert fit["skipped"] is None
    chain, before, after = (
        np.array(fit[k]) for k in ("chain_dwell", "dwell_before", "dwell_after")
    )
    np.testing.assert_allclose(chain, 20, rtol=0.15)
    assert np.abs(np.log(before / chain)).max() > np.log(1.5)  # there was something to fix
    np.testing.assert_allclose(after, chain, rtol=0.2)
    model, _ = checkpoint.load(run)
    assert model.cfg.clock == fit["clock"] == model.prior.clock != 1


def test_fit_clock_refits_from_scratch_and_says_why_it_cannot(smoke_run, easy_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    model, fitted = checkpoint.load(run)
    first = model.cfg.clock
    model.set_clock(50.0)  # a clock fitted earlier does not bias the next fit
    again = fit_clock(model, fitted, easy_data[0], seed=0)
    assert again.clock == pytest.approx(first, rel=1e-6)
    fitted.set_chain(None)
    missing = fit_clock(model, fitted, easy_data[0], seed=0)
    assert missing.skipped is not None and "chain" in missing.skipped


def test_nld_clock_sets_an_older_run_and_refuses_a_model_without_energy(
    smoke_run, easy_data, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    model, fitted = checkpoint.load(run)
    clock = model.cfg.clock
    model.set_clock(1.0)
    _, meta = checkpoint.read_config(run)
    del meta["clock"]
    checkpoint.save(run, model, fitted, meta=meta)  # as a run trained before the stage
    save(tmp_path / "train.npz", easy_data[0])
    assert main(["clock", str(run), "--data", str(tmp_path / "train.npz")]) == 0
    assert f"clock {clock:.3g}" in capsys.readouterr().out
    assert checkpoint.load(run)[0].cfg.clock == pytest.approx(clock, rel=1e-6)
    assert checkpoint.read_config(run)[1]["clock"]["clock"] == pytest.approx(clock, rel=1e-6)
    nsde = tmp_path / "nsde"
    cfg = ModelConfig(obs_dim=4, dynamics="nsde")
    checkpoint.save(nsde, NLDModel(cfg), Fitted.none(cfg))
    assert main(["clock", str(nsde), "--data", str(tmp_path / "train.npz")]) == 2
    err = capsys.readouterr().err
    assert "no energy" in err and "Traceback" not in err


def test_resuming_a_finished_run_keeps_its_clock(smoke_run, easy_data, tmp_path):
    """The twin of test_resuming_a_finished_run_keeps_its_state_chain: a resume rebuilds the
    model from the preset (clock 1) and saves again, which must not drop the fitted clock."""
    from nld.fitting.config import load_config
    from nld.fitting.trainer import train

    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    clock = checkpoint.load(run)[0].cfg.clock
    model, _ = train(load_config("smoke"), easy_data[0], run, resume=True, progress_bar=False)
    assert clock != 1 and model.cfg.clock == clock == model.prior.clock
    assert checkpoint.load(run)[0].cfg.clock == clock
