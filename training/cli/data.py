"""`nld data`: data sets drawn from HMM specs and from random Langevin wells."""

from __future__ import annotations

import argparse
from pathlib import Path

from nld.errors import NLDError


def _cmd_data_generate(a: argparse.Namespace) -> None:
    from nld.data import generate_splits, load_spec, save

    spec = load_spec(a.spec)
    out = Path(a.out)
    for name, ds in generate_splits(spec).items():
        save(out / f"{name}.npz", ds)
        print(f"wrote {out / f'{name}.npz'}: {ds.n_sequences} x {ds.length} x {ds.dim}")


def _cmd_data_wells(a: argparse.Namespace) -> None:
    from nld.data import save
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
        ds = sample_wells(spec, n, a.length, seed=seed)
        save(out / f"{name}.npz", ds)
        print(f"wrote {out / f'{name}.npz'}: {ds.n_sequences} x {ds.length} x {ds.dim}")
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
    g.add_argument("--out", required=True, help="directory for train.npz and test.npz")
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
    w.add_argument("--out", required=True, help="directory for train.npz, test.npz, wells.json")
    w.set_defaults(fn=_cmd_data_wells)
