"""What the command groups share: reading a run and its data, and argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:  # the script loads without torch: see `serve`'s worker processes
    from nld.data import Dataset
    from nld.data.tables import TableOptions
    from nld.model import NLDModel


@overload
def load_run(run_dir: str, data_path: str) -> tuple[NLDModel, Dataset]: ...


@overload
def load_run(run_dir: str, data_path: str | None) -> tuple[NLDModel, Dataset | None]: ...


def load_run(run_dir: str, data_path: str | None) -> tuple[NLDModel, Dataset | None]:
    """The checkpoint, and the data set checked against its D (None without a path)."""
    import torch

    from nld import checkpoint
    from nld.data import load

    torch.set_num_threads(min(2, torch.get_num_threads()))  # at most 2; OMP_NUM_THREADS holds
    model = checkpoint.load(run_dir)
    return model, None if data_path is None else load(data_path, dim=model.cfg.obs_dim)


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def stage_parser(
    sub: argparse._SubParsersAction, name: str, help: str, fn: Callable[[argparse.Namespace], None]
) -> argparse.ArgumentParser:
    """A command that runs one of training's final stages on a trained run: RUN_DIR and the
    training data it was trained on."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    p.add_argument("run_dir")
    p.add_argument("--data", required=True, help="the training data (train.npz)")
    p.set_defaults(fn=fn)
    return p


def add_table_options(p: argparse.ArgumentParser) -> None:
    """How to read a table (.csv, .tsv, .parquet) given as --data."""
    g = p.add_argument_group("tables (.csv, .tsv, .parquet)")
    g.add_argument("--time-column", help="the time stamps (default: found by type or name)")
    g.add_argument("--columns", help="the channels, comma-separated (default: every numeric)")
    g.add_argument("--sequence-column", help="a column whose values split the recordings")
    g.add_argument("--fill", choices=("ffill", "drop"), help="fill or drop empty cells")


def table_options(a: argparse.Namespace) -> TableOptions:
    from nld.data.tables import TableOptions

    columns = None if a.columns is None else [c.strip() for c in a.columns.split(",")]
    return TableOptions(a.time_column, columns, a.sequence_column, a.fill)
