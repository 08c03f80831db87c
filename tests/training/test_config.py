import json
from pathlib import Path

import pytest

from nld.errors import ConfigError
from nld.fitting.config import load_config

ROOT = Path(__file__).resolve().parents[2]


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
    from nld.fitting.config import load_config
    from nld.fitting.trainer import _kl_weight

    t = load_config("smoke").train
    assert _kl_weight(t, 0) == t.kl_start and _kl_weight(t, 10**6) == 1.0
    t.kl_final = 0.5
    assert _kl_weight(t, t.kl_warmup // 2) < 0.5 and _kl_weight(t, 10**6) == 0.5


def test_overrides_are_validated_like_a_preset():
    from nld.fitting.config import with_overrides

    cfg = with_overrides(load_config("default"), {"model.substeps": 2, "train.seed": 3})
    assert cfg.model["substeps"] == 2 and cfg.train.seed == 3
    assert load_config("default").model.get("substeps") is None  # the preset is untouched
    for bad in ({"model.substepz": 2}, {"train.iterations": -1}, {"substeps": 2}):
        with pytest.raises(ConfigError):
            with_overrides(load_config("default"), bad)


# `meta.train` of a checkpoint written before the stages had their own sections (the shipped
# models/exp2-underdamped, for one).
OLD = {
    "name": "exp2-underdamped",
    "model": {"dynamics": "underdamped"},
    "train": {
        "iterations": 1500,
        "calibrate_iterations": 300,
        "basin_head_iterations": 1500,
        "state_chain": True,
        "separate_rounds": 0,
        "depths_iterations": 0,
        "clock": False,
        "seed": 0,
    },
}


def test_a_config_from_before_the_stage_sections_still_loads():
    from nld.fitting.config import TrainConfig

    cfg = TrainConfig.model_validate(OLD)
    assert cfg.stages["calibrate"] == {"iterations": 300}
    assert cfg.stages["basin-head"] == {"iterations": 1500, "state_chain": True}
    assert cfg.stages["separate"] == {"rounds": 0, "iterations": 1000}
    assert cfg.stages["depths"] == {"iterations": 0} and cfg.stages["clock"] == {"enabled": False}
    assert "calibrate_iterations" not in cfg.train.model_dump()
    # ... and so do the older names in overrides, and the shipped model's own record.
    from nld.fitting.config import with_overrides

    assert with_overrides(cfg, {"train.depths_iterations": 5}).stages["depths"]["iterations"] == 5
    shipped = json.loads((ROOT / "models/exp2-underdamped/config.json").read_text())
    assert TrainConfig.model_validate(shipped["meta"]["train"]).stages["calibrate"]["iterations"]


def test_stage_settings_are_checked_by_the_stage():
    from nld.fitting.config import with_overrides

    cfg = load_config("smoke")
    with pytest.raises(ConfigError, match=r"\[stages.separate\] rounds: .*greater than or equal"):
        with_overrides(cfg, {"stages.separate.rounds": -1})
    with pytest.raises(ConfigError, match="no stage calibration; the stages are calibrate, "):
        with_overrides(cfg, {"stages.calibration.iterations": 1})
    with pytest.raises(ConfigError, match=r"stages.STAGE.NAME"):
        with_overrides(cfg, {"stages.calibrate": 1})


def test_an_old_key_beside_its_new_one_must_agree():
    from nld.fitting.config import TrainConfig

    doc = {"train": {"calibrate_iterations": 5}, "stages": {"calibrate": {"iterations": 7}}}
    with pytest.raises(ValueError, match=r"give stages\.calibrate\.iterations only"):
        TrainConfig.model_validate(doc)
    doc["stages"]["calibrate"]["iterations"] = 5
    assert TrainConfig.model_validate(doc).stages["calibrate"] == {"iterations": 5}
