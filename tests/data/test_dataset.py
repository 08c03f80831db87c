import numpy as np
import pytest

from nld.data import Dataset, load, save
from nld.errors import DataError


def _write(tmp_path, **arrays):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    return p


def test_roundtrip(tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 7, 2)).astype(np.float32)
    s = np.zeros((3, 7), dtype=np.int64)
    save(tmp_path / "a.npz", Dataset(x, s))
    d = load(tmp_path / "a.npz")
    np.testing.assert_array_equal(d.x, x)
    np.testing.assert_array_equal(d.states, s)


def test_bare_npy(tmp_path):
    x = np.ones((2, 5, 3), dtype=np.float64)
    np.save(tmp_path / "x.npy", x)
    d = load(tmp_path / "x.npy")
    assert d.x.dtype == np.float32 and d.states is None and d.dim == 3


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.ones((4, 3))}, "rank 3"),
        ({"x": np.ones((0, 3, 2))}, "empty"),
        ({"x": np.array([[[1.0, np.nan]]])}, "non-finite"),
        ({"x": np.array([[[1.0, np.inf]]])}, "non-finite"),
        ({"x": np.ones((2, 3, 1)), "states": np.zeros((2, 4), dtype=int)}, "states"),
        ({"x": np.ones((2, 3, 1)), "states": -np.ones((2, 3), dtype=int)}, "negative"),
        ({"x": np.ones((2, 3, 1)), "states": np.zeros((2, 3))}, "integers"),
        ({"y": np.ones((2, 3, 1))}, "no array `x`"),
        ({"x": np.array(["a", "b"]).reshape(1, 1, 2)}, "real numbers"),
    ],
)
def test_bad_files_are_refused_with_a_reason(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message):
        load(_write(tmp_path, **arrays))


def test_ragged_is_refused(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.ones((3, 2)), np.ones((4, 2))
    np.save(tmp_path / "r.npy", ragged, allow_pickle=True)
    with pytest.raises(DataError):
        load(tmp_path / "r.npy")


def test_dimension_must_match_model(tmp_path):
    with pytest.raises(DataError, match="model expects D = 4"):
        load(_write(tmp_path, x=np.ones((2, 3, 5))), dim=4)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable"):
        load(tmp_path / "junk.npz")


def test_state_frequencies_count_every_state_including_absent_ones():
    states = np.array([[0, 0, 1, 1], [1, 1, 1, 0]])
    data = Dataset(np.zeros((2, 4, 1), np.float32), states)
    np.testing.assert_allclose(data.state_frequencies(3), [3 / 8, 5 / 8, 0.0])
    with pytest.raises(ValueError, match="no hidden states"):
        Dataset(np.zeros((2, 4, 1), np.float32)).state_frequencies()
