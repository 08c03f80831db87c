"""Models loaded from a directory, each with its landscape analysed once at load.

A model's version is the first 16 hex digits of the SHA-256 of its weights file: sessions
remember it, and a landscape is computed once per version.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nld import checkpoint
from nld.errors import NLDError
from nld.inference import LABELS_FROM_POSITION, class_source, head_order
from nld.landscape import Analysis, analyze
from nld.model import NLDModel

log = logging.getLogger("nld.service")


@dataclass
class LoadedModel:
    name: str
    version: str
    model: NLDModel
    analysis: Analysis | None  # None for an NSDE baseline (no energy)
    meta: dict[str, Any]
    card: str | None  # MODEL_CARD.md, if the directory has one
    load_seconds: float
    # The basin head's classes as indices of the analysis' minima (nld.inference.head_order);
    # None: labels are the basins of the readout positions.
    head_order: np.ndarray | None = None

    @property
    def labels_from(self) -> str | None:
        if self.analysis is None:
            return None
        return LABELS_FROM_POSITION if self.head_order is None else class_source(self.model)

    @property
    def streams(self) -> bool:
        """Whether chunks can continue a stream (a readout head on the GRU context)."""
        return self.model.readout is not None and self.analysis is not None


@dataclass
class Registry:
    models: dict[str, LoadedModel] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why it did not load
    default: str | None = None
    ready: bool = False


def version_of(run_dir: Path) -> str:
    h = hashlib.sha256()
    with (run_dir / checkpoint.WEIGHTS).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def load_model(run_dir: Path, *, chains: int, steps: int) -> LoadedModel:
    t0 = time.perf_counter()
    model = checkpoint.load(run_dir)
    _, meta = checkpoint.read_config(run_dir)
    analysis = None
    if model.cfg.has_energy:
        analysis = analyze(model, None, n_chains=chains, n_steps=steps, burn_in=steps // 4)
    card = run_dir / "MODEL_CARD.md"
    return LoadedModel(
        name=run_dir.name,
        version=version_of(run_dir),
        model=model,
        analysis=analysis,
        meta=meta,
        card=card.read_text() if card.is_file() else None,
        load_seconds=time.perf_counter() - t0,
        head_order=None if analysis is None else head_order(model, analysis.minima),
    )


def _model_dirs(models_dir: Path) -> list[Path]:
    return sorted(
        p for p in models_dir.iterdir() if p.is_dir() and (p / checkpoint.CONFIG).exists()
    )


def _try_load(run_dir: Path, chains: int, steps: int) -> LoadedModel | str:
    """The loaded model, or why it could not be loaded."""
    try:
        lm = load_model(run_dir, chains=chains, steps=steps)
    except (NLDError, ValueError, OSError) as e:
        log.error("model %s not loaded: %s", run_dir.name, e)
        return str(e)
    log.info("loaded model %s version %s", run_dir.name, lm.version)
    return lm


def load_all(models_dir: Path, *, chains: int, steps: int) -> Registry:
    """Every checkpoint directory under `models_dir`; one that fails is reported, not fatal."""
    reg = Registry()
    if not models_dir.is_dir():
        reg.failed["*"] = f"{models_dir}: no such models directory"
        return reg
    for run_dir in _model_dirs(models_dir):
        got = _try_load(run_dir, chains, steps)
        if isinstance(got, str):
            reg.failed[run_dir.name] = got
        else:
            reg.models[run_dir.name] = got
    return reg


@dataclass
class ReloadReport:
    loaded: dict[str, str] = field(default_factory=dict)  # name -> new version
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why (old version kept)


def reload_all(reg: Registry, models_dir: Path, *, chains: int, steps: int) -> ReloadReport:
    """Bring `reg` up to date with `models_dir`, in place, one model at a time: a changed
    model that loads replaces the old one, one that fails leaves the old one serving."""
    report = ReloadReport()
    if not models_dir.is_dir():
        report.failed["*"] = f"{models_dir}: no such models directory (nothing changed)"
        return report
    dirs = {p.name: p for p in _model_dirs(models_dir)}
    models = dict(reg.models)  # swapped in whole at the end: readers never see a half-update
    for name in sorted(set(models) - set(dirs)):
        del models[name]
        report.removed.append(name)
    for name, run_dir in dirs.items():
        old = models.get(name)
        try:
            unchanged = old is not None and version_of(run_dir) == old.version
        except OSError:
            unchanged = False
        if unchanged:
            report.unchanged.append(name)
            continue
        got = _try_load(run_dir, chains, steps)
        if isinstance(got, str):
            kept = f"; still serving version {old.version}" if old else ""
            report.failed[name] = got + kept
        else:
            models[name] = got
            report.loaded[name] = got.version
    reg.models = models
    reg.failed = dict(report.failed)
    return report
