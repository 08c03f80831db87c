"""The stage runner: order, resume, invalidation, re-runs; and the stages as listed."""

import pytest
from pydantic import BaseModel, ConfigDict, Field

from nld import checkpoint
from nld.data import save
from nld.errors import ConfigError
from nld.fitting import pipeline
from nld.fitting.config import load_config, with_overrides
from nld.fitting.pipeline import STAGES, Context, pending, rerun, run_stages
from nld.fitting.record import StageRecord
from nld.fitting.trainer import train
from training.cli import main


class Ran(StageRecord):
    run: int
    changes: bool

    def changed(self) -> bool:
        return self.changes

    def describe(self) -> list[str]:
        return [f"run {self.run}"]


class Step:
    """A stage for the runner's own tests: it records how often it ran and changes the model
    when told to."""

    in_candidates = True
    Settings = BaseModel
    Record = Ran

    def __init__(self, name: str, *, changes: bool = True, applies: bool = True) -> None:
        self.name = self.key = name
        self.changes, self.applicable, self.runs = changes, applies, 0

    def applies(self, ctx: Context) -> str | None:
        return None if self.applicable else "not here"

    def run(self, ctx: Context) -> Ran:
        self.runs += 1
        ctx.records.setdefault("order", []).append(self.name)
        return Ran(run=self.runs, changes=self.changes)


def _ctx(records=None) -> Context:
    return Context(model=None, fitted=None, data=None, settings=None, records=records or {})  # type: ignore[arg-type]


def test_stages_run_in_order_once_and_save_after_each():
    a, b, c = Step("a"), Step("b", applies=False), Step("c")
    ctx, saves = _ctx(), []
    assert pending(ctx, [a, b, c]) == [a, c]
    assert run_stages(ctx, [a, b, c], save=lambda: saves.append(1)) == ["a", "c"]
    assert ctx.records["order"] == ["a", "c"] and "b" not in ctx.records and len(saves) == 2
    assert run_stages(ctx, [a, b, c]) == []  # recorded: a resumed run does not repeat them
    assert pending(ctx, [a, b, c]) == []


def test_a_stage_that_changed_the_model_runs_the_later_recorded_ones_again():
    """As a run from before a stage existed, resumed: the new stage runs, and after it the
    later stages whose records described the old model."""
    new, later = Step("new"), Step("later")
    ctx = _ctx({"later": {"changes": True, "run": 0}})
    assert run_stages(ctx, [new, later]) == ["new", "later"]
    unchanged, later2 = Step("unchanged", changes=False), Step("later2")
    ctx = _ctx({"later2": {"changes": True, "run": 0}})
    assert run_stages(ctx, [unchanged, later2]) == ["unchanged"]  # nothing to redo


def test_rerun_runs_the_stage_and_what_it_invalidates():
    a, b, c = Step("a"), Step("b"), Step("c")
    stages = [a, b, c]
    ctx = _ctx()
    run_stages(ctx, stages)
    assert rerun(ctx, "b", stages=stages) == ["b", "c"]
    quiet = Step("b", changes=False)
    assert rerun(ctx, "b", stages=[a, quiet, c]) == ["b"]  # it changed nothing: c stays
    with pytest.raises(ValueError, match="stage x does not apply: not here"):
        rerun(ctx, "x", stages=[Step("x", applies=False)])


def test_the_pipeline_lists_each_stage_once_with_the_protocol():
    names = [s.name for s in STAGES]
    assert names == ["calibrate", "basin-head", "separate", "depths", "clock"]
    assert len({s.key for s in STAGES}) == len(STAGES)
    protocol = ("name", "key", "in_candidates", "Settings", "Record", "applies", "run")
    for stage in STAGES:
        assert all(hasattr(stage, attr) for attr in protocol), stage
        assert issubclass(stage.Record, StageRecord) and stage.Settings().model_dump() is not None
    # The restart candidates run the stages before the separation; the kept one the rest.
    assert [s.in_candidates for s in STAGES] == [True, True, False, False, False]


class Tally:
    """A stage with settings, added the way a new stage is: its class (here) and its place in
    STAGES (patched here). It counts the energy's weights above a threshold."""

    name = key = "tally"
    in_candidates = False

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        threshold: float = Field(0.0, ge=0)

    class Record(StageRecord):
        threshold: float
        above: int

        def changed(self) -> bool:
            return False

        def describe(self) -> list[str]:
            return [f"tally: {self.above} weights above {self.threshold}"]

    def applies(self, ctx: Context) -> str | None:
        return None if ctx.model.prior.energy is not None else "the model has no energy"

    def run(self, ctx: Context) -> StageRecord:
        s = ctx.section(self.name)
        weights = ctx.model.prior.energy.parameters()
        above = sum(int((w.abs() > s.threshold).sum()) for w in weights)
        return self.Record(threshold=s.threshold, above=above)


def test_a_new_stage_is_its_class_and_its_place_in_the_list(monkeypatch, tmp_path, easy_data):
    monkeypatch.setattr(pipeline, "STAGES", (*pipeline.STAGES, Tally()))
    quick = {
        "train.iterations": 10,
        "stages.calibrate.iterations": 0,
        "stages.tally.threshold": 0.1,
    }
    cfg = with_overrides(load_config("smoke"), quick)
    with pytest.raises(ConfigError, match=r"\[stages.tally\] threshold: .* greater than"):
        with_overrides(cfg, {"stages.tally.threshold": -1})
    train(cfg, easy_data[0], tmp_path / "run", progress_bar=False)
    save(tmp_path / "d.npz", easy_data[0])
    meta = checkpoint.read_config(tmp_path / "run")[1]
    assert meta["train"]["stages"]["tally"] == {"threshold": 0.1}  # its settings, recorded
    assert meta["tally"]["threshold"] == 0.1 and meta["tally"]["above"] > 0  # its record
    # ... and `nld stage tally` runs it again on the checkpoint.
    code = main(
        [
            "stage",
            "tally",
            str(tmp_path / "run"),
            "--data",
            str(tmp_path / "d.npz"),
            "--set",
            "stages.tally.threshold=1e9",
            "--threads",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    assert checkpoint.read_config(tmp_path / "run")[1]["tally"]["above"] == 0
