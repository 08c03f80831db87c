"""Import checkpoints trained by the paper's own code (github.com/vlamen/dynvae).

Their state dicts are loaded with `torch.load(..., weights_only=True)` (tensors only, no code
runs); their settings files look like Python dicts but contain expressions, so only the
lines whose value is a plain literal are read, with `ast.literal_eval` on that value alone.
The weights map one to one onto an `NLDModel` with `architecture = "dynvae"`:

    energy_landscape.*          -> prior.energy.*       (the residual energy network)
    _beta                       -> prior.beta.raw       (beta = softplus(raw) in both)
    gamma (overdamped buffer)   -> prior.gamma.raw      (softplus^-1 of the values)
    _gamma, _i_mass             -> prior.gamma.raw, prior.mass.raw  (m = 1 / softplus(_i_mass))
    encoder.gru.*, encoder.lin  -> gru.*, context       (context = [lin(gru(x)), x])
    qz0_net, pz0_mean/logstd    -> qy0, py0_mean/logstd
    f_net.* / control_network.* -> control.*            (posterior drift = prior drift + net)
    projector                   -> decoder.mean         (fixed noise_std)
"""

from __future__ import annotations

import ast
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from nld.errors import CheckpointError, ConfigError
from nld.model import ModelConfig, NLDModel

_LINE = re.compile(r'^\s*"(?P<key>\w+)"\s*:\s*(?P<value>.+?),?\s*$')


def read_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The literal-valued top-level entries of a dynvae settings file (never evaluated)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such settings file")
    out: dict[str, Any] = {}
    for line in p.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        try:
            out[m["key"]] = ast.literal_eval(m["value"])
        except (ValueError, SyntaxError):
            continue  # an expression (config["..."](...)) or a nested block: not needed
    for key in ("latent_size", "hidden_size", "context_size", "data_size"):
        if not isinstance(out.get(key), int):
            raise ConfigError(f"{p}: no integer {key!r}; is this a dynvae settings file?")
    return out


def _inv_softplus(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


def _load_state(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such model file")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{p}: not a loadable tensor-only state dict ({first})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{p}: expected a state dict of tensors")
    return state


CONTROL = {"overdamped": "f_net", "underdamped": "control_network"}


def dynamics_of(
    settings: dict[str, Any], state: dict[str, torch.Tensor], where: object
) -> tuple[str, list[str]]:
    """The dynamics of a dynvae checkpoint as the paper's code builds it, and what in the
    settings disagrees with it.

    The paper's code reads the boolean `overdamped` (utils/common_components.py); some of its
    settings files also carry a `dynamics` string that it never reads, and in three of the
    released ones the two disagree (`"dynamics": "overdamped"` with `"overdamped": False`,
    and underdamped weights). `dynamics` counts only where `overdamped` is absent."""
    notes = []
    if isinstance(settings.get("overdamped"), bool):
        dynamics = "overdamped" if settings["overdamped"] else "underdamped"
        said = settings.get("dynamics")
        if said is not None and said != dynamics:
            notes.append(
                f'{where}: says "dynamics": {said!r} and "overdamped": '
                f"{settings['overdamped']}; imported as {dynamics}, as the paper's code reads "
                f"`overdamped` (its weights are {dynamics}: {CONTROL[dynamics]}.*)"
            )
    else:
        dynamics = settings.get("dynamics", "overdamped")
    if dynamics not in CONTROL:
        raise ConfigError(f"{where}: unknown dynamics {dynamics!r}")
    if f"{CONTROL[dynamics]}.0.weight" not in state:
        other = next(d for d in CONTROL if d != dynamics)
        found = (
            f", but {CONTROL[other]}.* weights of {other} dynamics"
            if (f"{CONTROL[other]}.0.weight" in state)
            else ""
        )
        raise CheckpointError(
            f"{where}: the settings say {dynamics}, and there are no {CONTROL[dynamics]}.* "
            f"weights for {dynamics} dynamics{found}"
        )
    return dynamics, notes


def convert(model_path: str | os.PathLike[str], settings_path: str | os.PathLike[str]) -> NLDModel:
    """An `NLDModel` holding the weights of a dynvae checkpoint. Where its settings disagree
    with themselves or with its weights, a `UserWarning` says so."""
    settings = read_settings(settings_path)
    state = _load_state(model_path)
    dynamics, notes = dynamics_of(settings, state, settings_path)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    control = CONTROL[dynamics]
    try:
        control_hidden = [state[f"{control}.{i}.weight"].shape[0] for i in (0, 2)]
    except KeyError:
        raise CheckpointError(
            f"{model_path}: no {control}.* weights for {dynamics} dynamics"
        ) from None
    cfg = ModelConfig(
        architecture="dynvae",
        dynamics=dynamics,
        obs_dim=settings["data_size"],
        latent_dim=settings["latent_size"],
        embed_hidden=[],
        gru_hidden=settings["hidden_size"],
        context_dim=settings["context_size"],
        posterior="additive",
        control_hidden=control_hidden,
        decoder="linear",
        decoder_noise="fixed",
        noise_std=float(settings.get("noise_std", 0.5)),
        dt=float(settings.get("dt", 0.1)),
        per_dim_friction=True,
        learn_beta=True,
        learn_gamma=dynamics == "underdamped",
        learn_mass=dynamics == "underdamped",
    )
    model = NLDModel(cfg)
    d = cfg.latent_dim
    mapped: dict[str, torch.Tensor] = {}
    try:
        for k, v in state.items():
            for src, dst in (
                ("energy_landscape.", "prior.energy."),
                ("encoder.gru.", "gru."),
                ("encoder.lin.", "context."),
                ("qz0_net.", "qy0."),
                (f"{control}.", "control."),
                ("projector.", "decoder.mean."),
            ):
                if k.startswith(src):
                    mapped[dst + k[len(src) :]] = v
        mapped["prior.beta.raw"] = state["_beta"].reshape(())
        mapped["py0_mean"] = state["pz0_mean"].reshape(-1)
        mapped["py0_logstd"] = state["pz0_logstd"].reshape(-1)
        if dynamics == "overdamped":
            mapped["prior.gamma.raw"] = _inv_softplus(state["gamma"].reshape(d).double()).float()
            mapped["prior.mass.raw"] = model.prior.mass.raw.detach()
        else:
            mapped["prior.gamma.raw"] = state["_gamma"].reshape(d)
            inv_mass = F.softplus(state["_i_mass"].reshape(d).double())
            mapped["prior.mass.raw"] = _inv_softplus(1 / inv_mass).float()
    except (KeyError, RuntimeError) as e:
        raise CheckpointError(f"{model_path}: missing or misshapen dynvae weight ({e})") from None
    mapped["x_mean"] = torch.zeros(cfg.obs_dim)
    mapped["x_std"] = torch.ones(cfg.obs_dim)
    mapped["decoder.fixed_std"] = torch.tensor(cfg.noise_std)
    try:
        model.load_state_dict(mapped, strict=True)
    except RuntimeError as e:
        raise CheckpointError(
            f"{model_path}: weights do not fit the settings' sizes: {str(e).splitlines()[-1]}"
        ) from None
    return model.eval()
