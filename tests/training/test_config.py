import pytest

from nld.errors import ConfigError
from training.config import load_config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[train]\niterashuns = 3\n", "iterashuns"),
        ("[model]\nlatent_dimm = 3\n", "latent_dimm"),
        ("[model]\ndynamics = 'sideways'\n", "dynamics"),
        ("[train]\nlr = -1\n", "lr"),
        ("[train\n", "not valid TOML"),
        ("[model]\ndynamics = 'overdamped'\nlearn_mass = true\n", "underdamped dynamics only"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, message):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path=p)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="available"):
        load_config("nope")
