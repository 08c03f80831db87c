"""What the command groups share: reading a run and its data, and argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:  # the script loads without torch: see `serve`'s worker processes
    from nld.data import Dataset
    from nld.data.tables import TableOptions
    from nld.fitted import Fitted
    from nld.model import NLDModel


@overload
def load_run(
    run_dir: str,
    data_path: str,
    table: TableOptions | None = None,
    *,
    training: bool = False,
    device: str | None = None,
) -> tuple[NLDModel, Fitted, Dataset]: ...


@overload
def load_run(
    run_dir: str,
    data_path: str | None,
    table: TableOptions | None = None,
    *,
    training: bool = False,
    device: str | None = None,
) -> tuple[NLDModel, Fitted, Dataset | None]: ...


def load_run(
    run_dir: str,
    data_path: str | None,
    table: TableOptions | None = None,
    *,
    training: bool = False,
    device: str | None = None,
) -> tuple[NLDModel, Fitted, Dataset | None]:
    """The checkpoint (network and what was fitted beside it), the network on `device` (None:
    the CPU), and the data set (None without a path) as `run_data` reads it."""
    import torch

    from nld import checkpoint
    from nld.device import resolve_device

    on = resolve_device(device)  # one that torch cannot use: an error before any reading
    torch.set_num_threads(min(2, torch.get_num_threads()))  # at most 2; OMP_NUM_THREADS holds
    model, fitted = checkpoint.load(run_dir)
    model.to(on)
    if data_path is None:
        return model, fitted, None
    meta = checkpoint.read_config(run_dir)[1]
    return model, fitted, run_data(data_path, model, meta, table, training=training)


def run_data(
    path: str,
    model: NLDModel,
    meta: dict[str, Any],
    table: TableOptions | None = None,
    *,
    training: bool = False,
) -> Dataset:
    """A data file (.npz, .npy, or a table) for a trained model: a table's channels are the
    columns the model was trained on unless `table` names others, and their number must be the
    model's. `training`: the data it was trained on, cut as training cut it (the stages);
    else the recordings as they are (one, or several of one length), with their states."""
    from nld.data.recordings import evaluation_set, read_for_model, training_set

    trained_on = (meta.get("data") or {}).get("columns")
    recs = read_for_model(path, model.cfg.obs_dim, trained_on, table)
    if training:
        return training_set(recs, (meta.get("train") or {}).get("train", {}).get("window"))
    return evaluation_set(recs, path)


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
    p.add_argument("--data", required=True, help="the training data (a data file or table)")
    add_table_options(p)
    p.set_defaults(fn=fn)
    return p


def add_table_options(p: argparse.ArgumentParser) -> None:
    """How to read a table (.csv, .tsv, .parquet) given as --data."""
    g = p.add_argument_group("tables (.csv, .tsv, .parquet)")
    g.add_argument("--time-column", help="the time stamps (default: found by type or name)")
    g.add_argument("--columns", help="the channels, comma-separated (default: every numeric)")
    g.add_argument("--sequence-column", help="a column whose values split the recordings")
    g.add_argument("--fill", choices=("ffill", "drop"), help="fill or drop empty cells")
    g.add_argument(
        "--states-column",
        help="the known state of each row (numbers or names), scored against the model's "
        "labels; not a channel",
    )


def table_options(a: argparse.Namespace) -> TableOptions:
    from nld.data.tables import TableOptions

    columns = None if a.columns is None else [c.strip() for c in a.columns.split(",")]
    return TableOptions(a.time_column, columns, a.sequence_column, a.fill, a.states_column)


def add_ray_options(p: argparse.ArgumentParser) -> None:
    """Where training runs go: Ray (where installed, or asked for) or this process."""
    g = p.add_argument_group(
        "scheduling",
        "Where the training runs go: Ray tasks where Ray is installed (pip install "
        "'nld[cluster]'), on a Ray started here unless --ray-address names a cluster; else one "
        "after another in this process.",
    )
    ray = g.add_mutually_exclusive_group()
    ray.add_argument(
        "--ray", action="store_true", default=None, help="run through Ray (an error without it)"
    )
    ray.add_argument(
        "--no-ray", dest="ray", action="store_false", help="run one after another in this process"
    )
    g.add_argument(
        "--ray-address",
        help="a running Ray cluster (HOST:PORT, as `ray start --head` prints it); default: a "
        "Ray started here on this machine's cores",
    )


def ray_choice(a: argparse.Namespace) -> bool | None:
    """Whether to run through Ray (None: where it is installed); --ray-address means yes."""
    from nld.errors import NLDError

    if a.ray_address and a.ray is False:
        raise NLDError("--ray-address runs through Ray: leave out --no-ray")
    return True if a.ray_address else a.ray


def add_device_option(p: argparse.ArgumentParser) -> None:
    """--device for the commands that compute with a trained model."""
    p.add_argument(
        "--device",
        help="where the model encodes the data and samples its prior: auto (a GPU when torch "
        "sees one), cpu (the default), cuda, cuda:N or mps; the landscape analysis runs on "
        "the CPU in float64",
    )
