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


def test_kl_weight_ramps_to_kl_final():
    from training.config import load_config
    from training.trainer import _kl_weight

    t = load_config("smoke").train
    assert _kl_weight(t, 0) == t.kl_start and _kl_weight(t, 10**6) == 1.0
    t.kl_final = 0.5
    assert _kl_weight(t, t.kl_warmup // 2) < 0.5 and _kl_weight(t, 10**6) == 0.5


def test_overrides_are_validated_like_a_preset():
    from training.config import with_overrides

    cfg = with_overrides(load_config("default"), {"model.substeps": 2, "train.seed": 3})
    assert cfg.model["substeps"] == 2 and cfg.train.seed == 3
    assert load_config("default").model.get("substeps") is None  # the preset is untouched
    for bad in ({"model.substepz": 2}, {"train.iterations": -1}, {"substeps": 2}):
        with pytest.raises(ConfigError):
            with_overrides(load_config("default"), bad)
