"""`nld train`, `nld stage` (and its older names `separate`, `depths`, `clock`) and
`nld fit-chain`: training a model and running the stages of its pipeline."""

from __future__ import annotations

import argparse
import json
import sys

from nld.errors import NLDError
from training.cli.common import (
    add_ray_options,
    add_table_options,
    load_run,
    positive,
    ray_choice,
    stage_parser,
    table_options,
)


def _cmd_train(a: argparse.Namespace) -> None:
    from nld.device import resolve_device
    from nld.fitting.config import load_config, with_overrides
    from training.run import train_run

    overrides = _overrides(a.set, ("model", "train", "stages"))
    for option, key in (
        ("seed", "train.seed"),
        ("iterations", "train.iterations"),
        ("device", "train.device"),
    ):
        if getattr(a, option) is not None:
            overrides[key] = getattr(a, option)
    cfg = with_overrides(load_config(a.preset, a.config), overrides)  # validated
    resolve_device(cfg.train.device)  # one that torch cannot see: an error before reading data
    trained = train_run(
        cfg,
        a.data,
        a.out,
        table=table_options(a),
        resume=a.resume,
        progress=not a.quiet,
        warn=lambda message: print(f"nld: warning: {message}", file=sys.stderr),
    )
    model, fitted, meta, data = trained.model, trained.fitted, trained.meta, trained.data
    print(f"wrote {a.out}")
    kept = meta.get("restarts")
    if kept:
        scores = ", ".join(
            f"seed {c['seed']} "
            + (f"{c['score']:.4f}" if "score" in c else f"failed: {c['error']}")
            for c in kept["candidates"]
        )
        what = "ELBO" if kept["kl_weight"] == 1 else f"log-likelihood - {kept['kl_weight']} KL"
        print(f"  kept seed {kept['kept']}, the best {what} per step of the candidates: {scores}")
    if model.cfg.has_energy and model.readout is not None:
        import torch

        from nld.fitting.pipeline import STAGES, describe
        from nld.fitting.rescue import readout_points
        from nld.inference import class_source, find_landscape
        from nld.landscape import SINGLE_WELL

        minima = find_landscape(model, torch.from_numpy(readout_points(model, data))).minima
        print(f"  {len(minima)} energy minima, the hidden states it found")
        if len(minima) == 1:
            print(f"  warning: {SINGLE_WELL}")
        for stage in STAGES:  # what each stage did, as it tells it
            if meta.get(stage.key) is not None:
                for line in describe(stage, meta[stage.key]):
                    print(f"  {line}")
        head = meta.get("basin_head")
        print(f"  labels: {class_source(fitted) if head and head['classes'] else 'readout basins'}")


def _cmd_sweep(a: argparse.Namespace) -> None:
    from training.sweep import run_sweep
    from training.sweep_spec import read_sweep

    use_ray = ray_choice(a)
    sweep = read_sweep(a.sweep)
    rows = run_sweep(
        sweep,
        use_ray=use_ray,
        address=a.ray_address,
        command="nld " + " ".join(getattr(a, "argv", [])),
        progress=not a.quiet,
    )
    print(f"wrote {sweep.out / 'sweep.md'} and {sweep.out / 'sweep.csv'}")
    for row in rows:
        if row["status"] == "failed":
            print(f"  {row['run']} failed: {row['error']}", file=sys.stderr)
    if any(row["status"] == "failed" for row in rows):
        raise NLDError(f"{sum(r['status'] == 'failed' for r in rows)} of {len(rows)} runs failed")


def _print_chain(fit: dict) -> None:
    from nld.fitting.basin_head import chain_lines

    for line in chain_lines(fit):
        print(f"  {line}")


def _cmd_fit_chain(a: argparse.Namespace) -> None:
    import torch

    from nld import checkpoint
    from nld.fitting.basin_head import fit_chain, training_sequences
    from nld.inference import read_path

    model, fitted, data = load_run(a.run_dir, a.data, table_options(a), training=True)
    if fitted.classes == 0:
        raise NLDError(f"{a.run_dir} has no fitted basin head: the chain's states are its minima")
    fitted.set_chain(None)  # the head's own classes, not an earlier chain's
    x = training_sequences(data, torch.Generator().manual_seed(0))
    _, classes = read_path(model, fitted, x)
    assert classes is not None
    fit = fit_chain(model, fitted, x, classes, seed=0)
    _, meta = checkpoint.read_config(a.run_dir)
    meta.setdefault("basin_head", {})["chain"] = fit
    checkpoint.save(a.run_dir, model, fitted, meta=meta)
    print(f"wrote {a.run_dir}")
    _print_chain(fit)


def _cmd_stage(a: argparse.Namespace) -> None:
    """Run one stage of nld.fitting.pipeline on a trained run, and the later stages it
    invalidates; the checkpoint is rewritten only if the stage did something."""
    import torch

    from nld import checkpoint
    from nld.fitting.config import TrainConfig, with_overrides
    from nld.fitting.pipeline import Context, describe, record_keys, rerun, stage_named

    try:
        stage = stage_named(a.stage)
    except ValueError as e:
        raise NLDError(str(e)) from None
    overrides = _settings(a)  # its form checked before reading the run
    model, fitted, data = load_run(a.run_dir, a.data, table_options(a), training=True)
    torch.set_num_threads(a.threads)
    _, meta = checkpoint.read_config(a.run_dir)
    cfg = TrainConfig.model_validate(meta["train"]) if "train" in meta else TrainConfig()
    cfg = with_overrides(cfg, overrides)
    records = {k: meta.get(k) for k in record_keys()}
    ctx = Context(model, fitted, data, cfg.train, records, not a.quiet, stages=cfg.stages)
    try:
        ran = rerun(ctx, stage.name)
    except ValueError as e:
        raise NLDError(f"{a.run_dir}: {e}") from None
    skipped = ctx.records[stage.key].get("skipped")
    if skipped:
        raise NLDError(f"{a.run_dir}: the {stage.name} stage left the model as it was: {skipped}")
    meta.update(ctx.records)
    checkpoint.save(a.run_dir, model, fitted, meta=meta)
    print(f"wrote {a.run_dir}")
    for name in ran:
        s = stage_named(name)
        if s is not stage:
            print(f"  {name}: run again, the {stage.name} stage changed the model")
        for line in describe(s, ctx.records[s.key]):
            print(f"  {line}")


def _overrides(items: list[str], sections: tuple[str, ...]) -> dict[str, object]:
    """`--set SECTION.KEY=VALUE` items as {"SECTION.KEY": value}: VALUE is JSON (a bare word
    is a string); the config validates them (nld.fitting.config.with_overrides)."""
    out: dict[str, object] = {}
    for item in items:
        key, eq, value = item.partition("=")
        section, _, name = key.partition(".")
        if not eq or section not in sections or not name:
            expected = " or ".join(
                f"{s}.STAGE.KEY=VALUE" if s == "stages" else f"{s}.KEY=VALUE" for s in sections
            )
            raise NLDError(f"--set {item!r}: expected {expected}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _settings(a: argparse.Namespace) -> dict[str, object]:
    """The settings a stage command overrides: `--set train.KEY=VALUE` or
    `--set stages.STAGE.KEY=VALUE`, `--seed`, and the old commands' own options."""
    out = _overrides(a.set, ("train", "stages"))
    for option, name in (
        ("seed", "train.seed"),
        ("threads", "train.threads"),
        ("rounds", "stages.separate.rounds"),
        ("separate_iterations", "stages.separate.iterations"),
        ("depths_iterations", "stages.depths.iterations"),
    ):
        if getattr(a, option, None) is not None:
            out[name] = getattr(a, option)
    return out


def add_commands(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a model")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--preset", help="a shipped preset (default: `default`)")
    src.add_argument("--config", help="a TOML config file")
    t.add_argument(
        "--data",
        required=True,
        help="the recordings: .npz (x [N, T, D]), .npy, or a .csv / .tsv / .parquet table",
    )
    add_table_options(t)
    t.add_argument("--out", required=True, help="run directory for the checkpoint")
    t.add_argument("--seed", type=int, help="the seed of the weights, batches and stages")
    t.add_argument("--iterations", type=int, help="override the preset's iteration count")
    t.add_argument(
        "--device",
        help="where the training loop runs: auto (a GPU when torch sees one), cpu (the "
        "default), cuda, cuda:N or mps; the stages and the analysis run on the CPU",
    )
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a setting of the preset (repeatable), e.g. train.window=50, model.latent_dim=3 "
        "or stages.calibrate.iterations=0",
    )
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=_cmd_train)

    sw = sub.add_parser(
        "sweep",
        help="many training runs from a sweep file (presets, seeds, settings, data), through "
        "Ray where it is installed; finished runs are reused",
    )
    sw.add_argument("sweep", help="the sweep file (TOML; see the guide Many runs)")
    add_ray_options(sw)
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(fn=_cmd_sweep)

    stage_parser(
        sub,
        "fit-chain",
        "fit the hidden Markov chain over a trained model's minima (online labels by its filter "
        "where it fits the data; else the basin head's chain, for offline labels)",
        _cmd_fit_chain,
    )
    st = sub.add_parser(
        "stage",
        help="run one stage of training's pipeline on a trained run (as nld train runs them at "
        "its end), and after it the later stages it invalidates",
    )
    st.add_argument(
        "stage", help="the stage to run, by its name in the config (calibrate, basin-head, ...)"
    )
    st.add_argument("run_dir")
    st.add_argument("--data", required=True, help="the training data (a data file or table)")
    add_table_options(st)
    st.set_defaults(fn=_cmd_stage)
    st.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a setting for this run (repeatable), e.g. stages.depths.iterations=600",
    )
    # The stage's own commands, as before `nld stage`: the same, with their options.
    sp = stage_parser(
        sub,
        "separate",
        "= nld stage separate: pull apart the states a trained model merged into one well, "
        "where its split test says so",
        _cmd_stage,
    )
    sp.set_defaults(stage="separate")
    sp.add_argument("--rounds", type=positive, help="at most this many rounds")
    sp.add_argument(
        "--iterations", dest="separate_iterations", type=positive, help="iterations per round"
    )
    ck = stage_parser(
        sub,
        "clock",
        "= nld stage clock: set a trained model's prior clock to its state chain's dwell times",
        _cmd_stage,
    )
    ck.set_defaults(stage="clock")
    dp = stage_parser(
        sub,
        "depths",
        "= nld stage depths: refit a trained model's well depths to its state chain's "
        "stationary distribution, then its clock if it has one",
        _cmd_stage,
    )
    dp.set_defaults(stage="depths")
    dp.add_argument(
        "--iterations",
        dest="depths_iterations",
        type=positive,
        help="calibration steps (default: the run's training settings)",
    )
    for p_ in (st, sp, ck, dp):
        if p_ is not st:
            p_.set_defaults(set=[])
        p_.add_argument("--seed", type=int, help="default: the run's own training seed")
        p_.add_argument("--threads", type=positive, default=2)
        p_.add_argument("--quiet", action="store_true", help="no progress bars")
