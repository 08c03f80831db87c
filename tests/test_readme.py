"""The README's Python quickstart runs as written (from a directory that has the shipped
model), and does what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(text: str, section: str) -> list[str]:
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_the_python_quickstart_runs_as_written(tmp_path, monkeypatch):
    (block,) = _python_blocks((ROOT / "README.md").read_text(), "Quickstart")
    (tmp_path / "models").symlink_to(ROOT / "models")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    test, model = scope["test"], scope["model"]
    assert scope["labels"].shape == test.x.shape[:2] == scope["smoothed"].shape
    assert scope["proba"].shape == (*test.x.shape[:2], model.n_states_)
    np.testing.assert_array_equal(scope["proba"].argmax(-1), scope["labels"])
    assert (tmp_path / "runs" / "mine" / "model.safetensors").is_file()
