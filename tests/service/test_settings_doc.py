"""The README's table of NLD_ settings stays true: every setting, with its default."""

from pathlib import Path

from service.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_with_its_default():
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[2].strip(" `")
        for line in README.splitlines()
        if line.startswith("| `NLD_")
    }
    for name, field in Settings.model_fields.items():
        key = f"NLD_{name.upper()}"
        assert key in rows, f"{key} is missing from the README"
        if name != "models_dir":
            expected = "unset" if field.default is None else str(field.default)
            assert rows[key] == expected, f"{key}: README says {rows[key]}, code {expected}"
