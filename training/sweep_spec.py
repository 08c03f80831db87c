"""The sweep file of `nld sweep`: which training runs to make, and what each may use.

```toml
out = "sweeps/exp1"            # run directories and the results table (relative to this file)
test = "data/test.npz"         # optional: recordings with known states, each run scored on it

[base]                         # every run's settings
preset = "quick"               # or config = "my-preset.toml"
data = "data/train.npz"        # .npz, .npy, or a .csv / .tsv / .parquet table
"train.iterations" = 1500      # any setting `nld train --set` takes

[grid]                         # every combination of these values is a run
seed = [0, 1, 2]
"model.latent_dim" = [2, 3]

[[runs]]                       # and runs listed one by one (each over [base])
preset = "default"
seed = 7

[resources]                    # what each run asks of the scheduler (Ray)
num_cpus = 1
num_gpus = 0

[table]                        # how tables (data and test) are read: nld train's options
sequence_column = "sequence"   # as `nld data generate --format csv` writes them
states_column = "state"
```

A run's directory is named by its preset (or config), seed and a digest of everything that
makes it (settings, the data file's content): a run already finished there is reused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nld.errors import ConfigError
from nld.fitting.config import TrainConfig, load_config, read_toml, with_overrides
from nld.io import file_sha256

RUN_KEYS = ("preset", "config", "data", "seed")  # beside SECTION.KEY settings
SECTIONS = ("model", "train", "stages")


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_cpus: float = Field(1, gt=0, description="CPU cores per run (its torch threads)")
    num_gpus: float = Field(0, ge=0, description="GPUs per run (Ray schedules them)")


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_column: str | None = None
    columns: list[str] | None = None
    sequence_column: str | None = None
    fill: Literal["ffill", "drop"] | None = None
    states_column: str | None = None


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out: str = Field(description="where the runs and the results go (relative to the file)")
    test: str | None = Field(None, description="recordings with known states to score runs on")
    base: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    runs: list[dict[str, Any]] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    table: Table = Field(default_factory=Table)


@dataclass(frozen=True)
class Run:
    """One training run of a sweep: its settings as the file gives them, the config they make
    and where it goes."""

    name: str
    given: dict[str, Any]  # preset/config, data, seed and SECTION.KEY settings
    config: TrainConfig
    data: Path
    run_dir: Path


@dataclass(frozen=True)
class Sweep:
    path: Path  # the sweep file
    out: Path
    test: Path | None
    runs: list[Run]
    resources: Resources
    table: Table


def read_sweep(path: str | Path) -> Sweep:
    """The runs of a sweep file; ConfigError naming the problem (a key, a value, a file)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such sweep file")
    spec = read_toml(p.read_text(), str(p), SweepFile)
    root = p.resolve().parent
    combos = [dict(zip(spec.grid, values, strict=True)) for values in _product(spec.grid, p)]
    listed = (combos if spec.grid else []) + spec.runs or [{}]  # [{}]: the base alone
    digests: dict[Path, str] = {}
    runs = []
    for i, extra in enumerate(listed):
        given = {**spec.base, **extra}
        where = f"{p}: run {i + 1} ({_show(extra) or 'the base'})"
        runs.append(_run(given, root, spec, digests, where))
    names = [r.name for r in runs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{p}: the same run is listed twice: {', '.join(twice)}")
    test = None if spec.test is None else _file(root, spec.test, f"{p}: test")
    return Sweep(p, root / spec.out, test, runs, spec.resources, spec.table)


def _product(grid: dict[str, list[Any]], path: Path) -> list[tuple[Any, ...]]:
    for key, values in grid.items():
        if not values:
            raise ConfigError(f"{path}: grid.{key} lists no values")
    return list(itertools.product(*grid.values()))


def _show(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in settings.items())


def _file(root: Path, name: str, where: str) -> Path:
    path = (root / name).resolve()
    if not path.is_file():
        raise ConfigError(f"{where}: no such file {name!r} (looked for {path})")
    return path


def _run(
    given: dict[str, Any], root: Path, spec: SweepFile, digests: dict[Path, str], where: str
) -> Run:
    unknown = [k for k in given if k not in RUN_KEYS and k.split(".")[0] not in SECTIONS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (a run takes preset, config, data, seed and "
            "SECTION.KEY settings: model.*, train.*, stages.STAGE.*)"
        )
    if "data" not in given:
        raise ConfigError(f"{where}: no data file (set data in [base] or in the run)")
    data = _file(root, str(given["data"]), where)
    config = None if given.get("config") is None else _file(root, given["config"], where)
    settings = {k: v for k, v in given.items() if k not in RUN_KEYS}
    if given.get("seed") is not None:
        settings["train.seed"] = given["seed"]
    try:
        cfg = with_overrides(load_config(given.get("preset"), config), settings)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    if data not in digests:
        digests[data] = file_sha256(data)
    identity = {
        "config": cfg.model_dump(exclude={"train": {"threads"}}),
        "data": digests[data],
        "table": spec.table.model_dump(),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    name = f"{cfg.name}-s{cfg.train.seed}-{digest}"
    return Run(name, given, cfg, data, root / spec.out / "runs" / name)
