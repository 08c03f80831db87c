"""`nld report` end to end on tiny runs: tables, figures, progress."""

import pytest

from nld.data import load_spec, sample
from training import report


@pytest.mark.slow
def test_report_writes_tables_and_figures(tmp_path, monkeypatch):
    spec = load_spec("exp1")
    small = sample(spec, 24, 60, seed=0), sample(spec, 8, 80, seed=1)
    monkeypatch.setattr(report, "_data", lambda experiment, out: small)

    from training import trainer
    from training.config import load_config

    def tiny_train(cfg, data, out, **kw):
        smoke = load_config("smoke")
        smoke.train.iterations = 20
        smoke.train.seed = cfg.train.seed
        return trainer.train(smoke, data, out, **kw)

    path = report.run_report(
        1,
        1,
        tmp_path / "rep",
        runs=tmp_path / "runs",
        dynamics=("overdamped",),
        train_fn=tiny_train,
    )
    text = path.read_text()
    for heading in ("Occupancy l1 error", "coordinates sorted", "Segmentation accuracy"):
        assert heading in text
    assert "92.6 +- 1.6" in text  # the paper's number beside ours
    assert "online filter" in text and "hmmlearn" in text
    assert (tmp_path / "rep" / "figures" / "exp1-overdamped" / "landscape.png").exists()
    assert (tmp_path / "rep" / "analyses" / "exp1-overdamped-s0.json").exists()
    # A second report reuses the finished run instead of training again.
    calls = []
    report.run_report(
        1,
        1,
        tmp_path / "rep2",
        runs=tmp_path / "runs",
        dynamics=("overdamped",),
        train_fn=lambda *a, **k: calls.append(a),
    )
    assert calls == []
