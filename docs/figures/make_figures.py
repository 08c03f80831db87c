"""The documentation's figures, made by the commands the pages show. From the repository root:

    python docs/figures/make_figures.py            # about 20 minutes on 2 cores (the training)

- `landscape.png` (README, home page): `nld plot` of the shipped model `models/exp2-underdamped`
  with test recordings drawn from its spec, labelled online, on its landscape;
- `tutorial/*.png`: the tutorial's own run, `nld train` with the `default` preset on the exp1
  table under `runs/tutorial/` (reused when it is there), then `nld plot` on the test table.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "docs" / "figures"
WORK = ROOT / "runs" / "tutorial"
TABLE = ["--sequence-column", "sequence", "--states-column", "state"]
TUTORIAL = ("landscape.png", "segmentation.png", "paths.png", "surface.png")


def nld(*argv: str) -> None:
    from training.cli import main

    print("$ nld " + " ".join(argv), flush=True)
    if main(list(argv)) != 0:
        sys.exit(f"nld {argv[0]} failed")


def main() -> None:
    exp2 = WORK / "exp2"
    if not (exp2 / "test.npz").is_file():
        nld("data", "generate", "--spec", "exp2", "--out", str(exp2))
    with tempfile.TemporaryDirectory() as tmp:
        shipped = str(ROOT / "models" / "exp2-underdamped")
        nld("plot", shipped, "--data", str(exp2 / "test.npz"), "--out", tmp)
        shutil.copy(Path(tmp) / "landscape.png", HERE / "landscape.png")
    data, run = WORK / "data", WORK / "mine"
    if not (data / "test.csv").is_file():
        nld("data", "generate", "--spec", "exp1", "--out", str(data), "--format", "csv")
    if not (run / "analysis.safetensors").is_file():
        resume = ["--resume"] if (run / "candidates").exists() else []
        nld("train", "--data", str(data / "train.csv"), *TABLE, "--out", str(run), *resume)
    out = HERE / "tutorial"
    with tempfile.TemporaryDirectory() as tmp:
        nld("plot", str(run), "--data", str(data / "test.csv"), *TABLE, "--out", tmp)
        out.mkdir(exist_ok=True)
        for name in TUTORIAL:
            shutil.copy(Path(tmp) / name, out / name)
    print(f"wrote {HERE / 'landscape.png'} and {', '.join(TUTORIAL)} in {out}")


if __name__ == "__main__":
    main()
