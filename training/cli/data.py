"""`nld data`: data sets drawn from HMM specs and from random Langevin wells."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from nld.errors import NLDError

if TYPE_CHECKING:
    from nld.data import Dataset

FORMATS = ("npz", "csv", "tsv", "parquet")


def _write(out: Path, name: str, ds: Dataset, form: str) -> None:
    """A split as .npz (x, states), or as a table of one row per step: sequence, time, the
    channels x0..x{D-1}, and the known state (`--states-column state` reads it back)."""
    import numpy as np

    from nld.data import save
    from nld.labels_out import write_steps

    path = out / f"{name}.{form}"
    if form == "npz":
        save(path, ds)
    else:
        n, t, d = ds.x.shape
        columns = {
            "sequence": np.repeat(np.arange(n), t),
            "time": np.tile(np.arange(t), n),
            **{f"x{j}": ds.x[..., j].reshape(-1) for j in range(d)},
        }
        if ds.states is not None:
            columns["state"] = ds.states.reshape(-1)
        write_steps(path, columns)
    print(f"wrote {path}: {ds.n_sequences} x {ds.length} x {ds.dim}")


def _cmd_data_generate(a: argparse.Namespace) -> None:
    from nld.data import generate_splits, load_spec

    spec = load_spec(a.spec)
    for name, ds in generate_splits(spec).items():
        _write(Path(a.out), name, ds, a.format)


def _cmd_data_wells(a: argparse.Namespace) -> None:
    from nld.data.wells import random_wells, sample_wells
    from nld.io import write_json

    if a.wells < 2 or a.dim < 1 or a.latent < 1 or a.sequences < 1 or a.length < 2:
        raise NLDError(
            "nld data wells needs --wells >= 2, --length >= 2, and --dim, --latent and "
            "--sequences >= 1"
        )
    spec = random_wells(a.wells, a.dim, a.seed, latent_dim=a.latent)
    out = Path(a.out)
    for name, n, seed in (("train", a.sequences, 1), ("test", max(1, a.sequences // 4), 2)):
        _write(out, name, sample_wells(spec, n, a.length, seed=seed), a.format)
    truth = {
        "minima": [m.position.tolist() for m in spec.minima],
        "occupancy": spec.occupancy().tolist(),
        "centers": spec.centers.tolist(),
        "weights": spec.weights.tolist(),
        "mixing": spec.mixing.tolist(),
        "interval": spec.interval,
        "beta": spec.beta,
    }
    write_json(out / "wells.json", truth)
    print(f"wrote {out / 'wells.json'}: the true minima (state i is minimum i) and occupancies")


def add_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="data sets").add_subparsers(
        dest="data_command", required=True
    )
    g = data.add_parser("generate", help="draw train/test splits from an HMM spec")
    g.add_argument("--spec", required=True, help="exp1, exp2 or a JSON spec file")
    g.add_argument("--out", required=True, help="directory for the train and test splits")
    g.add_argument(
        "--format",
        choices=FORMATS,
        default="npz",
        help="npz (x, states), or a table of one row per step: sequence, time, x0.., state",
    )
    g.set_defaults(fn=_cmd_data_generate)
    w = data.add_parser(
        "wells",
        help="draw train/test splits from a random potential of Gaussian wells (Langevin "
        "dynamics seen through a random linear map; states: the wells, nld.data.wells)",
    )
    w.add_argument("--wells", type=int, default=3, help="number of wells, the hidden states")
    w.add_argument("--dim", type=int, default=6, help="D, observed dimensions")
    w.add_argument("--latent", type=int, default=2, help="dimension of the potential")
    w.add_argument("--sequences", type=int, default=400, help="training sequences (test: 1/4)")
    w.add_argument("--length", type=int, default=200, help="records per sequence")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--out", required=True, help="directory for the splits and wells.json")
    w.add_argument("--format", choices=FORMATS, default="npz", help="as for nld data generate")
    w.set_defaults(fn=_cmd_data_wells)
