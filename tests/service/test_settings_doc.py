"""The settings table of docs/guides/serving.md stays true: every NLD_ setting, with its
default (numbers may carry underscores, as Python writes them)."""

from pathlib import Path

from service.config import Settings

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "guides" / "serving.md").read_text()


def test_every_setting_is_documented_with_its_default():
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[2].strip(" `").replace("_", "")
        for line in PAGE.splitlines()
        if line.startswith("| `NLD_")
    }
    for name, field in Settings.model_fields.items():
        key = f"NLD_{name.upper()}"
        assert key in rows, f"{key} is missing from docs/guides/serving.md"
        if name != "models_dir":
            expected = "unset" if field.default is None else str(field.default).lower()
            assert rows[key] == expected, f"{key}: the docs say {rows[key]}, the code {expected}"
