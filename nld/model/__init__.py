"""Latent-SDE VAEs with Neural Langevin Dynamics (or generic NSDE) priors."""

from nld.model.config import ModelConfig as ModelConfig
from nld.model.energy import MLPEnergy as MLPEnergy
from nld.model.prior import Prior as Prior
from nld.model.sde import step as step
from nld.model.vae import NLDModel as NLDModel
from nld.model.vae import PosteriorPath as PosteriorPath
