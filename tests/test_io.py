from nld.io import read_jsonl, write_bytes


def test_read_jsonl_returns_the_records_in_order_and_skips_blank_lines(tmp_path):
    path = tmp_path / "log" / "metrics.jsonl"
    write_bytes(path, b'{"iteration": 0, "elbo": -3.5}\n\n  \n{"iteration": 10, "elbo": -2.0}\n')
    assert read_jsonl(path) == [{"iteration": 0, "elbo": -3.5}, {"iteration": 10, "elbo": -2.0}]
