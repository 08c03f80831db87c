import stat

import pytest

from nld import io
from nld.io import read_jsonl, write_bytes


def test_read_jsonl_returns_the_records_in_order_and_skips_blank_lines(tmp_path):
    path = tmp_path / "log" / "metrics.jsonl"
    write_bytes(path, b'{"iteration": 0, "elbo": -3.5}\n\n  \n{"iteration": 10, "elbo": -2.0}\n')
    assert read_jsonl(path) == [{"iteration": 0, "elbo": -3.5}, {"iteration": 10, "elbo": -2.0}]


@pytest.mark.parametrize(("umask", "file_mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_take_the_mode_the_umask_gives(tmp_path, monkeypatch, umask, file_mode):
    """Not the 0600 of a temporary file: others may read what the umask lets them."""
    monkeypatch.setattr(io, "_UMASK", umask)
    path = tmp_path / "model.safetensors"
    write_bytes(path, b"weights")
    assert stat.S_IMODE(path.stat().st_mode) == file_mode
