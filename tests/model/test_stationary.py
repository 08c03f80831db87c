import math

import torch

from nld.model import ModelConfig, NLDModel


def test_stationary_nll_is_the_normalised_boltzmann_density():
    """With E = c |q|^2 (MLP part zeroed), exp(-beta E)/Z is N(0, 1/(2 beta c)) exactly."""
    model = NLDModel(ModelConfig(obs_dim=2, latent_dim=2)).double()
    energy = model.prior.energy
    assert energy is not None
    with torch.no_grad():
        energy.out.weight.zero_()
        energy.out.bias.zero_()
    beta, c = model.prior.beta().item(), energy.confinement.item()
    var = 1 / (2 * beta * c)
    q = torch.randn(500, 2, dtype=torch.float64) * math.sqrt(var)
    expected = -torch.distributions.Normal(0.0, math.sqrt(var)).log_prob(q).sum(-1).mean()
    torch.testing.assert_close(
        model.stationary_nll(q, points_per_dim=200), expected, rtol=2e-3, atol=2e-3
    )
