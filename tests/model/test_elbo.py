"""The KL terms of the ELBO against values computed another way."""

import math

import torch

from nld.model import ModelConfig, NLDModel, step


def _const_control(model: NLDModel, value: float) -> None:
    last = model.control[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, value)


def test_path_kl_is_the_girsanov_value_of_a_constant_control():
    cfg = ModelConfig(obs_dim=2, latent_dim=2, control_bound=100.0, substeps=2, dt=0.1)
    model = NLDModel(cfg).double()
    _const_control(model, 0.7)
    x = torch.randn(4, 11, 2, dtype=torch.float64)
    path = model.posterior(x, sample=True)
    u = 100.0 * math.tanh(0.7 / 100.0)
    expected = 0.5 * (2 * u * u) * cfg.dt * (x.shape[1] - 1)
    torch.testing.assert_close(path.kl_path, torch.full((4,), expected, dtype=torch.float64))


def test_path_kl_equals_monte_carlo_log_ratio_of_transitions():
    """E_q[log q(path) - log p(path)] over Gaussian transitions equals the reported KL."""
    torch.manual_seed(1)
    cfg = ModelConfig(obs_dim=2, latent_dim=2, control_bound=3.0, dt=0.2)
    model = NLDModel(cfg).double()
    x = torch.randn(1, 6, 2, dtype=torch.float64).expand(4000, 6, 2)
    with torch.no_grad():
        ctx, _ = model.encode(model.standardise(x))
        y, _ = model.initial(ctx[:, 0], torch.randn(4000, 2, dtype=torch.float64))
        g = model.prior.diffusion()
        log_ratio = torch.zeros(4000, dtype=torch.float64)
        kl = torch.zeros(4000, dtype=torch.float64)
        for t in range(1, 6):
            u = model.control_at(y, ctx[:, t])
            y_next = step(model.prior, y, cfg.dt, u=u, dw=torch.randn_like(y) * math.sqrt(cfg.dt))
            mean_q = step(model.prior, y, cfg.dt, u=u)
            mean_p = step(model.prior, y, cfg.dt)
            var = g * g * cfg.dt
            log_ratio += (-((y_next - mean_q) ** 2) + (y_next - mean_p) ** 2).sum(-1) / (2 * var)
            kl += 0.5 * (u * u).sum(-1) * cfg.dt
            y = y_next
    se = log_ratio.std() / math.sqrt(4000)
    assert abs(log_ratio.mean() - kl.mean()) < 4 * se


def test_initial_kl_is_the_gaussian_formula():
    cfg = ModelConfig(obs_dim=2, latent_dim=3)
    model = NLDModel(cfg).double()
    c0 = torch.randn(5, cfg.context_dim, dtype=torch.float64)
    _, kl0 = model.initial(c0)
    mean, log_std = model.qy0(c0).chunk(2, dim=-1)
    q = torch.distributions.Normal(mean, log_std.exp())
    p = torch.distributions.Normal(model.py0_mean, model.py0_logstd.exp())
    torch.testing.assert_close(kl0, torch.distributions.kl_divergence(q, p).sum(-1))


def test_labels_are_causal():
    """Changing x after step t never changes the posterior path up to t."""
    model = NLDModel(ModelConfig(obs_dim=3, dynamics="underdamped")).double()
    x = torch.randn(2, 30, 3, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 20:] += 5.0
    a = model.posterior(x, sample=False).y
    b = model.posterior(x2, sample=False).y
    torch.testing.assert_close(a[:, :20], b[:, :20])
    assert not torch.allclose(a[:, 20], b[:, 20])
