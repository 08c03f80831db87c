"""Training end to end beside hmmlearn, on the same data and cores: is trying nld cheap?

    python bench/train_speed.py --preset quick --experiments exp1 exp2 --seeds 0 1 2

For each experiment: hmmlearn's GaussianHMM (3 states, full covariances, three EM starts, the
likeliest kept) fitted to the training split, then `nld train --preset P` with each seed (the
loop, every stage, and the analysis `nld train` stores), each in its own process; then the
online accuracy of both on the test split, with the Bayes filter's limit. A row per run goes
to bench/results/train_speed.jsonl: wall seconds, the ratio to hmmlearn's fit in the same
invocation, peak memory (the process's maximum resident set), minima found and accuracies.

`--set SECTION.KEY=VALUE` passes a setting to `nld train` (e.g. `train.holdout=0.1`: early
stopping); the row records it, the iterations the loop ran and the occupancy errors (b)-(d).
`--data DIR` takes the splits from DIR/EXP/{train,test}.npz, drawing them with `nld data
generate` where missing (default: runs/bench/data).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from record import ROOT, append_row

RESULTS = ROOT / "bench" / "results" / "train_speed.jsonl"
NLD = [
    sys.executable,
    "-c",
    "import sys; from training.cli import main; sys.exit(main(sys.argv[1:]))",
]
HMM = """
import json, sys
from nld.data import load, load_spec
from training.baseline import HMM_STARTS, hmm_baseline
spec = load_spec(sys.argv[1])
train, test = load(sys.argv[2]), load(sys.argv[3])
print(json.dumps(hmm_baseline(train, test, len(spec.means), spec.stationary(), starts=HMM_STARTS)))
"""


def timed(command: list[str], threads: int) -> tuple[float, float, str]:
    """Wall seconds, peak resident memory (MB) and stdout of `command` in its own process."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command[3:])}")
    return seconds, usage.ru_maxrss / 1024, out


def splits(data: Path, experiment: str) -> tuple[Path, Path]:
    where = data / experiment
    if not (where / "test.npz").is_file():
        subprocess.run(
            [*NLD, "data", "generate", "--spec", experiment, "--out", str(where)],
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    return where / "train.npz", where / "test.npz"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick")
    p.add_argument("--experiments", nargs="+", default=["exp1", "exp2"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", type=Path, default=ROOT / "runs" / "bench" / "data")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a setting of the preset, as `nld train --set` (repeatable)",
    )
    p.add_argument("--keep", type=Path, help="keep the runs here (DIR/EXP-PRESET-SEED)")
    a = p.parse_args()
    settings = [v for kv in a.set for v in ("--set", kv)]
    for experiment in a.experiments:
        train, test = splits(a.data, experiment)
        hmm_seconds, hmm_mb, out = timed(
            [sys.executable, "-c", HMM, experiment, str(train), str(test)], a.threads
        )
        hmm = json.loads(out)
        base: dict[str, Any] = {
            "experiment": experiment,
            "data": str(train),
            "threads": a.threads,
            "hmmlearn_seconds": hmm_seconds,
            "hmmlearn_fit_seconds": hmm["fit_seconds"],
            "hmmlearn_peak_mb": hmm_mb,
            "hmmlearn_accuracy": hmm["accuracy_mean"],
        }
        for seed in a.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                run = Path(tmp) / "run"
                if a.keep is not None:
                    run = a.keep / f"{experiment}-{a.preset}-{seed}"
                    shutil.rmtree(run, ignore_errors=True)
                argv = ["train", "--preset", a.preset, "--data", str(train), "--out", str(run)]
                seconds, mb, _ = timed(
                    [*NLD, *argv, *settings, "--seed", str(seed), "--quiet"], a.threads
                )
                meta = json.loads((run / "config.json").read_text())["meta"]
                evaluate = [*NLD, "evaluate", str(run), "--data", str(test), "--spec", experiment]
                res = json.loads(timed(evaluate, a.threads)[2])
            append_row(
                RESULTS,
                {
                    **base,
                    "preset": a.preset,
                    "settings": a.set,
                    "seed": seed,
                    "iterations": meta["iteration"],
                    "early_stop": meta.get("early_stop"),
                    "seconds": seconds,
                    "ratio_to_hmmlearn": seconds / hmm_seconds,
                    "peak_mb": mb,
                    "n_minima": res.get("n_minima"),
                    "accuracy": res.get("accuracy_mean"),
                    "offline_accuracy": res.get("offline_accuracy_mean"),
                    **{
                        f"occupancy_{k}_l1": res.get(f"occupancy_{k}_l1")
                        for k in ("zeroth", "second", "quadrature")
                    },
                    "bayes_limit_online": res.get("bayes_limit_online"),
                },
            )


if __name__ == "__main__":
    main()
