"""`nld import-dynvae` and `nld report`: the paper's own checkpoints, and its tables for our
models."""

from __future__ import annotations

import argparse
import sys

from training.cli.common import add_ray_options, positive, ray_choice


def _cmd_import_dynvae(a: argparse.Namespace) -> None:
    import warnings

    from nld import checkpoint
    from nld.dynvae import convert
    from nld.fitted import Fitted

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        model = convert(a.model, a.settings)
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    checkpoint.save(
        a.out,
        model,
        Fitted.none(model.cfg),
        {"imported_from": {"model": str(a.model), "settings": str(a.settings)}, "finished": True},
    )
    cfg = model.cfg
    print(
        f"wrote {a.out}: {cfg.dynamics}, latent {cfg.latent_dim}, "
        f"beta {float(model.prior.beta().detach()):.4f}"
    )


def _cmd_report(a: argparse.Namespace) -> None:
    import torch

    from training.report import run_report

    torch.set_num_threads(2)
    path = run_report(
        a.experiment,
        a.seeds,
        a.out,
        runs=a.runs,
        first_seed=a.first_seed,
        dynamics=tuple(a.dynamics),
        workers=a.workers,
        use_ray=ray_choice(a),
        address=a.ray_address,
        device=a.device,
    )
    print(f"wrote {path}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    im = sub.add_parser("import-dynvae", help="convert a checkpoint of the paper's code")
    im.add_argument("model", help="MODEL.pth (a state dict of tensors)")
    im.add_argument("settings", help="SETTINGS.txt (read as text, never evaluated)")
    im.add_argument("--out", required=True, help="run directory for the converted checkpoint")
    im.set_defaults(fn=_cmd_import_dynvae)

    rp = sub.add_parser("report", help="the paper's tables for our models (trains missing runs)")
    rp.add_argument("--experiment", type=int, choices=[1, 2], required=True)
    rp.add_argument("--seeds", type=positive, default=5, help="how many seeds per model")
    rp.add_argument("--first-seed", type=int, default=0)
    rp.add_argument(
        "--dynamics",
        nargs="+",
        choices=["overdamped", "underdamped"],
        default=["overdamped", "underdamped"],
    )
    rp.add_argument("--runs", default="runs/bench", help="where runs are reused or trained")
    rp.add_argument(
        "--workers",
        type=positive,
        default=2,
        help="training runs side by side, Ray tasks on an equal share of the cores (default "
        "2; 1 trains one run at a time)",
    )
    add_ray_options(rp)
    rp.add_argument(
        "--device", help="where the training loops run: auto, cpu (the default), cuda, cuda:N, mps"
    )
    rp.add_argument("--out", required=True, help="directory for report.md and its figures")
    rp.set_defaults(fn=_cmd_report)
