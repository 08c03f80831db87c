"""Reading a large CSV: nld's table reader (pyarrow) beside pandas.read_csv, in the same run.

    python bench/read_table.py [--rows 1000000] [--channels 20] [--repeats 3]

Writes a CSV of `rows` steps (a time column and `channels` float channels) to a temporary
directory, then reads it `repeats` times each way: `nld.data.recordings.as_recordings` (to
float32 channels with their time stamps) and `pandas.read_csv` (to a DataFrame). Medians; a
row goes to bench/results/read_table.jsonl.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from record import append_row, median_seconds

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "read_table.jsonl"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--channels", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()

    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from nld.data.recordings import as_recordings

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        rng = np.random.default_rng(0)
        columns = {"time": pa.array(np.arange(a.rows) * 0.1)}
        for c in range(a.channels):
            columns[f"c{c}"] = pa.array(rng.standard_normal(a.rows))
        pcsv.write_csv(pa.table(columns), path)
        size_mb = path.stat().st_size / 1e6

        def ours() -> None:
            recs = as_recordings(path)
            assert recs.arrays[0].shape == (a.rows, a.channels)

        nld_s = median_seconds(ours, a.repeats)
        pandas_s = median_seconds(lambda: pd.read_csv(path), a.repeats)
    append_row(
        RESULTS,
        {
            "rows": a.rows,
            "channels": a.channels,
            "file_mb": round(size_mb, 1),
            "nld_seconds": round(nld_s, 3),
            "pandas_read_csv_seconds": round(pandas_s, 3),
            "ratio": round(nld_s / pandas_s, 3),
            "repeats": a.repeats,
            "cores": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
