"""The decoder p(x | q): the observation model of a latent position q."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import LowRankMultivariateNormal
from torch.nn import functional as F

from nld.model.config import ModelConfig
from nld.model.layers import mlp


class Decoder(nn.Module):
    """p(x | q) = N(mean(q), Sigma): Sigma fixed, a learned diagonal, or full as a function of
    q: its Cholesky factor, or, with more than 2 r observed dimensions (r = `decoder_rank`), a
    diagonal plus a rank-r factor (Woodbury, `LowRankMultivariateNormal`), whose cost grows like
    D r rather than D^2 (at D = 100 a full factor took 4 s per training step, one thread)."""

    fixed_std: Tensor
    tril: Tensor  # the full factor's entries below the diagonal [2, D (D - 1) / 2]

    def __init__(self, cfg: ModelConfig, in_dim: int | None = None) -> None:
        """A decoder of the latent position, or of any `in_dim`-vector (the predictive head)."""
        super().__init__()
        d, dim = in_dim or cfg.latent_dim, cfg.obs_dim
        self.noise = cfg.decoder_noise
        self.mean = (
            nn.Linear(d, dim)
            if cfg.decoder == "linear"
            else mlp([d, cfg.decoder_hidden, cfg.decoder_hidden, dim])
        )
        self.register_buffer("fixed_std", torch.tensor(cfg.noise_std))
        self.rank = 0  # of the low-rank factor; 0: a full Cholesky factor
        if self.noise == "learned":
            self.log_std = nn.Parameter(torch.zeros(dim))
        elif self.noise == "full":
            if cfg.decoder_rank is not None and dim > 2 * cfg.decoder_rank:
                self.rank = cfg.decoder_rank
                n_factor = dim * self.rank
            else:
                # a buffer, so that it moves with the model (not saved: it follows from dim)
                self.register_buffer("tril", torch.tril_indices(dim, dim, offset=-1), False)
                n_factor = self.tril.shape[1]
            self.chol = mlp([d, cfg.decoder_hidden, dim + n_factor])
            last = self.chol[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            with torch.no_grad():
                last.bias[:dim] = math.log(math.expm1(1.0))
                if self.rank:  # V = 0 is a stationary point of the likelihood: start off it
                    last.bias[dim:].normal_(0.0, 1e-2)

    def covariance(self, q: Tensor) -> Tensor:
        """Sigma(q) [..., D, D] of p(x | q) (in the standardised space the decoder sees)."""
        dim = self.mean(q).shape[-1]
        batch = q.shape[:-1]
        if self.noise == "fixed":
            return (self.fixed_std**2 * torch.eye(dim, dtype=q.dtype, device=q.device)).expand(
                *batch, dim, dim
            )
        if self.noise == "learned":
            return torch.diag_embed(torch.exp(2 * self.log_std)).expand(*batch, dim, dim)
        raw = self.chol(q)
        diag = F.softplus(raw[..., :dim]) + 1e-3
        if self.rank:
            factor = raw[..., dim:].unflatten(-1, (dim, self.rank))
            return factor @ factor.transpose(-1, -2) + torch.diag_embed(diag * diag)
        lower = torch.diag_embed(diag)
        lower[..., self.tril[0], self.tril[1]] = raw[..., dim:]
        return lower @ lower.transpose(-1, -2)

    def log_prob(self, x: Tensor, q: Tensor) -> Tensor:
        """log p(x | q) for x [..., D], q [..., d] -> [...]."""
        r = x - self.mean(q)
        dim = x.shape[-1]
        const = 0.5 * dim * math.log(2 * math.pi)
        if self.noise == "full":
            raw = self.chol(q)
            diag = F.softplus(raw[..., :dim]) + 1e-3
            if self.rank:
                factor = raw[..., dim:].unflatten(-1, (dim, self.rank))
                dist = LowRankMultivariateNormal(
                    torch.zeros_like(r), factor, diag * diag, validate_args=False
                )
                return dist.log_prob(r)
            lower = torch.diag_embed(diag)
            lower[..., self.tril[0], self.tril[1]] = raw[..., dim:]
            white = torch.linalg.solve_triangular(lower, r.unsqueeze(-1), upper=False).squeeze(-1)
            return -0.5 * (white * white).sum(-1) - torch.log(diag).sum(-1) - const
        log_std = self.log_std if self.noise == "learned" else torch.log(self.fixed_std)
        white = r * torch.exp(-log_std)
        return (
            -0.5 * (white * white).sum(-1)
            - log_std.sum() * (1 if self.noise == "learned" else dim)
            - const
        )
