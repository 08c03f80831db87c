"""The hyperparameters that rebuild a model: stored as JSON beside its weights."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Dynamics = Literal["overdamped", "underdamped", "nsde"]


class ModelConfig(BaseModel):
    """Architecture of a latent-SDE VAE with an NLD (or generic NSDE) prior."""

    model_config = ConfigDict(extra="forbid")

    dynamics: Dynamics = "overdamped"
    architecture: Literal["nld", "dynvae"] = Field(
        "nld",
        description="dynvae: the paper's own networks, for imported checkpoints (residual "
        "energy; GRU on raw x with x appended to the context; no readout head, labels from the "
        "noise-free posterior path)",
    )
    obs_dim: int = Field(gt=0, description="D, the dimension of one observation")
    latent_dim: int = Field(2, gt=0, le=16, description="d; underdamped state is 2d (q, p)")
    embed_hidden: list[int] = Field(
        default_factory=lambda: [64],
        description="per-step MLP before the GRU (quadratic features of x need one); [] = none",
    )
    gru_hidden: int = Field(64, gt=0)
    context_dim: int = Field(32, gt=0)
    energy_hidden: list[int] = Field(default_factory=lambda: [64, 64])
    energy_activation: Literal["tanh", "softplus"] = "softplus"
    drift_hidden: list[int] = Field(
        default_factory=lambda: [64, 64], description="NSDE prior drift MLP"
    )
    readout_lag: int = Field(
        2,
        ge=0,
        description="labels are basins of r(c_t), a head trained to predict the posterior "
        "position this many steps later (see NLDModel.readout_mismatch)",
    )
    basin_head: bool = Field(
        False,
        description="a classifier of the basin the posterior will be in (readout_lag steps "
        "later) from the context, fitted once training is done (nld.fitting.basin_head): labels "
        "are its most probable basin instead of the basin of the readout position",
    )
    predictive_weight: float = Field(
        0.0,
        ge=0,
        description="weight of an auxiliary loss on the encoder: -log p(x_{t+1} | c_t) from a "
        "Gaussian head on the context (0: none, the ELBO alone shapes the encoder)",
    )
    posterior: Literal["free", "residual", "additive"] = Field(
        "free",
        description="free: the posterior drift of the noisy components is its own bounded network "
        "f(y, c); residual: prior drift + g u(y, c) with u bounded; additive: prior drift + an "
        "unbounded network, the paper's code (see NLDModel.advance)",
    )
    control_hidden: list[int] = Field(default_factory=lambda: [64])
    control_bound: float = Field(
        20.0, gt=0, description="tanh bound per component of f (free) or of u (residual)"
    )
    decoder: Literal["linear", "mlp"] = "linear"
    decoder_hidden: int = Field(64, gt=0)
    decoder_noise: Literal["fixed", "learned", "full"] = "full"
    decoder_rank: int | None = Field(
        None,
        gt=0,
        description="r: with decoder_noise = full and more than 2 r observed dimensions, the "
        "covariance is a diagonal plus a rank-r factor of q (cost ~ D r per step instead of "
        "D^2; None: always a full Cholesky factor)",
    )
    noise_std: float = Field(0.5, gt=0, description="decoder std when decoder_noise = fixed")
    dt: float = Field(0.1, gt=0, description="SDE time between two observations")
    substeps: int = Field(1, ge=1, description="integration steps between two observations")
    beta: float = Field(1.0, gt=0, description="inverse temperature (initial value if learned)")
    learn_beta: bool = True
    gamma: float = Field(1.0, gt=0, description="friction (initial value if learned)")
    learn_gamma: bool = False
    mass: float = Field(1.0, gt=0, description="underdamped mass (initial value if learned)")
    learn_mass: bool = False
    per_dim_friction: bool = Field(
        False, description="one gamma and one mass per latent dimension (imported models)"
    )
    clock: float = Field(
        1.0,
        gt=0,
        description="how many times faster the prior runs when it generates (sampling, rates, "
        "dwell times) than in the ELBO: friction gamma / clock and mass m / clock^2, the same "
        "landscape on another time scale; fitted after training (nld.fitting.clock), 1: none",
    )
    confinement: float = Field(
        0.05,
        gt=0,
        description="initial weight of the |q|^2 term that makes exp(-beta E) normalisable",
    )

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.dynamics != "underdamped" and self.learn_mass:
            raise ValueError("learn_mass applies to underdamped dynamics only")
        if self.architecture == "dynvae" and self.dynamics == "nsde":
            raise ValueError("the dynvae architecture is an energy model: use over/underdamped")
        if self.clock != 1 and self.dynamics == "nsde":
            raise ValueError("the clock applies to energy models (gamma, m) only")
        if self.basin_head and (self.dynamics == "nsde" or self.architecture == "dynvae"):
            raise ValueError("basin_head needs an energy (basins) and a readout (nld architecture)")
        return self

    @property
    def state_dim(self) -> int:
        """Dimension of the SDE state: d, or 2d (position and momentum) when underdamped."""
        return 2 * self.latent_dim if self.dynamics == "underdamped" else self.latent_dim

    @property
    def context_out(self) -> int:
        """Width of the context the posterior sees (dynvae appends x to it)."""
        return self.context_dim + (self.obs_dim if self.architecture == "dynvae" else 0)

    @property
    def has_energy(self) -> bool:
        return self.dynamics != "nsde"
