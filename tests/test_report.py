"""`nld report` end to end on tiny runs: tables, figures, progress, runs side by side."""

import os

import numpy as np
import pytest

from nld.data import load_spec, sample
from nld.fitting import trainer
from nld.fitting.config import load_config
from training import report
from training.baseline import hmm_baseline


def tiny_train(cfg, data, out, **kw):
    """The smoke preset for 20 iterations in place of the experiment's (module level, so that
    the report's worker processes can be handed it)."""
    smoke = load_config("smoke")
    smoke.train.iterations = 20
    smoke.train.seed = cfg.train.seed
    smoke.train.threads = cfg.train.threads
    return trainer.train(smoke, data, out, **kw)


def _tables(text: str) -> list[list[str]]:
    """The markdown tables of a text: runs of consecutive lines that start with '|'."""
    tables: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    return [t for t in tables if t]


@pytest.mark.slow
def test_report_trains_side_by_side_writes_tables_and_figures(tmp_path, monkeypatch):
    spec = load_spec("exp1")
    small = sample(spec, 24, 60, seed=0), sample(spec, 8, 80, seed=1)
    monkeypatch.setattr(report, "_data", lambda experiment, out: small)

    path = report.run_report(
        1,
        2,
        tmp_path / "rep",
        runs=tmp_path / "runs",
        dynamics=("overdamped",),
        train_fn=tiny_train,
        workers=2,
    )
    text = path.read_text()
    for heading in ("Occupancy l1 error", "coordinates sorted", "Segmentation accuracy"):
        assert heading in text
    assert "92.6 +- 1.6" in text  # the paper's number beside ours
    assert "online filter" in text and "hmmlearn" in text
    floor = abs(small[0].state_frequencies(3) - spec.stationary()).sum()
    assert f"own state frequencies (the floor a fit to them meets) | | | | | {floor:.3f} |" in text
    assert "against the training split's state frequencies" in text
    for table in _tables(text):  # header, delimiter and rows alike, or a table does not render
        assert len({line.count("|") for line in table}) == 1, table
    assert (tmp_path / "rep" / "figures" / "exp1-overdamped" / "landscape.png").exists()
    for seed in (0, 1):
        assert (tmp_path / "rep" / "analyses" / f"exp1-overdamped-s{seed}.json").exists()
        # Each Ray task trained its own seed, on its share of the cores.
        _, meta = report.checkpoint.read_config(tmp_path / "runs" / f"exp1-overdamped-s{seed}")
        assert meta["finished"] and meta["train"]["train"]["seed"] == seed
        assert meta["train"]["train"]["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
    # A second report reuses the finished runs and trains only the missing one, in-process
    # (where the calls can be counted).
    calls = []
    report.run_report(
        1,
        3,
        tmp_path / "rep2",
        runs=tmp_path / "runs",
        dynamics=("overdamped",),
        train_fn=lambda *a, **k: calls.append(a) or tiny_train(*a, **k),
        use_ray=False,
    )
    assert [str(c[2]) for c in calls] == [str(tmp_path / "runs" / "exp1-overdamped-s2")]


def test_occupancy_is_set_against_other_frequencies_through_the_runs_matching():
    run = {
        "occupancy": {"zeroth": [0.5, 0.3, 0.2], "quadrature": None},
        "segmentation": {"mapping": {"0": 2, "1": 0, "2": 1}},  # basin -> state, as in JSON
    }
    assert report._l1_to(run, "zeroth", np.array([0.3, 0.2, 0.5])) == pytest.approx(0.0)
    assert report._l1_to(run, "zeroth", np.array([0.25, 0.25, 0.5])) == pytest.approx(0.1)
    assert report._l1_to(run, "quadrature", np.array([0.25, 0.25, 0.5])) is None


def test_exits_past_a_well_are_those_between_wells_no_saddle_joins():
    chain = {"saddles": [{"between": [0, 1]}, {"between": [1, 2]}]}
    run = {**chain, "transitions_simulated": [[0, 3, 1], [3, 0, 2], [1, 2, 0]]}
    assert report._passes(run) == pytest.approx(2 / 12)  # 0 <-> 2, past well 1
    assert report._passes({**chain, "transitions_simulated": [[0] * 3] * 3}) is None
    assert report._passes(chain) is None  # an analysis from before the counts


def test_hmm_baseline_keeps_the_likeliest_of_its_starts():
    pytest.importorskip("hmmlearn")
    from nld.data.hmm import random_spec

    spec = random_spec(3, 2, dwell=10, seed=5, separation=2.0)
    train, test = sample(spec, 20, 60, seed=1), sample(spec, 10, 60, seed=2)
    truth = spec.stationary()
    single = [hmm_baseline(train, test, 3, truth, seed=s) for s in range(3)]
    best = hmm_baseline(train, test, 3, truth, seed=0, starts=3)
    assert best is not None and all(r is not None for r in single)
    liks = [r["train_loglik_per_step"] for r in single if r is not None]
    assert len(set(round(v, 6) for v in liks)) > 1  # the starts land in different optima
    assert best["train_loglik_per_step"] == pytest.approx(max(liks), abs=1e-9)
    kept = single[liks.index(max(liks))]
    assert kept is not None and best["accuracy_mean"] == kept["accuracy_mean"]
