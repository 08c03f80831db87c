"""What the benchmark scripts share: a free loopback port, `nld serve` as a process (with
this checkout's code or another's), appending a result row, and the `--set` / `--tag`
options that train a variant of a preset."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nld_serve(
    models: Path, port: int, *, env: dict[str, str] | None = None, source: Path | None = None
) -> subprocess.Popen:
    """`nld serve --models MODELS --port PORT`, quiet, with the code of the checkout `source`
    (its packages first on PYTHONPATH) or of this one."""
    environment = {**os.environ, **(env or {})}
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    command = [
        sys.executable,
        "-c",
        "import sys; from training.cli import main; sys.exit(main(sys.argv[1:]))",
        "serve",
        "--models",
        str(models),
        "--port",
        str(port),
    ]
    return subprocess.Popen(
        command,
        env=environment,
        cwd=source or ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(url: str, timeout: float = 120, poll: float = 0.25) -> None:
    """Until the service at `url` answers /readyz with 200; SystemExit after `timeout` s."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:  # refused, not ready yet (503), or timed out
            pass
        time.sleep(poll)
    raise SystemExit(f"{url} did not become ready in {timeout:.0f} s")


FIXED = ROOT.parent / "shared" / "benchmarks"  # the paper's fixed draws, where a checkout has them


def benchmark_split(experiment: str, split: str) -> Path:
    """The data file of a benchmark split: the paper's fixed draw where this machine has it,
    else a draw of the same spec by `nld data generate` under runs/bench/data (drawn once;
    its Bayes limits are within 0.1 point of the fixed draw's, docs/benchmarks.md)."""
    fixed = FIXED / f"{experiment}-{split}.npz"
    if fixed.is_file():
        return fixed
    drawn = ROOT / "runs" / "bench" / "data" / experiment
    if not (drawn / f"{split}.npz").is_file():
        command = "import sys; from training.cli import main; sys.exit(main(sys.argv[1:]))"
        subprocess.run(
            [
                sys.executable,
                "-c",
                command,
                "data",
                "generate",
                "--spec",
                experiment,
                "--out",
                str(drawn),
            ],
            check=True,
            cwd=ROOT,
        )
    return drawn / f"{split}.npz"


def append_row(path: Path, row: dict[str, Any], *, show: bool = True) -> None:
    """Print `row` (floats rounded) and append it to the JSON-lines file `path`."""
    if show:
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def trained(cfg: Any, data: Any, out: Path) -> tuple[Any, Any, float]:
    """The model of `cfg` trained on `data` into `out` (nld.fitting.restarts.fit; a finished run
    there is reused, an interrupted one resumed), what was fitted beside it (nld.fitted.Fitted)
    and its training seconds."""
    import time

    from nld import checkpoint
    from nld.fitting.restarts import finished, fit, resumable

    if finished(out):
        model, fitted = checkpoint.load(out)
        return model, fitted, float(checkpoint.read_config(out)[1]["train_seconds"])
    t0 = time.perf_counter()
    model, fitted = fit(cfg, data, out, resume=resumable(out), progress_bar=False)
    return model, fitted, time.perf_counter() - t0


def case_parser(doc: str | None, n_cases: int) -> argparse.ArgumentParser:
    """The options of a benchmark over numbered cases: `--cases`, `--threads`, `--table`."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cases", type=int, nargs="+", default=list(range(n_cases)))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--table", action="store_true", help="print the results as a table")
    return p


def add_variant_options(p: argparse.ArgumentParser, example: str) -> None:
    """`--set SECTION.KEY=JSON ...` overrides of the preset and `--tag NAME` for their rows."""
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="SECTION.KEY=JSON",
        help=f"a variant of the preset, e.g. {example} (its rows are marked --tag)",
    )
    p.add_argument("--tag", help="name of the variant in the results (default: the --set list)")


def variant_of(a: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    """The overrides `--set` asked for and the variant's name (None: the preset as it is)."""
    overrides: dict[str, Any] = {}
    for item in a.set:
        key, eq, value = item.partition("=")
        try:
            if not eq or "." not in key:
                raise ValueError("not of the form SECTION.KEY=JSON")
            overrides[key] = json.loads(value)
        except ValueError as e:
            raise SystemExit(f"--set {item!r}: {e} (e.g. model.substeps=2)") from None
    name = a.tag or ",".join(f"{k}={v}" for k, v in sorted(overrides.items())) or None
    return overrides, name


def median_seconds(fn: Callable[[], object], repeats: int = 5) -> float:
    """The median wall time of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
