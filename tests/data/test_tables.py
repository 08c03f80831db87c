"""Tables in (CSV, TSV, Parquet): channels, time stamps, sequences, and errors that name the
problem and where it is."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nld.data.recordings import as_recordings, training_set
from nld.data.tables import TableOptions
from nld.errors import DataError

CSV = """time,a,b,rec
2026-01-01T00:00:00,1,0.5,x
2026-01-01T00:00:01,2,1.5,x
2026-01-01T00:00:02,3,2.5,y
2026-01-01T00:00:03,4,3.5,y
2026-01-01T00:00:04,5,4.5,y
"""


def _file(tmp_path, text, name="rec.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_csv_is_one_recording_with_its_time_stamps(tmp_path):
    recs = as_recordings(_file(tmp_path, CSV), table=TableOptions(columns=["a", "b"]))
    assert recs.kind == "one" and recs.columns == ["a", "b"]
    np.testing.assert_array_equal(recs.arrays[0][:, 0], [1, 2, 3, 4, 5])
    assert recs.times is not None and str(recs.times[0][0]).startswith("2026-01-01T00:00:00")


def test_tsv_and_parquet_read_as_csv_does(tmp_path):
    csv = as_recordings(_file(tmp_path, CSV), table=TableOptions(columns=["a", "b"]))
    tsv = as_recordings(
        _file(tmp_path, CSV.replace(",", "\t"), "rec.tsv"), table=TableOptions(columns=["a", "b"])
    )
    table = pa.table({"a": [1, 2, 3, 4, 5], "b": [0.5, 1.5, 2.5, 3.5, 4.5]})
    pq.write_table(table, tmp_path / "rec.parquet")
    parquet = as_recordings(tmp_path / "rec.parquet")
    for other in (tsv, parquet):
        np.testing.assert_array_equal(other.arrays[0], csv.arrays[0])


def test_a_sequence_column_splits_the_recordings_in_order(tmp_path):
    recs = as_recordings(_file(tmp_path, CSV), table=TableOptions(sequence_column="rec"))
    assert recs.kind == "list" and [len(a) for a in recs.arrays] == [2, 3]
    assert recs.columns == ["a", "b"]  # the time and sequence columns are not channels


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        (CSV, None, r"'rec' \(string\) are not numeric"),
        ("a,b\n1,2\n", None, "1 row"),
        ("a,b\n1,2\n,3\n4,5\n", None, "first in data row 2, column 'a'; pass --fill"),
        ("a,b\n1,2\n3,4\n", TableOptions(columns=["c"]), "no column 'c' \\(the columns: a, b\\)"),
    ],
)
def test_bad_tables_are_named(tmp_path, text, options, message):
    with pytest.raises(DataError, match=message):
        as_recordings(_file(tmp_path, text), table=options)


def test_empty_cells_are_filled_or_dropped_when_asked(tmp_path):
    path = _file(tmp_path, "a,b\n,2\n1,\n3,4\n")
    ffill = as_recordings(path, table=TableOptions(fill="ffill")).arrays[0]
    np.testing.assert_array_equal(ffill, [[1, 2], [1, 2], [3, 4]])
    path = _file(tmp_path, "a,b\n,2\n1,5\n3,4\n")
    drop = as_recordings(path, table=TableOptions(fill="drop")).arrays[0]
    np.testing.assert_array_equal(drop, [[1, 5], [3, 4]])


def test_other_files_name_the_formats_and_never_pickle(tmp_path):
    with pytest.raises(DataError, match=r"not a data file nld reads \(.npz, .npy, .csv"):
        as_recordings(_file(tmp_path, "x", "rec.xlsx"))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="Python objects") as e:
        as_recordings(tmp_path / "objects.npy")
    assert "pickle" not in str(e.value)


def test_a_constant_channel_is_named_before_training(tmp_path):
    recs = as_recordings(_file(tmp_path, "a,flat\n1,7\n2,7\n3,7\n"))
    with pytest.raises(DataError, match="flat: constant"):
        training_set(recs, window=None)


def test_a_states_column_is_read_as_numbers_and_is_not_a_channel(tmp_path):
    named = "a,b,activity,rec\n1,2,walk,x\n2,3,run,x\n3,5,walk,y\n4,6,walk,y\n"
    recs = as_recordings(
        _file(tmp_path, named), table=TableOptions(states_column="activity", sequence_column="rec")
    )
    assert recs.columns == ["a", "b"] and recs.states is not None
    assert [s.tolist() for s in recs.states] == [[1, 0], [1, 1]]  # run 0, walk 1 (sorted)
    numbered = "a,b,state\n1,2,2\n2,3,0\n3,5,2\n"
    recs = as_recordings(_file(tmp_path, numbered), table=TableOptions(states_column="state"))
    assert recs.states is not None and recs.states[0].tolist() == [2, 0, 2]
    both = TableOptions(states_column="state", columns=["a", "state"])
    with pytest.raises(DataError, match="'state' is the states column and also a channel"):
        as_recordings(_file(tmp_path, numbered), table=both)
    with pytest.raises(DataError, match=r"states column 'state' has 1 empty cell\(s\), the first"):
        as_recordings(
            _file(tmp_path, "a,state\n1,0\n2,\n3,1\n"), table=TableOptions(states_column="state")
        )


def test_measuring_takes_recordings_of_one_length_with_their_states(tmp_path):
    from nld.data.recordings import evaluation_set

    text = "a,b,state,rec\n" + "".join(
        f"{i},{i % 3},{i % 2},{'x' if i < 4 else 'y'}\n" for i in range(8)
    )
    options = TableOptions(states_column="state", sequence_column="rec")
    data = evaluation_set(as_recordings(_file(tmp_path, text), table=options))
    assert data.x.shape == (2, 4, 2) and data.states is not None
    assert data.states.tolist() == [[0, 1, 0, 1], [0, 1, 0, 1]]
    uneven = as_recordings(_file(tmp_path, text.replace(",y\n", ",x\n", 1)), table=options)
    with pytest.raises(DataError, match=r"different lengths \(3 to 5 steps\).*nld segment"):
        evaluation_set(uneven, "rec.csv")


def test_a_channel_of_a_few_whole_numbers_is_named_as_like_labels(tmp_path):
    from nld.data.recordings import label_warning

    rng = np.random.default_rng(0)
    rows = [
        f"{a},{b},{s}"
        for a, b, s in zip(
            rng.normal(size=50), rng.integers(0, 100, 50), rng.integers(0, 3, 50), strict=True
        )
    ]
    recs = as_recordings(_file(tmp_path, "a,count,state\n" + "\n".join(rows) + "\n"))
    warning = label_warning(recs)  # not the measurement, nor a count of many values
    assert warning is not None and warning.startswith("state: ") and "--states-column" in warning
    named = as_recordings(
        _file(tmp_path, "a,count,state\n" + "\n".join(rows) + "\n"),
        table=TableOptions(states_column="state"),
    )
    assert label_warning(named) is None
