"""The `nld` command line. Errors the user can fix print one line, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, overload

from nld.errors import NLDError

if TYPE_CHECKING:  # the script loads without torch: see `serve`'s worker processes
    from nld.data import Dataset
    from nld.model import NLDModel


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


def _cmd_train(a: argparse.Namespace) -> None:
    from nld import checkpoint
    from nld.data import load
    from training.config import load_config
    from training.restarts import fit

    cfg = load_config(a.preset, a.config)
    if a.seed is not None:
        cfg.train.seed = a.seed
    if a.iterations is not None:
        cfg.train.iterations = a.iterations
    data = load(a.data)
    model = fit(cfg, data, a.out, resume=a.resume, progress_bar=not a.quiet)
    print(f"wrote {a.out}")
    meta = checkpoint.read_config(a.out)[1]
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

        from nld.inference import class_source, find_landscape
        from nld.landscape import SINGLE_WELL
        from training.rescue import readout_points
        from training.separate import describe

        minima = find_landscape(model, torch.from_numpy(readout_points(model, data))).minima
        print(f"  {len(minima)} energy minima, the hidden states it found")
        if len(minima) == 1:
            print(f"  warning: {SINGLE_WELL}")
        head = meta.get("basin_head")
        if head and head["classes"]:
            print(
                f"  basin head: agrees with the basin of the readout position on "
                f"{head['agreement']:.1%} of the training steps"
            )
        for line in describe(meta.get("separation")):
            print(f"  {line}")
        if head and head.get("chain"):
            _print_chain(head["chain"])
        print(f"  labels: {class_source(model) if head and head['classes'] else 'readout basins'}")


def _print_chain(fit: dict) -> None:
    from training.pipeline import chain_lines

    for line in chain_lines(fit):
        print(f"  {line}")


def _cmd_fit_chain(a: argparse.Namespace) -> None:
    import torch

    from nld import checkpoint
    from nld.inference import read_path
    from training.basin_head import fit_chain, training_sequences

    model, data = _load_run(a.run_dir, a.data)
    if len(model.fitted_minima()) == 0:
        raise NLDError(f"{a.run_dir} has no fitted basin head: the chain's states are its minima")
    model.chain = None  # the head's own classes, not an earlier chain's
    x = training_sequences(data, torch.Generator().manual_seed(0))
    _, classes = read_path(model, x)
    assert classes is not None
    fit = fit_chain(model, x, classes, seed=0)
    _, meta = checkpoint.read_config(a.run_dir)
    meta.setdefault("basin_head", {})["chain"] = fit
    checkpoint.save(a.run_dir, model, meta=meta)
    print(f"wrote {a.run_dir}")
    _print_chain(fit)


def _cmd_stage(a: argparse.Namespace) -> None:
    """Run one stage of training.pipeline on a trained run, and the later stages it
    invalidates; the checkpoint is rewritten only if the stage did something."""
    import torch

    from nld import checkpoint
    from training.config import TrainConfig, with_overrides
    from training.pipeline import KEYS, Context, rerun, stage_named

    stage = stage_named(a.stage)
    model, data = _load_run(a.run_dir, a.data)
    torch.set_num_threads(a.threads)
    _, meta = checkpoint.read_config(a.run_dir)
    cfg = TrainConfig.model_validate(meta["train"]) if "train" in meta else TrainConfig()
    overrides = {f"train.{k}": v for k, v in _settings(a).items()}
    settings = with_overrides(cfg, overrides).train
    ctx = Context(model, data, settings, {k: meta.get(k) for k in KEYS}, not a.quiet)
    try:
        ran = rerun(ctx, stage.name)
    except ValueError as e:
        raise NLDError(f"{a.run_dir}: {e}") from None
    skipped = ctx.records[stage.key].get("skipped")
    if skipped:
        raise NLDError(f"{a.run_dir}: the {stage.name} stage left the model as it was: {skipped}")
    meta.update(ctx.records)
    checkpoint.save(a.run_dir, model, meta=meta)
    print(f"wrote {a.run_dir}")
    for name in ran:
        s = stage_named(name)
        if s is not stage:
            print(f"  {name}: run again, the {stage.name} stage changed the model")
        for line in s.describe(ctx.records[s.key]):
            print(f"  {line}")


def _settings(a: argparse.Namespace) -> dict[str, object]:
    """The training settings a stage command overrides: `--set train.KEY=JSON`, `--seed`,
    and the old commands' own options."""
    out: dict[str, object] = {}
    for item in a.set:
        key, eq, value = item.partition("=")
        name = key.removeprefix("train.")
        if not eq or name == key or not name:
            raise NLDError(f"--set {item!r}: expected train.KEY=VALUE (a JSON value)")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value  # a bare word: a string
    for option, name in (
        ("seed", "seed"),
        ("threads", "threads"),
        ("rounds", "separate_rounds"),
        ("separate_iterations", "separate_iterations"),
        ("depths_iterations", "depths_iterations"),
    ):
        if getattr(a, option, None) is not None:
            out[name] = getattr(a, option)
    return out


@overload
def _load_run(run_dir: str, data_path: str) -> tuple[NLDModel, Dataset]: ...
@overload
def _load_run(run_dir: str, data_path: str | None) -> tuple[NLDModel, Dataset | None]: ...
def _load_run(run_dir: str, data_path: str | None) -> tuple[NLDModel, Dataset | None]:
    """The checkpoint, and the data set checked against its D (None without a path)."""
    import torch

    from nld import checkpoint
    from nld.data import load

    torch.set_num_threads(min(2, torch.get_num_threads()))  # at most 2; OMP_NUM_THREADS holds
    model = checkpoint.load(run_dir)
    return model, None if data_path is None else load(data_path, dim=model.cfg.obs_dim)


def _cmd_segment(a: argparse.Namespace) -> None:
    import numpy as np

    from nld.inference import label
    from nld.io import atomic_write

    model, data = _load_run(a.run_dir, a.data)
    if not model.cfg.has_energy:
        raise NLDError(f"{a.run_dir} is an NSDE baseline: it has no energy, hence no basins")
    labels, landscape, _, source = label(model, data.x)
    atomic_write(a.out, lambda f: np.save(f, labels))
    print(f"wrote {a.out}: labels {labels.shape} from the {source}, {len(landscape.minima)} basins")


def _cmd_evaluate(a: argparse.Namespace) -> None:
    from nld.data import load, load_spec
    from nld.io import write_json
    from training.evaluate import evaluate

    model, data = _load_run(a.run_dir, a.data)
    truth = load_spec(a.spec).stationary() if a.spec else None
    fit_data = None if a.fit_data is None else load(a.fit_data, dim=model.cfg.obs_dim)
    res = evaluate(model, data, true_occupancy=truth, fit_data=fit_data)
    res.pop("labels")
    if a.out:
        write_json(a.out, res)
    print(json.dumps({k: v for k, v in res.items() if k != "minima"}, indent=1))


def _cmd_analyze(a: argparse.Namespace) -> None:
    from nld import analysis_file, checkpoint
    from nld.data import load_spec
    from nld.io import write_json
    from training.analyze import analyze_run

    model, data = _load_run(a.run_dir, a.data)
    spec = load_spec(a.spec) if a.spec else None
    res, analysis, _ = analyze_run(model, data, spec=spec, seed=a.seed)
    digest = checkpoint.weights_sha256(a.run_dir)
    res.update(weights_sha256=digest, analysis_version=analysis_file.ANALYSIS_VERSION)
    write_json(a.out, res)
    wrote = [a.out]
    try:  # the service serves this analysis instead of computing its own
        analysis_file.save(Path(a.run_dir) / analysis_file.FILE, analysis, digest)
        wrote.append(str(Path(a.run_dir) / analysis_file.FILE))
    except OSError as e:
        print(f"warning: the analysis is not stored beside the model ({e})", file=sys.stderr)
    if a.card:
        from nld.io import write_bytes
        from training.analyze import model_card

        command = "nld " + " ".join(a.argv)
        card = model_card(Path(a.run_dir).name, res, command, checkpoint.read_config(a.run_dir)[1])
        write_bytes(a.card, card.encode())
    occ = res["occupancy"]
    print(f"{len(res['minima'])} minima, beta {res['beta']:.3f}; wrote {', '.join(wrote)}")
    for i, m in enumerate(res["minima"]):
        pos = ", ".join(f"{v:.3f}" for v in m["position"])
        est = "  ".join(f"{name} {occ[name][i]:.3f}" for name in occ if occ[name] is not None)
        kramers, sim = (res[k][i] for k in ("dwell_times", "dwell_times_simulated"))
        print(
            f"  [{i}] ({pos})  E {m['energy']:.3f}  {est}  dwell "
            f"{kramers or float('inf'):.1f} (Kramers) {sim or float('inf'):.1f} (simulated)"
        )
    for w in res["warnings"]:
        print(f"  warning: {w}")
    if "segmentation" in res and "accuracy_mean" in res["segmentation"]:
        s = res["segmentation"]
        print(
            f"  accuracy {s['accuracy_mean']:.4f} +- {s['accuracy_std']:.4f}, "
            f"many-to-one {s['many_to_one']:.4f}"
        )


def _cmd_plot(a: argparse.Namespace) -> None:
    from nld.data import load_spec
    from training.analyze import analyze_run
    from training.figures import write_figures

    model, data = _load_run(a.run_dir, a.data)
    analysis = labels = None
    if model.cfg.has_energy:
        spec = load_spec(a.spec) if a.spec else None
        _, analysis, labels = analyze_run(model, data, spec=spec)
    elif data is None:
        raise NLDError("an NSDE baseline has no energy: give --data to draw its drift")
    for path in write_figures(model, a.run_dir, a.out, data=data, analysis=analysis, labels=labels):
        print(f"wrote {path}")


def _cmd_import_dynvae(a: argparse.Namespace) -> None:
    import warnings

    from nld import checkpoint
    from nld.dynvae import convert

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        model = convert(a.model, a.settings)
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    checkpoint.save(
        a.out,
        model,
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
    )
    print(f"wrote {path}")


def _cmd_serve(a: argparse.Namespace) -> None:
    from service.cli import serve

    serve(
        a.models,
        a.host,
        a.port,
        a.workers,
        limit_concurrency=a.limit_concurrency,
        graceful_seconds=a.graceful_seconds,
        healthcheck_seconds=a.healthcheck_seconds,
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _stage_parser(
    sub: argparse._SubParsersAction, name: str, help: str, fn: Callable[[argparse.Namespace], None]
) -> argparse.ArgumentParser:
    """A command that runs one of training's final stages on a trained run: RUN_DIR and the
    training data it was trained on."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    p.add_argument("run_dir")
    p.add_argument("--data", required=True, help="the training data (train.npz)")
    p.set_defaults(fn=fn)
    return p


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nld", description="Neural Langevin Dynamics")
    sub = p.add_subparsers(dest="command", required=True)

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

    t = sub.add_parser("train", help="train a model")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--preset", help="a shipped preset (default: `default`)")
    src.add_argument("--config", help="a TOML config file")
    t.add_argument("--data", required=True, help="train.npz (x [N, T, D])")
    t.add_argument("--out", required=True, help="run directory for the checkpoint")
    t.add_argument("--seed", type=int)
    t.add_argument("--iterations", type=int, help="override the preset's iteration count")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=_cmd_train)

    s = sub.add_parser("segment", help="label every step of every sequence by its basin")
    s.add_argument("run_dir")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True, help="labels.npy [N, T]")
    s.set_defaults(fn=_cmd_segment)

    e = sub.add_parser("evaluate", help="accuracy, minima and occupancies on a data set")
    e.add_argument("run_dir")
    e.add_argument("--data", required=True)
    e.add_argument("--spec", help="HMM spec whose stationary distribution is the occupancy truth")
    e.add_argument("--out", help="write the JSON here")
    e.add_argument(
        "--fit-data",
        help="data to fit the state chain over the minima to, e.g. train.npz (default: --data; "
        "its states are never used)",
    )
    e.set_defaults(fn=_cmd_evaluate)

    _stage_parser(
        sub,
        "fit-chain",
        "fit the hidden Markov chain over a trained model's minima (labels by its filter)",
        _cmd_fit_chain,
    )
    from training.pipeline import STAGES

    st = sub.add_parser(
        "stage",
        help="run one stage of training's pipeline on a trained run (as nld train runs them at "
        "its end), and after it the later stages it invalidates",
    )
    st.add_argument("stage", choices=[s.name for s in STAGES], help="the stage to run")
    st.add_argument("run_dir")
    st.add_argument("--data", required=True, help="the training data (train.npz)")
    st.set_defaults(fn=_cmd_stage)
    st.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="train.KEY=VALUE",
        help="a training setting for this run (repeatable), e.g. train.depths_iterations=600",
    )
    # The stage's own commands, as before `nld stage`: the same, with their options.
    sp = _stage_parser(
        sub,
        "separate",
        "= nld stage separate: pull apart the states a trained model merged into one well, "
        "where its split test says so",
        _cmd_stage,
    )
    sp.set_defaults(stage="separate")
    sp.add_argument("--rounds", type=_positive, help="at most this many rounds")
    sp.add_argument(
        "--iterations", dest="separate_iterations", type=_positive, help="iterations per round"
    )
    ck = _stage_parser(
        sub,
        "clock",
        "= nld stage clock: set a trained model's prior clock to its state chain's dwell times",
        _cmd_stage,
    )
    ck.set_defaults(stage="clock")
    dp = _stage_parser(
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
        type=_positive,
        help="calibration steps (default: the run's training settings)",
    )
    for p_ in (st, sp, ck, dp):
        if p_ is not st:
            p_.set_defaults(set=[])
        p_.add_argument("--seed", type=int, help="default: the run's own training seed")
        p_.add_argument("--threads", type=_positive, default=2)
        p_.add_argument("--quiet", action="store_true", help="no progress bars")

    an = sub.add_parser(
        "analyze",
        help="minima, occupancies (a)-(d), saddles, rates and dwell times; stored beside the "
        "model (analysis.safetensors), where the service finds it",
    )
    an.add_argument("run_dir")
    an.add_argument("--data", help="a data set to encode (and score, if it has states)")
    an.add_argument("--spec", help="HMM spec of the data: true occupancies and dwell times")
    an.add_argument("--seed", type=int, default=0)
    an.add_argument("--out", required=True, help="analysis.json")
    an.add_argument("--card", help="also write a Markdown model card here")
    an.set_defaults(fn=_cmd_analyze)

    pl = sub.add_parser("plot", help="figures of the landscape, drift, segmentation, training")
    pl.add_argument("run_dir")
    pl.add_argument("--data", help="a data set to encode and segment")
    pl.add_argument("--spec", help="HMM spec of the data")
    pl.add_argument("--out", required=True, help="directory for the PNG files")
    pl.set_defaults(fn=_cmd_plot)

    im = sub.add_parser("import-dynvae", help="convert a checkpoint of the paper's code")
    im.add_argument("model", help="MODEL.pth (a state dict of tensors)")
    im.add_argument("settings", help="SETTINGS.txt (read as text, never evaluated)")
    im.add_argument("--out", required=True, help="run directory for the converted checkpoint")
    im.set_defaults(fn=_cmd_import_dynvae)

    rp = sub.add_parser("report", help="the paper's tables for our models (trains missing runs)")
    rp.add_argument("--experiment", type=int, choices=[1, 2], required=True)
    rp.add_argument("--seeds", type=_positive, default=5, help="how many seeds per model")
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
        type=_positive,
        default=2,
        help="training runs side by side, each in its own process on an equal share of the "
        "cores (default 2; 1 trains one run at a time)",
    )
    rp.add_argument("--out", required=True, help="directory for report.md and its figures")
    rp.set_defaults(fn=_cmd_report)

    sv = sub.add_parser("serve", help="run the model service (FastAPI on uvicorn)")
    sv.add_argument("--models", help="directory of checkpoint directories (default: models/)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument(
        "--workers", type=int, default=1, help="processes (> 1 needs NLD_SESSION_STORE=redis://)"
    )
    sv.add_argument(
        "--limit-concurrency", type=int, help="connections per worker beyond which 503 answers"
    )
    sv.add_argument(
        "--graceful-seconds",
        type=float,
        default=10.0,
        help="after the drain, how long requests in flight may take before exit",
    )
    sv.add_argument(
        "--healthcheck-seconds",
        type=_positive,
        default=10,
        help="with several workers, one that does not answer its supervisor's ping this long "
        "is killed and restarted (the supervisor handles SIGTERM only after the ping)",
    )
    sv.set_defaults(fn=_cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    fn: Callable[[argparse.Namespace], None] = args.fn
    try:
        fn(args)
    except NLDError as e:
        print(f"nld: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nld: interrupted (state saved where a run was training)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
