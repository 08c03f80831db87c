"""The KL terms of the ELBO against values computed another way."""

import math

import pytest
import torch

from nld.model import ModelConfig, NLDModel, step


def _const_control(model: NLDModel, value: float) -> None:
    last = model.control[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, value)


def test_path_kl_is_the_girsanov_value_of_a_constant_control():
    cfg = ModelConfig(
        obs_dim=2, latent_dim=2, posterior="residual", control_bound=100.0, substeps=2, dt=0.1
    )
    model = NLDModel(cfg).double()
    _const_control(model, 0.7)
    x = torch.randn(4, 11, 2, dtype=torch.float64)
    path = model.posterior(x, sample=True)
    u = 100.0 * math.tanh(0.7 / 100.0)
    expected = 0.5 * (2 * u * u) * cfg.dt * (x.shape[1] - 1)
    torch.testing.assert_close(path.kl_path, torch.full((4,), expected, dtype=torch.float64))


@pytest.mark.parametrize(
    ("dynamics", "posterior"),
    [("overdamped", "free"), ("overdamped", "residual"), ("underdamped", "free"), ("nsde", "free")],
)
def test_path_kl_equals_monte_carlo_log_ratio_of_transitions(dynamics, posterior):
    """E_q[log q(path) - log p(path)] over Gaussian transitions equals the reported KL."""
    torch.manual_seed(1)
    cfg = ModelConfig(
        obs_dim=2, latent_dim=2, dynamics=dynamics, posterior=posterior, control_bound=3.0, dt=0.2
    )
    model = NLDModel(cfg).double()
    for p in model.control.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(1, 6, 2, dtype=torch.float64).expand(4000, 6, 2)
    with torch.no_grad():
        ctx, _ = model.encode(model.standardise(x))
        y, _ = model.initial(ctx[:, 0], torch.randn(4000, cfg.state_dim, dtype=torch.float64))
        g = model.prior.diffusion()
        log_ratio = torch.zeros(4000, dtype=torch.float64)
        kl = torch.zeros(4000, dtype=torch.float64)
        for t in range(1, 6):
            out = model.control_at(y, ctx[:, t])
            h = model.prior.noise_drift(y)
            f = out if posterior == "free" else h + g * out
            dw = torch.randn(4000, 2, dtype=torch.float64) * math.sqrt(cfg.dt)
            y_next = step(model.prior, y, cfg.dt, drift=f, dw=dw)
            # Only the noisy components are random: compare their transition densities.
            noisy = slice(cfg.state_dim - 2, cfg.state_dim)
            mean_q = step(model.prior, y, cfg.dt, drift=f)[:, noisy]
            mean_p = step(model.prior, y, cfg.dt)[:, noisy]
            z = y_next[:, noisy]
            var = g * g * cfg.dt
            log_ratio += ((-((z - mean_q) ** 2) + (z - mean_p) ** 2) / (2 * var)).sum(-1)
            _, kl_t = model.advance(y, ctx[:, t], dw[None] / math.sqrt(cfg.dt))
            kl += kl_t
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
    for p in model.control.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 30, 3, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 20:] += 5.0
    a = model.posterior(x, sample=False).y
    b = model.posterior(x2, sample=False).y
    torch.testing.assert_close(a[:, :20], b[:, :20])
    assert not torch.allclose(a[:, 20], b[:, 20])


def test_predictive_term_scores_the_next_observation_from_the_context():
    cfg = ModelConfig(obs_dim=3, latent_dim=2, decoder_noise="fixed", noise_std=0.5)
    assert NLDModel(cfg).predictor is None  # off unless asked for
    model = NLDModel(cfg.model_copy(update={"predictive_weight": 1.0})).double()
    assert model.predictor is not None
    head = model.predictor.mean
    assert isinstance(head, torch.nn.Linear)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    terms, _ = model.elbo_terms(x)
    # with a zero mean and std 0.5, -log N(x_t; 0, 0.25 I) summed over t = 1..T-1
    nll = 0.5 * (x[:, 1:] / 0.5) ** 2 + math.log(0.5) + 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(terms["predictive"], nll.sum((1, 2)))
    # with a live head the term trains the encoder
    torch.nn.init.normal_(head.weight)
    model.elbo_terms(x)[0]["predictive"].sum().backward()
    assert model.gru.weight_ih_l0.grad is not None
    assert model.gru.weight_ih_l0.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("dynamics", "posterior", "substeps"),
    [("overdamped", "free", 2), ("underdamped", "free", 1), ("overdamped", "residual", 2)],
)
def test_path_batches_the_free_kl_and_the_control_context_exactly(dynamics, posterior, substeps):
    """posterior() evaluates the control's context share for all steps at once and a free
    posterior's KL after the loop: the same path and KL as interval-by-interval `advance`
    with the whole control network on (y, c), given the same noise."""
    torch.manual_seed(2)
    cfg = ModelConfig(
        obs_dim=3, latent_dim=2, dynamics=dynamics, posterior=posterior, substeps=substeps
    )
    model = NLDModel(cfg).double()
    for p in model.control.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(5, 9, 3, dtype=torch.float64)
    path = model.posterior(x, generator=torch.Generator().manual_seed(3), trace=True)

    gen = torch.Generator().manual_seed(3)
    ctx, _ = model.encode(model.standardise(x))
    eps = torch.randn(5, cfg.state_dim, generator=gen, dtype=torch.float64)
    y, _ = model.initial(ctx[:, 0], eps)
    ys, kl = [y], torch.zeros(5, dtype=torch.float64)
    for t in range(1, 9):
        noise = torch.randn(substeps, 5, 2, generator=gen, dtype=torch.float64)
        y_in = y
        y, kl_t = model.advance(y, ctx[:, t], noise)
        kl += kl_t
        ys.append(y)
        whole = model.control(torch.cat([y_in, ctx[:, t]], dim=-1))
        if posterior != "additive":
            whole = cfg.control_bound * torch.tanh(whole / cfg.control_bound)
        torch.testing.assert_close(model.control_at(y_in, ctx[:, t]), whole)
    torch.testing.assert_close(path.y, torch.stack(ys, dim=1))
    torch.testing.assert_close(path.kl_path, kl)
    assert path.trace_y is not None and path.trace_f is not None
    assert path.trace_y.shape == (5, 8 * substeps, cfg.state_dim)
    assert path.trace_f.shape == (5, 8 * substeps, 2)
    torch.testing.assert_close(path.trace_y[:, ::substeps], path.y[:, :-1])
