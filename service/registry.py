"""The models a process serves, and their loading in the background.

The service answers from its first second: `begin` lists the models directory at once (so
the service knows which models are coming and which one is the default), then
`load_in_background` loads them one at a time in a daemon thread. A model serves as soon as
its stored analysis is read (seconds) or, where none belongs to its weights, computed and
stored (its analysis time: `service.loader`); meanwhile requests for it answer 503 with
Retry-After and what is being done. torch and the analysis are imported by that thread, so
nothing heavy stands between the start of the process and its first answer.

A model's version is the first 16 hex digits of the SHA-256 of its weights file: sessions
remember it, and a landscape is analysed once per version.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from service.config import Settings

if TYPE_CHECKING:
    from service.loaded import LoadedModel

log = logging.getLogger("nld.service")
CONFIG = "config.json"  # what makes a directory a checkpoint (nld.checkpoint.CONFIG)


@dataclass(frozen=True)
class Loading:
    """What is being done to a model that does not serve yet."""

    what: str
    since: float = field(default_factory=time.monotonic)
    retry_after: int = 1  # seconds a client should wait before asking again

    def describe(self) -> str:
        return f"{self.what} ({time.monotonic() - self.since:.0f} s so far)"


@dataclass
class Registry:
    models: dict[str, LoadedModel] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why it did not load
    loading: dict[str, Loading] = field(default_factory=dict)  # name -> what is being done
    default: str | None = None
    started: bool = False  # the models directory has been listed

    @property
    def ready(self) -> bool:
        """Every model of the directory has been loaded (or has failed)."""
        return self.started and not self.loading


def model_dirs(models_dir: Path) -> list[Path]:
    return sorted(p for p in models_dir.iterdir() if p.is_dir() and (p / CONFIG).exists())


def pick_default(reg: Registry, settings: Settings) -> None:
    """The configured default if it serves or is coming, else the first model by name."""
    names = sorted({*reg.models, *reg.loading})
    configured = settings.default_model
    if configured is not None and configured not in names:
        reg.failed.setdefault(configured, "the configured default is not loaded")
    reg.default = configured if configured in names else (names[0] if names else None)


def begin(reg: Registry, settings: Settings) -> list[Path]:
    """List the models directory: every model in it is `loading` from now on."""
    if not settings.models_dir.is_dir():
        reg.failed["*"] = f"{settings.models_dir}: no such models directory"
        dirs = []
    else:
        dirs = model_dirs(settings.models_dir)
    reg.loading = {p.name: Loading("waiting for the models before it") for p in dirs}
    pick_default(reg, settings)
    reg.started = True
    return dirs


def try_load(
    run_dir: Path, settings: Settings, status: Callable[[Loading], None]
) -> LoadedModel | str:
    """The loaded model, or why it could not be loaded (runs in a worker thread)."""
    from nld.errors import NLDError
    from service.loader import load_model

    try:
        lm = load_model(run_dir, settings, status)
    except (NLDError, ValueError, OSError) as e:
        log.error("model %s not loaded: %s", run_dir.name, e)
        return str(e)
    except Exception as e:  # a bad model directory must never stop the others loading
        log.exception("model %s not loaded", run_dir.name)
        return f"unexpected {type(e).__name__} while loading: {e}"
    log.info(
        "model %s (version %s) serves, loaded in %.1f s (analysis: %s)",
        run_dir.name,
        lm.version,
        lm.load_seconds,
        lm.analysis_source,
    )
    return lm


async def load_in_background(reg: Registry, settings: Settings, dirs: list[Path]) -> None:
    """Load `dirs` one after another in a daemon thread (so that stopping the service never
    waits for an analysis); each model serves as soon as it is loaded."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finish() -> None:  # on the event loop; `done` is cancelled if the service stopped
        if not done.done():
            done.set_result(None)

    # The registry is changed on the event loop only, never from the loading thread.
    def report(name: str, s: Loading) -> None:
        if name in reg.loading:
            reg.loading = {**reg.loading, name: s}

    def install(name: str, got: LoadedModel | str) -> None:
        if isinstance(got, str):
            reg.failed = {**reg.failed, name: got}
        else:
            reg.models = {**reg.models, name: got}
        reg.loading = {k: v for k, v in reg.loading.items() if k != name}
        pick_default(reg, settings)

    def post(fn: Callable[..., None], *args: object) -> bool:
        """Run fn(*args) on the event loop; False once the loop is closed (stopped)."""
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            return False
        return not done.done()

    def work() -> None:
        from nld.errors import NLDError

        try:
            from service.loader import configure

            configure(settings)
        except Exception as e:  # a device torch cannot use, torch missing or broken: every
            # model fails, and says why (a traceback in the log for what nld did not foresee)
            if isinstance(e, NLDError):
                log.error("cannot load models: %s", e)
            else:
                log.exception("cannot load models")
            for run_dir in dirs:
                post(install, run_dir.name, f"the service cannot load models: {e}")
            post(finish)
            return
        loaded = []
        for run_dir in dirs:

            def status(s: Loading, name: str = run_dir.name) -> None:
                post(report, name, s)

            got = try_load(run_dir, settings, status)
            if not post(install, run_dir.name, got):
                return  # the service stopped: load nothing more
            if not isinstance(got, str) and got.analysis is not None:
                loaded.append(got)
        post(finish)
        for lm in loaded:  # the landscape page's first picture, drawn before it is asked for
            try:
                lm.landscape_png  # noqa: B018
            except Exception:
                log.exception("the landscape image of %s failed (it is drawn when asked)", lm.name)

    threading.Thread(target=work, name="nld-model-loader", daemon=True).start()
    await done
    failed = "; ".join(f"{name}: {why}" for name, why in reg.failed.items())
    log.info(
        "ready, serving %s%s",
        ", ".join(sorted(reg.models)) or "no model",
        f" (failed: {failed})" if failed else "",
    )


@dataclass
class ReloadReport:
    loaded: dict[str, str] = field(default_factory=dict)  # name -> new version
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why (old version kept)


def reload_all(reg: Registry, settings: Settings) -> ReloadReport:
    """Bring `reg` up to date with the models directory, in place, one model at a time: a
    changed model that loads replaces the old one, one that fails leaves the old one
    serving (runs in a worker thread)."""
    from nld.checkpoint import weights_sha256
    from nld.errors import NLDError

    report = ReloadReport()
    models_dir = settings.models_dir
    if not models_dir.is_dir():
        report.failed["*"] = f"{models_dir}: no such models directory (nothing changed)"
        return report
    dirs = {p.name: p for p in model_dirs(models_dir)}
    models = dict(reg.models)  # swapped in whole at the end: readers never see a half-update
    for name in sorted(set(models) - set(dirs)):
        del models[name]
        report.removed.append(name)
    for name, run_dir in dirs.items():
        old = models.get(name)
        try:
            unchanged = old is not None and weights_sha256(run_dir) == old.sha256
        except NLDError:
            unchanged = False
        if unchanged:
            report.unchanged.append(name)
            continue
        got = try_load(run_dir, settings, lambda s: None)
        if isinstance(got, str):
            kept = f"; still serving version {old.version}" if old else ""
            report.failed[name] = got + kept
        else:
            models[name] = got
            report.loaded[name] = got.version
    reg.models = models
    reg.failed = dict(report.failed)
    return report
