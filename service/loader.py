"""Loading one model for the service: its checkpoint, then its landscape analysis, read from
the file stored beside it when one belongs to these weights and this version of the analysis
(`nld.analysis_file`), else computed once and stored for next time.

Where the analysis is stored: beside the model (`RUN_DIR/analysis.safetensors`, as
`nld analyze` writes it) if that directory is writable, else in the cache directory
(`NLD_CACHE_DIR`, keyed by the weights' SHA-256), as for a models directory mounted read-only.
Processes that start together (workers, replicas on one disk) take a lock per weights file,
so one of them analyses and the others read what it stored.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from nld import analysis_file, checkpoint
from nld.chain_split import split_warnings, stored_split
from nld.device import resolve_device
from nld.errors import CheckpointError
from nld.inference import head_order
from nld.landscape import Analysis, analyze
from nld.model import NLDModel
from service.config import Settings
from service.loaded import LoadedModel
from service.registry import Loading

log = logging.getLogger("nld.service")


def configure(settings: Settings) -> torch.device:
    """Set torch's threads; the device models compute on (NLDError if torch cannot use it)."""
    torch.set_num_threads(settings.threads)
    return resolve_device(settings.device)


def cache_dir(settings: Settings) -> Path:
    if settings.cache_dir is not None:
        return settings.cache_dir
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nld"


def _places(run_dir: Path, settings: Settings, sha256: str) -> list[Path]:
    """Where this model's stored analysis may be, in the order they are tried."""
    return [
        run_dir / analysis_file.FILE,
        cache_dir(settings) / "analyses" / f"{sha256}.safetensors",
    ]


def _read_stored(places: list[Path], model: NLDModel, sha256: str) -> Analysis | None:
    for path in places:
        if not path.is_file():
            continue
        try:
            analysis = analysis_file.load(path, model, sha256)
        except (analysis_file.StaleAnalysis, CheckpointError) as e:
            log.info("%s: computing it again", e)
            continue
        log.info("analysis read from %s", path)
        return analysis
    return None


@contextmanager
def _lock(path: Path, waiting: Callable[[], None]) -> Iterator[None]:
    """An exclusive lock on `path` between processes (none if it cannot be created);
    `waiting()` is called if another process holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
    except OSError as e:
        log.warning("no lock at %s (%s): processes may analyse the same model twice", path, e)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _store(analysis: Analysis, places: list[Path], sha256: str) -> None:
    """Store the analysis at the first place that takes it (and log where, or why nowhere)."""
    errors = []
    for path in places:
        try:
            analysis_file.save(path, analysis, sha256)
            log.info("analysis stored in %s", path)
            return
        except OSError as e:
            errors.append(f"{path.parent}: {e.strerror or e}")
    log.warning("the analysis could not be stored (%s): it is computed at every start", errors)


def stored_or_computed(
    run_dir: Path,
    model: NLDModel,
    sha256: str,
    settings: Settings,
    status: Callable[[Loading], None],
) -> tuple[Analysis, str]:
    """The model's analysis, and where it came from: "stored" or "computed"."""
    places = _places(run_dir, settings, sha256)
    status(Loading("reading its stored analysis"))
    found = _read_stored(places, model, sha256)
    if found is not None:
        return found, "stored"
    other = Loading("waiting for another process analysing the same weights", retry_after=5)
    with _lock(places[1].with_suffix(".lock"), lambda: status(other)):
        found = _read_stored(places, model, sha256)  # that process may have stored it
        if found is not None:
            return found, "stored"
        status(Loading("analysing its landscape (no stored analysis for its weights)", 5))
        t0 = time.perf_counter()
        analysis = analyze(
            model,
            None,
            n_chains=settings.analysis_chains,
            n_steps=settings.analysis_steps,
            burn_in=settings.analysis_steps // 4,
        )
        log.info("%s analysed in %.1f s", run_dir.name, time.perf_counter() - t0)
        _store(analysis, places, sha256)
        return analysis, "computed"


def load_model(
    run_dir: Path, settings: Settings, status: Callable[[Loading], None] = lambda s: None
) -> LoadedModel:
    t0 = time.perf_counter()
    status(Loading("reading its checkpoint"))
    model, fitted, sha256 = checkpoint.load_with_sha256(run_dir)
    _, meta = checkpoint.read_config(run_dir)
    analysis, source = None, "none"  # an NSDE baseline has no energy
    if model.cfg.has_energy:
        analysis, source = stored_or_computed(run_dir, model, sha256, settings, status)
    model.to(resolve_device(settings.device))  # analysed on the CPU, computes there
    card = run_dir / "MODEL_CARD.md"
    lm = LoadedModel(
        name=run_dir.name,
        sha256=sha256,
        model=model,
        fitted=fitted,
        analysis=analysis,
        meta=meta,
        card=card.read_text() if card.is_file() else None,
        load_seconds=time.perf_counter() - t0,
        analysis_source=source,
        head_order=None if analysis is None else head_order(fitted, analysis.minima),
        warnings=[]
        if analysis is None
        else [*analysis.warnings, *split_warnings(stored_split(meta))],
    )
    if analysis is not None:  # the landscape's answers, ready before the first request
        lm.minima_response, lm.transitions_response  # noqa: B018
    return lm
