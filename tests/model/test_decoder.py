"""The decoder's full covariance: a Cholesky factor, or above `decoder_rank` dimensions a
diagonal plus a low-rank factor, each the exact Gaussian density of the covariance it builds."""

import pytest
import torch
from torch.nn import functional as F

from nld.model import ModelConfig
from nld.model.decoder import Decoder


def _randomised(cfg: ModelConfig) -> Decoder:
    torch.manual_seed(0)
    dec = Decoder(cfg).double()
    for p in dec.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return dec


def test_low_rank_covariance_is_the_gaussian_of_diagonal_plus_factor():
    dim, rank = 7, 3
    dec = _randomised(ModelConfig(obs_dim=dim, latent_dim=2, decoder_rank=rank))
    assert dec.rank == rank
    q, x = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, dim, dtype=torch.float64)
    raw = dec.chol(q)
    assert raw.shape[-1] == dim + dim * rank  # D (r + 1) numbers, not D (D + 1) / 2
    diag = F.softplus(raw[..., :dim]) + 1e-3
    factor = raw[..., dim:].unflatten(-1, (dim, rank))
    cov = torch.diag_embed(diag**2) + factor @ factor.transpose(-1, -2)
    ref = torch.distributions.MultivariateNormal(dec.mean(q), covariance_matrix=cov)
    torch.testing.assert_close(dec.log_prob(x, q), ref.log_prob(x))


def test_cholesky_below_the_rank_is_the_gaussian_of_its_factor():
    dim = 4
    dec = _randomised(ModelConfig(obs_dim=dim, latent_dim=2, decoder_rank=2))
    assert dec.rank == 0  # D <= 2 r: the full Cholesky factor, as without a rank
    q, x = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, dim, dtype=torch.float64)
    raw = dec.chol(q)
    lower = torch.diag_embed(F.softplus(raw[..., :dim]) + 1e-3)
    lower[..., dec.tril[0], dec.tril[1]] = raw[..., dim:]
    ref = torch.distributions.MultivariateNormal(dec.mean(q), scale_tril=lower)
    torch.testing.assert_close(dec.log_prob(x, q), ref.log_prob(x))


def test_low_rank_factor_starts_off_its_stationary_point():
    # At V = 0 the gradient of the likelihood in V vanishes; the factor must start elsewhere.
    torch.manual_seed(0)
    dec = Decoder(ModelConfig(obs_dim=10, latent_dim=2, decoder_rank=2))
    q, x = torch.randn(64, 2), 2 * torch.randn(64, 10)
    dec.log_prob(x, q).sum().backward()
    last = dec.chol[-1]
    assert isinstance(last, torch.nn.Linear) and last.bias.grad is not None
    assert last.bias.grad[10:].abs().max() > 1e-4


@pytest.mark.parametrize(
    "noise,rank", [("fixed", None), ("learned", None), ("full", None), ("full", 2)]
)
def test_covariance_is_the_one_log_prob_scores(noise, rank):
    dim = 6
    dec = _randomised(
        ModelConfig(obs_dim=dim, latent_dim=2, decoder_noise=noise, decoder_rank=rank)
    )
    q, x = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, dim, dtype=torch.float64)
    cov = dec.covariance(q)
    assert cov.shape == (5, dim, dim)
    ref = torch.distributions.MultivariateNormal(dec.mean(q), covariance_matrix=cov)
    torch.testing.assert_close(dec.log_prob(x, q), ref.log_prob(x))
