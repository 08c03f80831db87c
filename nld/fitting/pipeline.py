"""The stages that follow the training loop, listed once in order, and the one runner that
runs them.

    STAGES = (Calibrate, BasinHead, Separate, Depths, Clock)

Every stage has the same small protocol (`Stage`):
- `name`, as `nld stage NAME` and the config's `[stages.NAME]` take it, and `key`, where its
  record lives in the checkpoint's `meta`;
- `Settings`: the pydantic model of its `[stages.NAME]` section (`ctx.section(name)`);
- `Record`: the pydantic model of its record (`nld.fitting.record.StageRecord`), which says
  whether the run changed the model (a stage that changed nothing leaves the records of the
  stages after it valid) and describes what it did in a few lines;
- `in_candidates`: whether each restart candidate runs it (`nld.fitting.restarts`); the later
  stages run once, on the candidate kept;
- `applies(ctx)`: None, or why the stage does not run on this model and these settings;
- `run(ctx)`: does it, in place, and returns its record.

`run_stages` owns the rest: it skips the stages a run has already recorded (so a resumed run
goes on where it stopped), saves after each stage, and, after a stage that changed the model,
runs again the later stages that had a record (their records described the old model).
`rerun` re-runs one stage of a finished checkpoint and the stages after it that it
invalidates (`nld stage`). Adding a stage means writing its class (with its Settings) and
listing it here: the config, the runner, the restarts and `nld stage` follow the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from nld.data import Dataset
from nld.fitted import Fitted
from nld.fitting import basin_head, calibrate, clock, depths, separate
from nld.fitting.config import TrainSettings
from nld.fitting.record import StageRecord
from nld.model import NLDModel


@dataclass
class Context:
    """What a stage works on: the network and what was fitted beside it (both changed in
    place), the training data, the run's settings (its seed included), the records of the
    stages so far, and the stages' settings by name (TrainConfig.stages; a stage without an
    entry takes its defaults)."""

    model: NLDModel
    fitted: Fitted
    data: Dataset
    settings: TrainSettings
    records: dict[str, Any] = field(default_factory=dict)
    progress_bar: bool = True
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def section(self, name: str) -> Any:
        """The settings of the stage `name`: its Settings, validated."""
        return stage_named(name).Settings.model_validate(self.stages.get(name, {}))


class Stage(Protocol):
    name: str
    key: str
    in_candidates: bool

    @property
    def Settings(self) -> type[BaseModel]: ...  # its [stages.NAME] section

    @property
    def Record(self) -> type[StageRecord]: ...  # what run returns

    def applies(self, ctx: Context) -> str | None: ...

    def run(self, ctx: Context) -> StageRecord: ...


def describe(stage: Stage, record: dict[str, Any]) -> list[str]:
    """What a stage's stored record (its entry in `meta`) says it did."""
    return stage.Record.model_validate(record).describe()


class Calibrate:
    """Fit the wells' depths to the time the posterior spends in each (nld.fitting.calibrate)."""

    name = "calibrate"
    key = "calibration"
    in_candidates = True
    Settings = calibrate.Settings
    Record = calibrate.Calibration

    def applies(self, ctx: Context) -> str | None:
        if ctx.section(self.name).iterations == 0:
            return "stages.calibrate.iterations is 0"
        if not calibrate.applies(ctx.model):
            return "needs an energy model of latent dimension <= 3"
        return None

    def run(self, ctx: Context) -> StageRecord:
        n, seed = ctx.section(self.name).iterations, ctx.settings.seed
        return calibrate.calibrate(ctx.model, ctx.data, n, seed, ctx.progress_bar)


class BasinHead:
    """Fit the basin head to the final landscape, and the state chain over its minima with
    its split test (nld.fitting.basin_head)."""

    name = "basin-head"
    key = "basin_head"
    in_candidates = True
    Settings = basin_head.Settings
    Record = basin_head.BasinHeadFit

    def applies(self, ctx: Context) -> str | None:
        return None if basin_head.applies(ctx.model) else "the model has no basin head"

    def run(self, ctx: Context) -> StageRecord:
        s = ctx.section(self.name)
        return basin_head.fit_basin_head(
            ctx.model,
            ctx.fitted,
            ctx.data,
            s.iterations,
            ctx.settings.seed,
            ctx.progress_bar,
            chain=s.state_chain,
        )


class Separate:
    """Pull apart the states the split test says one well holds (nld.fitting.separate). Its
    rounds fit the calibration and the basin head again: their records are replaced by those
    of the last round kept."""

    name = "separate"
    key = "separation"
    in_candidates = False
    Settings = separate.Settings
    Record = separate.Separation

    def applies(self, ctx: Context) -> str | None:
        if separate.applies(ctx.model, ctx.section(self.name), ctx.section("basin-head")):
            return None
        return (
            "needs stages.separate.rounds > 0, stages.basin-head.state_chain, and an energy "
            "model with a basin head and latent dimension <= 3"
        )

    def run(self, ctx: Context) -> StageRecord:
        sections = (ctx.section(self.name), ctx.section("calibrate"), ctx.section("basin-head"))
        record, head, calibration = separate.separate(
            ctx.model,
            ctx.fitted,
            ctx.data,
            ctx.settings,
            sections,
            ctx.records.get("basin_head"),
            ctx.records.get("calibration"),
            ctx.progress_bar,
        )
        ctx.records["basin_head"], ctx.records["calibration"] = head, calibration
        return separate.Separation.model_validate(record)


class Depths:
    """Refit the wells' depths to the state chain's stationary distribution
    (nld.fitting.depths); where it cannot, its record says why."""

    name = "depths"
    key = "depths"
    in_candidates = False
    Settings = depths.Settings
    Record = depths.DepthsFit

    def applies(self, ctx: Context) -> str | None:
        if ctx.section(self.name).iterations == 0:
            return "stages.depths.iterations is 0"
        return None if ctx.model.cfg.has_energy else "the model has no energy"

    def run(self, ctx: Context) -> StageRecord:
        n, seed = ctx.section(self.name).iterations, ctx.settings.seed
        return depths.fit_depths(ctx.model, ctx.fitted, ctx.data, n, seed, ctx.progress_bar)


class Clock:
    """Set the prior's clock to the state chain's dwell times (nld.fitting.clock); where it
    cannot, its record says why."""

    name = "clock"
    key = "clock"
    in_candidates = False
    Settings = clock.Settings
    Record = clock.ClockFit

    def applies(self, ctx: Context) -> str | None:
        if not ctx.section(self.name).enabled:
            return "stages.clock.enabled is false"
        return None if ctx.model.cfg.has_energy else "the model has no energy"

    def run(self, ctx: Context) -> StageRecord:
        return clock.fit_clock(ctx.model, ctx.fitted, ctx.data, ctx.settings.seed)


STAGES: tuple[Stage, ...] = (Calibrate(), BasinHead(), Separate(), Depths(), Clock())


def record_keys() -> list[str]:
    """Where the stages' records live in a checkpoint's `meta`."""
    return [s.key for s in STAGES]


def stage_named(name: str, stages: Sequence[Stage] | None = None) -> Stage:
    """The stage `name` (of STAGES by default); ValueError naming the stages if none is."""
    stages = STAGES if stages is None else stages
    for stage in stages:
        if stage.name == name:
            return stage
    raise ValueError(f"no stage {name!r}; the stages are {', '.join(s.name for s in stages)}")


def pending(ctx: Context, stages: Sequence[Stage] | None = None) -> list[Stage]:
    """The stages of `stages` (default STAGES) that apply and have no record yet, in order."""
    stages = STAGES if stages is None else stages
    return [s for s in stages if ctx.records.get(s.key) is None and s.applies(ctx) is None]


def run_stages(
    ctx: Context,
    stages: Sequence[Stage] | None = None,
    save: Callable[[], None] = lambda: None,
) -> list[str]:
    """Run, in order, each of `stages` that applies and has no record in `ctx.records`;
    after one that changed the model, the later ones run again even where they had a record.
    `save()` after each stage. Returns the names of the stages run."""
    stages = STAGES if stages is None else stages
    ran: list[str] = []
    stale = False
    for stage in stages:
        if (ctx.records.get(stage.key) is not None and not stale) or stage.applies(ctx):
            continue
        record = stage.run(ctx)
        ctx.records[stage.key] = record.model_dump()
        ran.append(stage.name)
        stale = stale or record.changed()
        save()
    return ran


def rerun(
    ctx: Context,
    name: str,
    save: Callable[[], None] = lambda: None,
    stages: Sequence[Stage] | None = None,
) -> list[str]:
    """Run the stage `name` of `stages` again on a trained model, and after it the later
    stages whose records it invalidated (those that had a record, when it changed the
    model). Raises ValueError with the stage's reason where it does not apply."""
    stages = STAGES if stages is None else stages
    stage = stage_named(name, stages)
    why = stage.applies(ctx)
    if why is not None:
        raise ValueError(f"stage {name} does not apply: {why}")
    ctx.records[stage.key] = None
    later = stages[list(stages).index(stage) + 1 :]
    ran = run_stages(ctx, (stage,), save)
    if stage.Record.model_validate(ctx.records[stage.key]).changed():
        recorded = [s for s in later if ctx.records.get(s.key) is not None]
        for s in recorded:
            ctx.records[s.key] = None
        ran += run_stages(ctx, recorded, save)
    return ran
