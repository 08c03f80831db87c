"""Real recordings from CSV to labels: smartwatch motion (BasicMotions), end to end.

    python bench/motions.py --out DIR [--preset default] [--seed 0] [--threads 2]

BasicMotions (the UEA archive, as the sktime package ships it: its wheel is fetched from the
package registry and the two data files read out of it) holds 80 recordings of 100 steps
(10 Hz) of a smartwatch's accelerometer and gyroscope (6 channels), 20 of each of four
activities: standing, walking, running, badminton. The script strings recordings together
into sequences of three (the activity changes at most every 100 steps, to another chosen at
random) and writes them as CSV tables, one row per step: `seq`, `time`, the six channels and
the `activity` (which nld is not shown). Train from the TRAIN recordings, test from the TEST
ones. Then, as a user would:

    nld train --data DIR/train.csv --sequence-column seq --columns ax,ay,az,gx,gy,gz --out DIR/run
    nld segment DIR/run --data DIR/test.csv --sequence-column seq --out DIR/labels.csv --offline

and scores the labels against the activities (many-to-one, and one-to-one where the states
number the activities), and the same for their regimes (the `regime` column: the states'
metastable groups), beside hmmlearn's GaussianHMM (4 states, full covariances, best of 3
EM starts) on the same files and a classifier trained with the activities on windows of the
last 10 steps (bench/regimes.py's supervised ceiling). A row goes to bench/results/motions.jsonl.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from record import append_row

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "motions.jsonl"
WHEEL = "sktime==1.2.0"
INSIDE = "sktime/datasets/data/{name}/{name}_{split}.ts"
CHANNELS = ["ax", "ay", "az", "gx", "gy", "gz"]
PER_SEQUENCE = 3
FILES = ("train.csv", "test.csv")


def _read_ts(text: str) -> tuple[list[np.ndarray], list[str]]:
    """A .ts file's series (each [T, D]) and class labels."""
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith(("#", "@"))]
    series, labels = [], []
    for ln in lines:
        *dims, label = ln.split(":")
        series.append(np.array([[float(v) for v in d.split(",")] for d in dims]).T)
        labels.append(label.strip())
    return series, labels


def _fetch_ts(cache: Path, name: str, split: str) -> tuple[list[np.ndarray], list[str]]:
    """A UEA data set's split (TRAIN or TEST) as the sktime wheel ships it (fetched from the
    package registry into `cache` once)."""
    cache.mkdir(parents=True, exist_ok=True)
    if not list(cache.glob("sktime-*.whl")):
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(cache)]
        subprocess.run(pip, check=True)
    wheel = next(cache.glob("sktime-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        return _read_ts(z.read(INSIDE.format(name=name, split=split)).decode())


def _table(series: list[np.ndarray], labels: list[str], n_seq: int, seed: int) -> str:
    """CSV of n_seq sequences, each PER_SEQUENCE recordings of different activities."""
    rng = np.random.default_rng(seed)
    by = {a: np.flatnonzero(np.array(labels) == a) for a in sorted(set(labels))}
    rows = ["seq,time," + ",".join(CHANNELS) + ",activity"]
    for s in range(n_seq):
        activity = rng.choice(list(by))
        t = 0
        for _ in range(PER_SEQUENCE):
            rec = series[rng.choice(by[activity])]  # [T, D]
            for step in rec:
                rows.append(
                    f"s{s},{t / 10:.1f}," + ",".join(f"{v:.6f}" for v in step) + f",{activity}"
                )
                t += 1
            activity = rng.choice([a for a in by if a != activity])
    return "\n".join(rows) + "\n"


def _scores(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from nld.analysis import many_to_one, match_labels

    k = int(labels.max()) + 1
    out = {"many_to_one": float(many_to_one(labels[None], truth[None]))}
    if k == len(set(truth.tolist())):
        out["matched"] = float(match_labels(labels[None], truth[None], k).accuracy_mean)
    return out


def _head_scores(run: Path, out: Path, truth: np.ndarray) -> dict:
    """Many-to-one accuracy of what the basin head alone says (online), of the chain on its
    classes (nld.head_chain; offline) and of a state chain of Gaussian emissions over the same
    minima (nld.state_chain; online and offline), each fitted to the training file, whichever
    chain the model labels by: what a Gaussian chain gives or takes on these data."""
    from nld import checkpoint, markov
    from nld.data.recordings import as_recordings
    from nld.data.tables import TableOptions
    from nld.head_chain import fit_head_chain
    from nld.inference import read_path
    from nld.state_chain import fit_state_chain

    model, fitted = checkpoint.load(run)
    if fitted.classes < 2:
        return {}
    opts = TableOptions(columns=CHANNELS, sequence_column="seq")
    train, test = (np.stack(as_recordings(out / f, table=opts).arrays) for f in FILES)
    _, said_train = read_path(model, fitted, train, chain=False)
    _, said = read_path(model, fitted, test, chain=False)
    assert said_train is not None and said is not None
    chain = fit_head_chain(said_train, fitted.classes)
    positions = fitted.minima.double().numpy()
    gauss = fit_state_chain(model.emissions(positions), train, positions)
    ll = gauss.loglik(test)
    labels = {
        "head_online": said,
        "head_chain_offline": chain.smooth(said).argmax(-1),
        "state_chain_online": gauss.labels(test),
        "state_chain_offline": markov.smooth(gauss.log_init, gauss.log_trans, ll).argmax(-1),
    }
    return {
        f"{k}_many_to_one": round(_scores(v.ravel(), truth)["many_to_one"], 4)
        for k, v in labels.items()
    }


def datasets(out: Path) -> tuple[Any, Any]:
    """The training and test tables written to `out`, as nld Datasets with the activities as
    their states."""
    import pyarrow.csv as pcsv

    from nld.data import Dataset
    from nld.data.recordings import as_recordings
    from nld.data.tables import TableOptions

    opts = TableOptions(columns=CHANNELS, sequence_column="seq")
    sets = []
    for f in FILES:
        x = np.stack(as_recordings(out / f, table=opts).arrays)
        names = pcsv.read_csv(out / f).to_pydict()["activity"]
        codes = sorted(set(names))
        sets.append(Dataset(x, np.array([codes.index(v) for v in names]).reshape(x.shape[:2])))
    return sets[0], sets[1]


def _ceiling(out: Path) -> float:
    """Accuracy on the test file of a classifier trained with the activities of the training
    file on windows of its last steps (bench/regimes.py's supervised ceiling)."""
    from regimes import ceiling

    return ceiling(*datasets(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-sequences", type=int, default=200)
    p.add_argument("--test-sequences", type=int, default=100)
    a = p.parse_args()

    cache = Path(tempfile.gettempdir()) / "nld-bench-motions"
    data = {s: _fetch_ts(cache, "BasicMotions", s) for s in ("TRAIN", "TEST")}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "train.csv").write_text(_table(*data["TRAIN"], a.train_sequences, a.seed))
    (a.out / "test.csv").write_text(_table(*data["TEST"], a.test_sequences, a.seed + 1))
    run = a.out / "run"
    common = ["--sequence-column", "seq", "--columns", ",".join(CHANNELS)]
    nld = [str(Path(sys.executable).parent / "nld")]
    wall = a.out / "train_wall_seconds.txt"  # kept beside the run, for a re-run that reuses it
    if not (run / "config.json").exists():
        t0 = time.perf_counter()
        train = ["train", "--data", str(a.out / "train.csv"), "--out", str(run)]
        extra = ["--preset", a.preset, "--seed", str(a.seed), "--set", f"train.threads={a.threads}"]
        subprocess.run([*nld, *train, *common, *extra, "--quiet"], check=True, cwd=ROOT)
        wall.write_text(f"{time.perf_counter() - t0:.1f}\n")
    train_s = float(wall.read_text()) if wall.exists() else None
    row: dict = {
        "preset": a.preset,
        "seed": a.seed,
        "threads": a.threads,
        "train_seconds": None if train_s is None else round(train_s, 1),
    }
    import pyarrow.csv as pcsv

    truth_table = pcsv.read_csv(a.out / "test.csv").to_pydict()
    names = sorted(set(truth_table["activity"]))
    truth = np.array([names.index(v) for v in truth_table["activity"]])
    for how, flag in (("online", []), ("offline", ["--offline"])):
        out = a.out / f"labels-{how}.csv"
        seg = ["segment", str(run), "--data", str(a.out / "test.csv"), "--out", str(out)]
        done = subprocess.run(
            [*nld, *seg, *common, *flag], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            row[f"{how}_error"] = done.stderr.strip().splitlines()[-1]
            continue
        table = pcsv.read_csv(out).to_pydict()
        labels = np.array(table["label"])
        row.update({f"{how}_{k}": round(v, 4) for k, v in _scores(labels, truth).items()})
        row["n_states"] = int(labels.max()) + 1
        if "regime" in table:  # the states' metastable groups (nld.regimes)
            regimes = np.array(table["regime"])
            scores = _scores(regimes, truth).items()
            row.update({f"{how}_regime_{k}": round(v, 4) for k, v in scores})
            row["n_regimes"] = int(regimes.max()) + 1

    row.update(_head_scores(run, a.out, truth))
    row["supervised"] = round(_ceiling(a.out), 4)
    from hmmlearn.hmm import GaussianHMM

    from nld.data.recordings import as_recordings
    from nld.data.tables import TableOptions

    opts = TableOptions(columns=CHANNELS, sequence_column="seq")
    fitted_on = as_recordings(a.out / "train.csv", table=opts)
    test = as_recordings(a.out / "test.csv", table=opts)
    flat = np.concatenate(fitted_on.arrays)
    t0 = time.perf_counter()
    fits = []
    for s in range(3):
        hmm = GaussianHMM(
            n_components=len(names), covariance_type="full", n_iter=100, random_state=s
        )
        hmm.fit(flat, [len(x) for x in fitted_on.arrays])
        fits.append((hmm.score(flat, [len(x) for x in fitted_on.arrays]), hmm))
    hmm = max(fits, key=lambda f: f[0])[1]
    row["hmmlearn_seconds"] = round(time.perf_counter() - t0, 1)
    test_flat = np.concatenate(test.arrays)
    lengths = [len(x) for x in test.arrays]
    smoothed = hmm.predict_proba(test_flat, lengths).argmax(1)
    row.update({f"hmmlearn_offline_{k}": round(v, 4) for k, v in _scores(smoothed, truth).items()})
    row["command"] = "python bench/motions.py " + " ".join(sys.argv[1:])
    append_row(RESULTS, row)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
