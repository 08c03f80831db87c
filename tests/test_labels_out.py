"""Labels out: the table of runs, and the files the tables are written to."""

import numpy as np
import pytest

from nld.data.recordings import Recordings
from nld.errors import DataError
from nld.labels_out import segment_table, step_table, write_steps


def test_runs_of_one_state_are_rows_with_their_times_and_probabilities():
    recs = Recordings(
        [np.zeros((6, 1)), np.zeros((2, 1))],
        "list",
        times=[np.arange(6) * 10, np.arange(2) * 10],
        ids=["a", "b"],
    )
    labels = [np.array([0, 0, 1, 1, 1, 0]), np.array([1, 1])]
    proba = [np.tile([[0.8, 0.2]], (6, 1)), np.tile([[0.4, 0.6]], (2, 1))]
    runs = segment_table(recs, labels, proba)
    assert runs["sequence"].tolist() == ["a", "a", "a", "b"]
    assert runs["start"].tolist() == [0, 2, 5, 0] and runs["end"].tolist() == [2, 5, 6, 2]
    assert runs["state"].tolist() == [0, 1, 0, 1] and runs["steps"].tolist() == [2, 3, 1, 2]
    assert runs["start_time"].tolist() == [0, 20, 50, 0]
    assert runs["end_time"].tolist() == [10, 40, 50, 10]
    np.testing.assert_allclose(runs["mean_probability"], [0.8, 0.2, 0.8, 0.6])


def test_tables_are_written_by_their_suffix(tmp_path):
    recs = Recordings([np.zeros((3, 1))], "one")
    table = step_table(recs, [np.array([0, 1, 1])], [np.zeros((3, 2))])
    write_steps(tmp_path / "s.npz", table)
    with np.load(tmp_path / "s.npz") as f:
        assert f["label"].tolist() == [0, 1, 1] and "z_1" in f.files
    with pytest.raises(DataError, match=r"labels are written as \.csv, \.tsv, \.parquet, \.npz"):
        write_steps(tmp_path / "s.xlsx", table)


def test_each_label_carries_its_regime_where_the_model_has_them():
    recs = Recordings([np.zeros((5, 1))], "one")
    labels = [np.array([0, 2, 2, 1, 0])]
    of_state = np.array([1, 0, 1])  # states 0 and 2 form one regime
    steps = step_table(recs, labels, [np.zeros((5, 2))], regime_of_state=of_state)
    assert list(steps)[:4] == ["sequence", "step", "label", "regime"]
    assert steps["regime"].tolist() == [1, 1, 1, 0, 1]
    runs = segment_table(recs, labels, regime_of_state=of_state)
    assert runs["state"].tolist() == [0, 2, 1, 0] and runs["regime"].tolist() == [1, 1, 0, 1]
    assert "regime" not in step_table(recs, labels, [np.zeros((5, 2))])
