"""Our Euler-Maruyama step against torchsde on the same Brownian path."""

import numpy as np
import pytest
import torch
import torchsde

from nld.model import ModelConfig, NLDModel, step


class TorchsdePrior(torch.nn.Module):
    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, model: NLDModel):
        super().__init__()
        self.prior = model.prior
        self.d = model.cfg.latent_dim

    def f(self, t, y):
        return self.prior.drift(y)

    def g(self, t, y):
        g = self.prior.diffusion() * torch.ones(y.shape[0], self.d, dtype=y.dtype)
        return torch.cat([torch.zeros_like(y[:, : y.shape[1] - self.d]), g], dim=1)


def _model(dynamics, mass=1.0):
    cfg = ModelConfig(dynamics=dynamics, obs_dim=3, latent_dim=2, energy_hidden=[16, 16], mass=mass)
    return NLDModel(cfg).double()


@pytest.mark.parametrize("dynamics", ["overdamped", "underdamped", "nsde"])
def test_explicit_euler_matches_torchsde(dynamics):
    model = _model(dynamics, mass=0.3)  # away from 1: a step confusing m with 1 / m shows
    s = model.cfg.state_dim
    y0 = torch.randn(16, s, dtype=torch.float64)
    dt, n = 0.01, 50
    bm = torchsde.BrownianInterval(0.0, n * dt, (16, s), dtype=torch.float64, entropy=7)
    with torch.no_grad():
        ref = torchsde.sdeint(
            TorchsdePrior(model),
            y0,
            torch.tensor([0.0, n * dt], dtype=torch.float64),
            bm=bm,
            dt=dt,
            method="euler",
        )[-1]
        y = y0
        for k in range(n):
            dw = bm(k * dt, (k + 1) * dt)[:, s - model.cfg.latent_dim :]
            y = step(model.prior, y, dt, dw=dw, symplectic=False)
    torch.testing.assert_close(y, ref, rtol=1e-7, atol=1e-8)


def test_symplectic_converges_to_the_same_solution():
    model = _model("underdamped")
    y0 = torch.randn(64, 4, dtype=torch.float64)
    t_end = 0.5
    bm = torchsde.BrownianInterval(0.0, t_end, (64, 4), dtype=torch.float64, entropy=3)

    def ours(dt):
        n = round(t_end / dt)
        y = y0
        with torch.no_grad():
            for k in range(n):
                y = step(model.prior, y, dt, dw=bm(k * dt, (k + 1) * dt)[:, 2:])
        return y

    with torch.no_grad():
        fine = torchsde.sdeint(
            TorchsdePrior(model),
            y0,
            torch.tensor([0.0, t_end], dtype=torch.float64),
            bm=bm,
            dt=1e-4,
            method="euler",
        )[-1]
    errors = [(ours(dt) - fine).abs().mean().item() for dt in (0.05, 0.0125)]
    assert errors[1] < errors[0] / 2.5  # strong order ~1 for additive noise
    assert errors[1] < 1e-2


@pytest.mark.parametrize("dynamics", ["overdamped", "underdamped", "nsde"])
def test_prior_simulation_is_the_training_step(dynamics):
    """simulate_prior's written-out loop equals iterating `step` with the same noise."""
    from nld.simulate import simulate_prior

    torch.manual_seed(0)
    model = NLDModel(ModelConfig(obs_dim=3, latent_dim=2, dynamics=dynamics))
    n, steps, dt = 5, 7, 0.05
    start = np.array([0.3, -0.2])
    got = simulate_prior(model, n, steps, dt, seed=3, start=start)
    gen = torch.Generator().manual_seed(3)
    noise = torch.randn(steps, n, 2, generator=gen) * dt**0.5
    s = model.cfg.state_dim
    y = torch.zeros(n, s)
    y[:, :2] = torch.as_tensor(start, dtype=torch.float32)
    want = [y[:, :2].clone()]
    with torch.no_grad():
        for k in range(steps):
            y = step(model.prior, y, dt, dw=noise[k])
            want.append(y[:, :2].clone())
    np.testing.assert_allclose(got, torch.stack(want, 1).numpy(), rtol=1e-5, atol=1e-6)
