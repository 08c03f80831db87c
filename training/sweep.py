"""`nld sweep`: the training runs of a sweep file (`training.sweep_spec`), each trained or
reused, scored on the sweep's test recordings, and gathered into one table.

With Ray installed (`pip install nld[cluster]`) every run is a Ray task asking for the file's
`num_cpus` and `num_gpus`: on a Ray started here (the default) or on a running cluster
(`address`, as `ray start --head` prints it). Without Ray the runs go one after another in
this process. Either way a run that fails is reported with its error and the others go on; a
run finished by an earlier invocation is reused, a run cut short is continued.

The table goes to OUT/sweep.csv and OUT/sweep.md, with the command that made it; each row is
also kept in its run's directory (sweep-row.json) as soon as the run ends.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nld.errors import NLDError
from nld.io import write_bytes, write_json
from training.markdown import table_head
from training.schedule import Job, ray_or_none, run_jobs
from training.sweep_spec import RUN_KEYS, Run, Sweep, Table

ROW = "sweep-row.json"  # a finished run's row, in its directory
COLUMNS = (
    "run",
    "status",
    "preset",
    "seed",
    "settings",
    "seconds",
    "n_minima",
    "n_regimes",
    "accuracy_mean",
    "regime_accuracy_mean",
    "error",
)
SCORES = ("n_minima", "n_regimes", "accuracy_mean", "regime_accuracy_mean")


def run_one(run: Run, test: Path | None, table: Table, threads: int | None) -> dict[str, Any]:
    """Train `run` (or continue it, or reuse it when an earlier invocation finished it) and
    score it on `test`: its row of the table. Module level: Ray ships it to its workers."""
    from nld.data.tables import TableOptions
    from nld.fitting.config import with_overrides
    from nld.fitting.restarts import finished, resumable
    from training.run import train_run

    options = TableOptions(**table.model_dump())
    kept = run.run_dir / ROW
    if kept.is_file() and finished(run.run_dir):
        row = {**json.loads(kept.read_text()), "status": "reused"}
        if test is not None and row.get("test") != str(test):  # scored on other recordings
            row.update(
                {k: None for k in SCORES}, test=str(test), **_score(run.run_dir, test, options)
            )
            write_json(kept, {**row, "status": "trained"})
        return row
    t0 = time.perf_counter()
    cfg = run.config
    if threads is not None and "train.threads" not in run.given:
        cfg = with_overrides(cfg, {"train.threads": threads})
    resume = resumable(run.run_dir)
    # Restart candidates one after another: the run holds the cores it asked the scheduler for.
    train_run(
        cfg, run.data, run.run_dir, table=options, resume=resume, progress=False, processes=False
    )
    row = {**_describe(run), "status": "trained", "seconds": round(time.perf_counter() - t0, 1)}
    if test is not None:
        row.update(test=str(test), **_score(run.run_dir, test, options))
    write_json(kept, row)
    return row


def _describe(run: Run) -> dict[str, Any]:
    settings = {k: v for k, v in run.given.items() if k not in RUN_KEYS}
    return {
        "run": run.name,
        "preset": run.config.name,
        "seed": run.config.train.seed,
        "settings": settings,
        "data": str(run.data),
        "run_dir": str(run.run_dir),
    }


def _score(run_dir: Path, test: Path, options: Any) -> dict[str, Any]:
    from nld import checkpoint
    from training.cli.common import run_data
    from training.evaluate import evaluate

    model, fitted = checkpoint.load(run_dir)
    meta = checkpoint.read_config(run_dir)[1]
    data = run_data(str(test), model, meta, options)
    record = evaluate(model, fitted, data).record
    return {k: record[k] for k in SCORES if k in record}


def run_sweep(
    sweep: Sweep,
    *,
    use_ray: bool | None = None,
    address: str | None = None,
    command: str = "",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Every run of `sweep`, through Ray unless `use_ray` is False (None: when Ray is
    installed); writes OUT/sweep.csv and OUT/sweep.md and returns the rows."""
    check(sweep, here=address is None)
    ray = ray_or_none(use_ray, "the runs go one after another in this process")
    cpus = sweep.resources.num_cpus
    threads = None if ray is None else max(1, math.floor(cpus))  # here: each run's own
    jobs = [Job(r.name, run_one, (r, sweep.test, sweep.table, threads)) for r in sweep.runs]
    runs = {r.name: r for r in sweep.runs}
    rows: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(jobs), desc="sweep", unit="run", disable=not progress)
    outcomes = run_jobs(
        jobs, ray=ray, address=address, num_cpus=cpus, num_gpus=sweep.resources.num_gpus
    )
    for done in outcomes:
        run = runs[done.job.key]
        row = done.result if done.error is None else _failed(run, done.error)
        rows[run.name] = row
        bar.set_postfix_str(f"{run.name}: {row['status']}")
        bar.update()
    bar.close()
    ordered = [rows[run.name] for run in sweep.runs]
    _write_table(sweep, ordered, command)
    return ordered


def check(sweep: Sweep, *, here: bool) -> None:
    """What would make every run fail, found before any trains: a data or test file that its
    table options cannot read, test recordings with other channels than the data, and (`here`:
    the runs go to this machine) a device torch cannot see. NLDError naming it."""
    from nld.data.recordings import as_recordings
    from nld.data.tables import TableOptions
    from nld.device import resolve_device

    options = TableOptions(**sweep.table.model_dump())
    channels = {}
    for path in dict.fromkeys(
        [*(r.data for r in sweep.runs), *([sweep.test] if sweep.test else [])]
    ):
        channels[path] = as_recordings(path, where=str(path), table=options).dim
    if sweep.test is not None:
        other = {d for p, d in channels.items() if p != sweep.test and d != channels[sweep.test]}
        if other:
            raise NLDError(
                f"{sweep.path}: test {sweep.test.name} has {channels[sweep.test]} channels, the "
                f"data {', '.join(map(str, sorted(other)))}"
            )
    if here:
        for run in sweep.runs:
            try:
                resolve_device(run.config.train.device)
            except NLDError as e:
                raise NLDError(f"{sweep.path}: run {run.name}: {e}") from None


def _failed(run: Run, error: str) -> dict[str, Any]:
    return {**_describe(run), "status": "failed", "error": error}


def _cell(value: Any) -> str:
    """A Markdown table cell (an error message on one line, its bars escaped)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return " ".join(str(value).split()).replace("|", "\\|")


def _varying(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with `settings` as text of the settings in which the runs differ."""
    keys = {k for r in rows for k in r["settings"]}
    differ = sorted(k for k in keys if len({json.dumps(r["settings"].get(k)) for r in rows}) > 1)
    return [
        {
            **r,
            "settings": ", ".join(
                f"{k}={json.dumps(r['settings'][k])}" for k in differ if k in r["settings"]
            ),
        }
        for r in rows
    ]


def _write_table(sweep: Sweep, rows: list[dict[str, Any]], command: str) -> None:
    rows = _varying(rows)
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=[*COLUMNS, "run_dir"], extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_bytes(sweep.out / "sweep.csv", text.getvalue().encode())
    failed = sum(r["status"] == "failed" for r in rows)
    lines = [
        f"# Sweep {sweep.path.name}",
        "",
        f"Made by `{command or 'nld sweep ' + str(sweep.path)}`: {len(rows)} runs, "
        f"{sum(r['status'] == 'trained' for r in rows)} trained, "
        f"{sum(r['status'] == 'reused' for r in rows)} reused, {failed} failed"
        + (f"; scored on {sweep.test.name}" if sweep.test else "")
        + ".",
        "",
        *table_head(*COLUMNS),
        *("| " + " | ".join(_cell(r.get(c)) for c in COLUMNS) + " |" for r in rows),
        "",
    ]
    write_bytes(sweep.out / "sweep.md", "\n".join(lines).encode())
