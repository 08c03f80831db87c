"""The latent-SDE VAE: online encoder, posterior SDE, decoder, and the lag-free readout.

For observations x_0..x_{T-1} (standardised with the training set's mean and std):
    c_t = Linear(GRU(MLP(x)))_t                      context, causal: sees x_{<=t}
    y_0 ~ q(y_0 | c_0) = N(mu(c_0), sigma(c_0)^2)
    y_t = step(y_{t-1}; drift f(y, c_t))             for t >= 1: the step *into* t sees x_t,
                                                     so the path at t is a filter of x_{<=t}
    x_t ~ p(x_t | q_t)                               Gaussian decoder of the position q_t
    ELBO = sum_t log p(x_t | q_t) - KL(q(y_0) || p(y_0)) - sum_steps |u|^2 dt / 2,
           u = (f - h) / g                           h, g: the prior's drift and diffusion
    r(c_t)                                           readout of the position, for labels
    argmax_k s_k(c_t)                                optional basin head: the most probable
                                                     basin of q_{t+L}, fitted after training
    p(x_{t+1} | c_t)                                 optional predictive head (an auxiliary
                                                     loss on the encoder, predictive_weight)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nld.model.config import ModelConfig
from nld.model.decoder import Decoder
from nld.model.layers import mlp
from nld.model.prior import Prior
from nld.model.sde import Euler

MAX_BASINS = 16  # classes of the basin head; a landscape with more minima labels by position


@dataclass
class PosteriorPath:
    y: Tensor  # [B, T, state_dim]
    context: Tensor  # [B, T, context_dim]
    kl_path: Tensor  # [B]
    kl0: Tensor  # [B]
    # Detached (state, posterior drift) before every integration step, when traced:
    # [B, (T - 1) * substeps, state_dim] and [..., latent_dim].
    trace_y: Tensor | None = None
    trace_f: Tensor | None = None


class NLDModel(nn.Module):
    x_mean: Tensor
    x_std: Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        s, d, c = cfg.state_dim, cfg.latent_dim, cfg.context_out
        self.register_buffer("x_mean", torch.zeros(cfg.obs_dim))
        self.register_buffer("x_std", torch.ones(cfg.obs_dim))
        self.embed = mlp([cfg.obs_dim, *cfg.embed_hidden], act=nn.Softplus, final_act=True)
        embed_dim = cfg.embed_hidden[-1] if cfg.embed_hidden else cfg.obs_dim
        self.gru = nn.GRU(embed_dim, cfg.gru_hidden, batch_first=True)
        self.context = nn.Linear(cfg.gru_hidden, cfg.context_dim)
        self.qy0 = nn.Linear(c, 2 * s)
        self.py0_mean = nn.Parameter(torch.zeros(s))
        self.py0_logstd = nn.Parameter(torch.zeros(s))
        self.control = mlp([s + c, *cfg.control_hidden, d])
        last = self.control[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)  # start from f = 0 (free) or the prior (residual)
        nn.init.zeros_(last.bias)
        # The paper's models have no readout head: their labels come from the posterior path.
        self.readout = None if cfg.architecture == "dynvae" else mlp([c, cfg.decoder_hidden, d])
        # The basin head: logits over up to MAX_BASINS basins, fitted after training; which
        # minima its classes stand for is fitted beside the network (nld.fitted).
        self.basin_head = mlp([c, cfg.decoder_hidden, MAX_BASINS]) if cfg.basin_head else None
        self.decoder = Decoder(cfg)
        self.predictor = Decoder(cfg, in_dim=c) if cfg.predictive_weight > 0 else None
        self.prior = Prior(cfg)

    # -- encoder -----------------------------------------------------------------------
    def standardise(self, x: Tensor) -> Tensor:
        return (x - self.x_mean) / self.x_std

    def encode(self, x: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Contexts [B, T, C] of standardised x [B, T, D], and the GRU state after the last step."""
        out, h_last = self.gru(self.embed(x), h)
        if self.cfg.architecture == "dynvae":
            return torch.cat([self.context(out), x], dim=-1), h_last
        return self.context(out), h_last

    # -- posterior ---------------------------------------------------------------------
    def initial(self, c0: Tensor, eps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """y_0 (the mean, or mean + std * eps) and KL(q(y_0) || p(y_0)) per sequence."""
        mean, log_std = self.qy0(c0).chunk(2, dim=-1)
        log_std = log_std.clamp(-6, 3)
        y0 = mean if eps is None else mean + torch.exp(log_std) * eps
        var_ratio = torch.exp(2 * (log_std - self.py0_logstd))
        diff = (mean - self.py0_mean) * torch.exp(-self.py0_logstd)
        kl0 = 0.5 * (var_ratio + diff * diff - 1 - torch.log(var_ratio)).sum(-1)
        return y0, kl0

    def control_at(self, y: Tensor, c: Tensor) -> Tensor:
        """The network output: f(y, c) when free, u(y, c) when residual (both tanh-bounded),
        f - h when additive."""
        return self._control(y, *self._control_context(c))

    def _control_context(self, c: Tensor) -> tuple[Tensor, Tensor]:
        """The control network's first layer split by input: the weight on the state
        (transposed, [state_dim, H]), and the context's share W_c c + b for contexts c
        [..., C]. A path computes the share for all its steps at once; only the state's part
        is left inside the integration loop."""
        first = self.control[0]
        assert isinstance(first, nn.Linear)
        s = self.cfg.state_dim
        return first.weight[:, :s].T, F.linear(c, first.weight[:, s:], first.bias)

    def _control(self, y: Tensor, w_state: Tensor, share: Tensor) -> Tensor:
        """`control_at` from the split first layer (`_control_context`)."""
        # In the integration loop (y [B, state_dim]) one fused operator instead of two.
        out = torch.addmm(share, y, w_state) if y.dim() == 2 else share + y @ w_state
        for layer in list(self.control)[1:]:
            out = layer(out)
        if self.cfg.posterior == "additive":
            return out
        bound = self.cfg.control_bound
        return bound * torch.tanh(out / bound)

    def advance(
        self,
        y: Tensor,
        c: Tensor,
        noise: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One observation interval of the posterior from y with context c.

        Returns the new state and the path KL of the interval, sum of |u|^2 dt / 2 with
        u = (f - h) / g. `noise` holds standard normal draws [substeps, ..., d], or None for
        the noise-free (mean) path.

        With a free posterior drift f the energy learns only through the KL, as a regression
        of the prior drift onto the posterior's: a fixed target per step. In the residual form
        f = h + g u the KL is |u|^2 / 2 whatever E is, so E learns only by steering the
        posterior paths: measured here, wells then take ~10x more iterations to appear.
        """
        steps: list[tuple[Tensor, Tensor]] = []
        scheme = self._substep()
        kicks = None if noise is None else noise * scheme.kick_scale()
        y, kl = self._drive(y, *self._control_context(c), kicks, scheme, steps)
        if kl is None:
            kl = self.path_kl(*(torch.stack(v, dim=-2) for v in zip(*steps, strict=True)))
        return y, kl

    def _drive(
        self,
        y: Tensor,
        w_state: Tensor,
        share: Tensor,
        kicks: Tensor | None,
        scheme: Euler,
        steps: list[tuple[Tensor, Tensor]],
    ) -> tuple[Tensor, Tensor | None]:
        """The substeps of one observation interval from y, each a step of `scheme` with its
        kick g dW of `kicks` [substeps, ..., d] (None: the mean path): the new state and, for a
        residual or additive posterior, the interval's path KL; appends (y, f) of each substep
        to `steps`. A free posterior's KL (None here) is left to `path_kl` on the collected steps:
        its drift does not need the prior's, so the energy's gradient is evaluated once for the
        whole path instead of once per step (with the context share of `_control_context`,
        training steps 1.4-1.6x faster: bench/RESULTS.md, Training speed)."""
        free = self.cfg.posterior == "free"
        kl = y.new_zeros(y.shape[:-1])
        for k in range(self.cfg.substeps):
            out = self._control(y, w_state, share)
            if free:
                f = out
            else:
                h, g = self.prior.noise_drift(y), scheme.noise
                f, u = (
                    (h + out, out / g) if self.cfg.posterior == "additive" else (h + g * out, out)
                )
                kl = kl + 0.5 * (u * u).sum(-1) * scheme.dt
            steps.append((y, f))
            y = scheme(y, f, None if kicks is None else kicks[k])
        return y, None if free else kl

    def _substep(self) -> Euler:
        """The Euler substep of the posterior's integration, with the prior's constants."""
        return Euler.of(self.prior, self.cfg.dt / self.cfg.substeps)

    def path_kl(self, ys: Tensor, fs: Tensor) -> Tensor:
        """Path KL of a free posterior, sum over steps of |(f - h(y)) / g|^2 dt / 2, for its
        states ys [..., steps, state_dim] and drifts fs [..., steps, d] (with their graphs).
        The prior's shape (E, or the NSDE's MLP) learns elsewhere (`prior_mismatch`): no graph
        to it here."""
        u = (fs - self.prior.noise_drift(ys, shape_grad=False)) / self.prior.diffusion()
        return 0.5 * (u * u).sum(-1).sum(-1) * (self.cfg.dt / self.cfg.substeps)

    def posterior(
        self,
        x: Tensor,
        *,
        sample: bool = True,
        generator: torch.Generator | None = None,
        trace: bool = False,
    ) -> PosteriorPath:
        """The posterior path for raw observations x [B, T, D] (noise-free if not `sample`)."""
        ctx, _ = self.encode(self.standardise(x))
        b, t_len, _ = x.shape
        s, d, n = self.cfg.state_dim, self.cfg.latent_dim, self.cfg.substeps

        def normal(*shape: int) -> Tensor:
            # on the generator's device (the CPU in training), then to the data's
            on = x.device if generator is None else generator.device
            noise = torch.randn(*shape, generator=generator, dtype=x.dtype, device=on)
            return noise.to(x.device)

        y, kl0 = self.initial(ctx[:, 0], normal(b, s) if sample else None)
        path, kl = [y], x.new_zeros(b)
        steps: list[tuple[Tensor, Tensor]] = []
        w_state, shares = self._control_context(ctx)
        scheme = self._substep()
        scale = scheme.kick_scale()
        for t in range(1, t_len):
            kicks = normal(n, b, d) * scale if sample else None
            y, kl_t = self._drive(y, w_state, shares[:, t], kicks, scheme, steps)
            kl = kl if kl_t is None else kl + kl_t
            path.append(y)
        out = PosteriorPath(torch.stack(path, dim=1), ctx, kl, kl0)
        if steps and (trace or self.cfg.posterior == "free"):
            ys, fs = (torch.stack(v, dim=1) for v in zip(*steps, strict=True))
            if self.cfg.posterior == "free":
                out.kl_path = self.path_kl(ys, fs)
            if trace:
                out.trace_y, out.trace_f = ys.detach(), fs.detach()
        return out

    # -- objective ---------------------------------------------------------------------
    def elbo_terms(
        self, x: Tensor, generator: torch.Generator | None = None
    ) -> tuple[dict[str, Tensor], PosteriorPath]:
        """Per-sequence log-likelihood, KL terms and ELBO (each [B], in nats per sequence),
        the readout's mismatch and (with a predictive head) -log p(x_{t+1} | c_t), and the
        traced posterior path they came from."""
        path = self.posterior(x, sample=True, generator=generator, trace=True)
        q = self.prior.position(path.y)
        ll = self.decoder.log_prob(self.standardise(x), q).sum(-1)
        terms = {
            "loglik": ll,
            "kl0": path.kl0,
            "kl_path": path.kl_path,
            "elbo": ll - path.kl0 - path.kl_path,
        }
        terms["readout"] = self.readout_mismatch(path)
        if self.predictor is not None:
            xs = self.standardise(x)
            terms["predictive"] = -self.predictor.log_prob(xs[:, 1:], path.context[:, :-1]).sum(-1)
        return terms, path

    def readout_mismatch(self, path: PosteriorPath) -> Tensor:
        """|r(c_t) - q_{t+L}|^2 per sequence, summed over t, on detached context and path.

        The posterior path of a latent SDE switches wells a few steps after the data do: a
        jump costs KL, so the ELBO-optimal path is late. r(c_t) sees the same data x_{<=t}
        but is trained to say where the path will be L steps later, when it has settled:
        a causal, lag-free estimate of the position, whose basin is the label. It has its
        own parameters and detached inputs, so it leaves the ELBO and the energy untouched.
        """
        lag = self.cfg.readout_lag
        t_len = path.y.shape[1]
        q = self.prior.position(path.y.detach())
        if t_len <= lag or self.readout is None:
            return q.new_zeros(q.shape[0])
        pred = self.readout(path.context[:, : t_len - lag].detach())
        return ((pred - q[:, lag:]) ** 2).sum(-1).sum(-1)

    def read(
        self, x: Tensor, h: Tensor | None = None, *, classes: int = 0
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """r(c_t) [B, T, d], the basin head's log probabilities of its first `classes` classes
        [B, T, classes] (the fitted minima, nld.fitted; None when `classes` is 0; float64), and
        the new GRU state, for raw observations x [B, T, D] continuing GRU state h.

        A model without a readout head (imported from the paper's code) gives the position of
        its noise-free posterior path instead, from the start of x only (no continuation).
        """
        if self.readout is None:
            if h is not None:
                raise ValueError("this model labels by its posterior path: it cannot continue h")
            path = self.posterior(x, sample=False)
            _, h_last = self.encode(self.standardise(x))
            return self.prior.position(path.y), None, h_last
        ctx, h_last = self.encode(self.standardise(x), h)
        head = None
        if self.basin_head is not None and classes > 0:
            logits = self.basin_head(ctx)[..., :classes]
            if logits.device.type == "mps":  # which has no float64
                logits = logits.cpu()
            head = torch.log_softmax(logits.double(), -1)
        return self.readout(ctx), head, h_last

    @torch.no_grad()
    def emissions(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The decoder's Gaussian at each position [K, d], in raw observation space: means
        [K, D] and covariances [K, D, D] (float64), the state chain's starting emissions."""
        q = torch.as_tensor(positions, dtype=torch.float32).to(self.x_std.device)
        mean, cov, std = (
            v.cpu().double() for v in (self.decoder.mean(q), self.decoder.covariance(q), self.x_std)
        )
        means = mean * std + self.x_mean.cpu().double()
        return means.numpy(), (cov * std[:, None] * std[None, :]).numpy()

    def set_clock(self, clock: float) -> None:
        """Set the prior's clock (`ModelConfig.clock`): in the config the checkpoint stores and
        in the prior that generates."""
        self.cfg = ModelConfig.model_validate({**self.cfg.model_dump(), "clock": clock})
        self.prior.clock = self.cfg.clock

    def prior_mismatch(self, trace_y: Tensor, trace_f: Tensor) -> Tensor:
        """Path KL rate |(f - h(y)) / g|^2 / 2 per observation interval, on a detached trace.

        With a free posterior drift this is where the prior's drift parameters enter the
        ELBO: a regression of h onto the posterior drift at the posterior's own states.
        """
        u = (trace_f - self.prior.noise_drift(trace_y)) / self.prior.diffusion()
        return 0.5 * (u * u).sum(-1).mean() * self.cfg.dt
