"""Importing the paper's checkpoints: weights, settings read as text, reference landscapes."""

import pickle

import numpy as np
import pytest
import torch

from nld import checkpoint
from nld.analysis import find_minima, model_energy, second_order, zeroth_order
from nld.dynvae import convert, read_settings
from nld.errors import CheckpointError, ConfigError
from nld.fitted import Fitted
from nld.inference import readout_path
from tests.conftest import shared_file

# From ../shared/reference/dynvae/README.md: minima, (b) zeroth order, (c) second order.
REFERENCE = {
    ("symmetric_overdamped", 1): (
        [[1.4187, 0.5219, -1.3535], [-1.4336, 0.3601, -0.2933], [0.6131, -1.2955, 1.3453]],
        [-1.6626, -1.6582, -1.5845],
        [0.3397, 0.3387, 0.3217],
        [0.3356, 0.3454, 0.3190],
    ),
    ("symmetric_underdamped", 2): (
        [[0.8648, -0.5704], [0.5859, 0.3535], [-0.1205, -0.2768]],
        [-75.9895, -75.7965, -75.7664],
        [0.3785, 0.3152, 0.3063],
        [0.3247, 0.3443, 0.3310],
    ),
    ("asymmetric_underdamped", 0): (
        [[0.4147, -0.9369, -0.0290], [1.9764, 0.0415, -0.0702], [0.3318, 0.9108, -0.0638]],
        [-25.4639, -25.2907, -23.9041],
        [0.4859, 0.4096, 0.1044],
        [0.5022, 0.4016, 0.0961],
    ),
}


def _convert(name, i):
    return convert(
        shared_file(f"reference/dynvae/{name}-model-{i}.pth"),
        shared_file(f"reference/dynvae/{name}-settings-{i}.txt"),
    )


@pytest.mark.parametrize(("name", "i"), list(REFERENCE))
def test_imported_landscape_matches_reference(name, i):
    positions, energies, zeroth, second = REFERENCE[(name, i)]
    model = _convert(name, i)
    energy = model_energy(model)
    gen = torch.Generator().manual_seed(0)
    d = model.cfg.latent_dim
    minima = find_minima(energy, 4 * torch.rand(256, d, generator=gen, dtype=torch.float64) - 2)
    assert len(minima) == 3
    np.testing.assert_allclose([m.position for m in minima], positions, atol=2e-4)
    np.testing.assert_allclose([m.energy for m in minima], energies, atol=2e-4)
    beta = float(model.prior.beta().detach())
    np.testing.assert_allclose(zeroth_order(minima, beta), zeroth, atol=1e-3)
    np.testing.assert_allclose(second_order(minima, beta), second, atol=1e-3)


def test_imported_model_round_trips_and_encodes(tmp_path):
    model = _convert("symmetric_underdamped", 2)
    checkpoint.save(tmp_path, model, Fitted.none(model.cfg))
    again, fitted = checkpoint.load(tmp_path)
    assert fitted.classes == 0 and fitted.chain is None
    x = torch.randn(2, 7, 15)
    np.testing.assert_array_equal(readout_path(model, x), readout_path(again, x))
    assert readout_path(again, x).shape == (2, 7, 2)


def test_settings_are_read_as_text_never_evaluated(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "s.txt").write_text(
        "{\n"
        '    "data_size": 15,\n    "context_size": 8,\n    "hidden_size": 16,\n'
        '    "latent_size": 2,\n'
        f'    "evil": __import__("pathlib").Path("{marker}").touch(),\n'
        '    "control_init": config["fractional_init"](0.2),\n'
        "}\n"
    )
    s = read_settings(tmp_path / "s.txt")
    assert s["latent_size"] == 2 and "evil" not in s and not marker.exists()
    (tmp_path / "bad.txt").write_text("{}\n")
    with pytest.raises(ConfigError, match="latent_size"):
        read_settings(tmp_path / "bad.txt")


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_refused(tmp_path, capsys):
    (tmp_path / "m.pth").write_bytes(pickle.dumps({"x": _Payload()}))
    (tmp_path / "s.txt").write_text(
        '{\n"data_size": 15,\n"context_size": 8,\n"hidden_size": 16,\n"latent_size": 2,\n}\n'
    )
    with pytest.raises(CheckpointError, match="tensor-only"):
        convert(tmp_path / "m.pth", tmp_path / "s.txt")
    assert "code ran" not in capsys.readouterr().out


def test_dynamics_follow_the_flag_the_papers_code_reads(tmp_path):
    """Three released settings files say "dynamics": "overdamped" beside "overdamped": False
    (and hold underdamped weights): the paper's code reads only the flag, and so do we."""
    settings = shared_file("reference/dynvae/symmetric_underdamped-settings-2.txt").read_text()
    assert '"overdamped": False' in settings
    contradicted = settings.replace("{", '{\n    "dynamics": "overdamped",', 1)
    (tmp_path / "s.txt").write_text(contradicted)
    model_file = shared_file("reference/dynvae/symmetric_underdamped-model-2.pth")
    with pytest.warns(UserWarning, match="imported as underdamped, as the paper's code reads"):
        model = convert(model_file, tmp_path / "s.txt")
    assert model.cfg.dynamics == "underdamped"
    # Settings that say overdamped, on underdamped weights: refused, naming what is there.
    (tmp_path / "o.txt").write_text(settings.replace('"overdamped": False', '"overdamped": True'))
    with pytest.raises(CheckpointError, match=r"but control_network\.\* weights of underdamped"):
        convert(model_file, tmp_path / "o.txt")
