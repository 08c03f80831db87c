"""`nld segment`, `nld evaluate`, `nld analyze`, `nld plot`: what a trained model says
about data and about its landscape."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nld.errors import NLDError
from training.cli.common import add_device_option, add_table_options, load_run, table_options


def _cmd_segment(a: argparse.Namespace) -> None:
    """Label every step of a data file with the model's own landscape (its stored analysis),
    as the estimator and the service do."""
    import dataclasses

    import numpy as np

    import nld
    from nld import analysis_file, checkpoint
    from nld.data.recordings import as_recordings
    from nld.io import atomic_write
    from nld.labels_out import FORMATS, segment_table, step_table, write_steps

    out = Path(a.out)
    if out.suffix not in (*FORMATS, ".npy"):
        raise NLDError(f"--out {out}: labels are written as {', '.join(FORMATS)} or .npy")
    checkpoint.read_config(a.run_dir)  # a missing or broken run is named before any work
    if not (Path(a.run_dir) / analysis_file.FILE).is_file():
        print("analysing the model's landscape (none stored beside it) ...", file=sys.stderr)
    model = nld.load(a.run_dir, device=a.device)
    options = table_options(a)
    if options.columns is None:  # a table's channels: those the model was trained on
        options = dataclasses.replace(options, columns=model.feature_names_in_)
    recs = as_recordings(a.data, where=a.data, table=options)
    online = a.offline is None
    found = model.segment(recs, online=online, method=a.offline or "smooth")

    def each(values: Any) -> list[np.ndarray]:  # per recording
        return [values] if recs.kind == "one" else list(values)

    if out.suffix == ".npy":
        if a.segments:
            raise NLDError("--segments writes a table: --out as .csv, .tsv, .parquet or .npz")
        if recs.kind == "list":
            raise NLDError("recordings of different lengths: write --out as .csv, .parquet or .npz")
        atomic_write(out, lambda f: np.save(f, found.labels))
    else:
        labels = each(found.labels)
        proba = None if found.probabilities is None else each(found.probabilities)
        if a.segments:
            table = segment_table(recs, labels, proba, model.regime_of_state_)
        else:
            table = step_table(recs, labels, each(found.latent), proba, model.regime_of_state_)
        write_steps(out, table)
    how = "online" if online else f"offline ({a.offline})"
    regimes = "" if model.n_regimes_ is None else f" in {model.n_regimes_} regimes"
    print(
        f"wrote {out}: {recs.steps} steps of {len(recs.arrays)} recording(s), {how}, "
        f"{model.n_states_} states{regimes}"
    )


def _cmd_evaluate(a: argparse.Namespace) -> None:
    from nld import checkpoint
    from nld.data import bayes_limits, load_spec
    from nld.io import write_json
    from training.cli.common import run_data
    from training.evaluate import evaluate

    table = table_options(a)
    model, fitted, data = load_run(a.run_dir, a.data, table, device=a.device)
    spec = load_spec(a.spec) if a.spec else None
    truth = None if spec is None else spec.stationary()
    fit_data = None
    if a.fit_data is not None:
        meta = checkpoint.read_config(a.run_dir)[1]
        fit_data = run_data(a.fit_data, model, meta, table, training=True)
    if spec is not None and len(spec.means[0]) != data.dim:
        raise NLDError(
            f"--spec {a.spec} draws {len(spec.means[0])} channels; {a.data} has {data.dim}"
        )
    res = evaluate(model, fitted, data, true_occupancy=truth, fit_data=fit_data).record
    if spec is not None and data.states is not None:  # what the true HMM itself reaches
        limits = bayes_limits(spec, data.x, data.states)
        res["bayes_limit_online"] = limits["online_filter_accuracy_mean"]
        res["bayes_limit_offline"] = limits["offline_smoother_accuracy_mean"]
    if a.out:
        write_json(a.out, res)
    print(json.dumps({k: v for k, v in res.items() if k != "minima"}, indent=1))


def _cmd_analyze(a: argparse.Namespace) -> None:
    from nld import analysis_file, checkpoint
    from nld.data import load_spec
    from nld.io import write_json
    from training.analyze import analyze_run

    model, fitted, data = load_run(a.run_dir, a.data, table_options(a), device=a.device)
    spec = load_spec(a.spec) if a.spec else None
    found = analyze_run(model, fitted, data, spec=spec, seed=a.seed)
    res, analysis = found.record, found.analysis
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

    model, fitted, data = load_run(a.run_dir, a.data, table_options(a))
    analysis = labels = None
    if model.cfg.has_energy:
        spec = load_spec(a.spec) if a.spec else None
        found = analyze_run(model, fitted, data, spec=spec)
        analysis, labels = found.analysis, found.labels
    elif data is None:
        raise NLDError("an NSDE baseline has no energy: give --data to draw its drift")
    for path in write_figures(model, a.run_dir, a.out, data=data, analysis=analysis, labels=labels):
        print(f"wrote {path}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("segment", help="label every step of every recording by its state")
    s.add_argument("run_dir")
    s.add_argument("--data", required=True, help="a data file (.npz, .npy, .csv, .tsv, .parquet)")
    s.add_argument(
        "--out",
        required=True,
        help="a table per step (.csv, .tsv, .parquet, .npz: time, sequence, label, each state's "
        "probability, latent position), or .npy (the labels alone, [N, T])",
    )
    s.add_argument(
        "--offline",
        nargs="?",
        const="smooth",
        choices=("smooth", "viterbi"),
        help="label from the whole recording: each step's most probable state (smooth, the "
        "default) or the most probable path (viterbi); without it, online (causal)",
    )
    s.add_argument(
        "--segments",
        action="store_true",
        help="one row per run of one state (sequence, start, end, steps, state, times, mean "
        "probability) instead of one per step",
    )
    add_table_options(s)
    add_device_option(s)
    s.set_defaults(fn=_cmd_segment)

    e = sub.add_parser("evaluate", help="accuracy, minima and occupancies on a data set")
    e.add_argument("run_dir")
    e.add_argument(
        "--data", required=True, help="a data file or table (states from it, if it has them)"
    )
    e.add_argument("--spec", help="HMM spec whose stationary distribution is the occupancy truth")
    e.add_argument("--out", help="write the JSON here")
    e.add_argument(
        "--fit-data",
        help="data to fit the state chain over the minima to, e.g. train.npz (default: --data; "
        "its states are never used)",
    )
    add_table_options(e)
    add_device_option(e)
    e.set_defaults(fn=_cmd_evaluate)

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
    add_table_options(an)
    add_device_option(an)
    an.set_defaults(fn=_cmd_analyze)

    pl = sub.add_parser("plot", help="figures of the landscape, drift, segmentation, training")
    pl.add_argument("run_dir")
    pl.add_argument("--data", help="a data set to encode and segment")
    pl.add_argument("--spec", help="HMM spec of the data")
    pl.add_argument("--out", required=True, help="directory for the PNG files")
    add_table_options(pl)
    pl.set_defaults(fn=_cmd_plot)
