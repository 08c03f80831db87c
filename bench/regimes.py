"""States that are not one Gaussian each: how many states and regimes the `default` preset
finds, and how well it labels them, beside hmmlearn and a supervised classifier.

    python bench/regimes.py --cases 0 1 2 [--threads 2]
    python bench/regimes.py --table

Cases, each with known regimes and none from ../shared:
  0 ar1       three regimes that differ only by their dynamics: 2-D AR(1) processes with the
              same N(0, I) marginal and lag-one correlations 0.95, 0 and -0.9, switching by a
              Markov chain (mean dwell 40 steps)
  1 manifold  four states on a curved surface in 3-D: each state's points lie along an arc of
              a wavy ring (radius 3, height sin 2 theta) and drift along it, with noise 0.15
  2 vowels    real speech: the JapaneseVowels recordings (12 cepstral channels, 9 speakers;
              the UEA archive as the sktime wheel ships it), four speakers, each sequence
              three blocks of one speaker's utterances strung together (regimes = speakers)
BasicMotions, the other real case, has its own script (bench/motions.py: CSV in, labels out).

For each: nld's number of minima and of regimes (nld.regimes), its labels' accuracy online and
offline, at the level of its states (many-to-one) and of its regimes (one-to-one where it finds
as many regimes as there are), hmmlearn's GaussianHMM (told the number of regimes, full
covariances, best of 3 EM starts, smoothed: the floor) and a gradient-boosted classifier
trained with the labels on windows of the last 10 steps (the ceiling). Rows go to
bench/results/regimes.jsonl; runs to runs/regimes/.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from record import append_row, case_parser

from nld.data import Dataset
from nld.io import read_jsonl
from training.markdown import table_head

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "regimes.jsonl"
WINDOW = 10  # steps the supervised ceiling sees


def _markov_states(rng: np.random.Generator, k: int, n: int, length: int, dwell: float):
    """Regime paths [n, length] of a chain that stays with probability 1 - 1/dwell, else
    moves to another regime at random."""
    states = np.empty((n, length), dtype=np.int64)
    states[:, 0] = rng.integers(k, size=n)
    for t in range(1, length):
        move = rng.random(n) < 1 / dwell
        other = (states[:, t - 1] + rng.integers(1, k, size=n)) % k
        states[:, t] = np.where(move, other, states[:, t - 1])
    return states


def ar1(n: int, seed: int, length: int = 200) -> Dataset:
    rng = np.random.default_rng(seed)
    phi = np.array([0.95, 0.0, -0.9])
    states = _markov_states(rng, 3, n, length, 40.0)
    x = np.empty((n, length, 2))
    x[:, 0] = rng.normal(size=(n, 2))
    for t in range(1, length):
        p = phi[states[:, t]][:, None]
        x[:, t] = p * x[:, t - 1] + np.sqrt(1 - p**2) * rng.normal(size=(n, 2))
    return Dataset(x.astype(np.float32), states)


def manifold(n: int, seed: int, length: int = 150) -> Dataset:
    rng = np.random.default_rng(seed)
    states = _markov_states(rng, 4, n, length, 25.0)
    centre = states * (np.pi / 2)  # each state owns a quarter of the ring
    offset = np.empty((n, length))
    offset[:, 0] = rng.uniform(-0.6, 0.6, size=n)
    for t in range(1, length):  # a drift along the arc, kept inside the state's quarter
        offset[:, t] = np.clip(0.9 * offset[:, t - 1] + 0.25 * rng.normal(size=n), -0.7, 0.7)
    theta = centre + offset
    x = np.stack([3 * np.cos(theta), 3 * np.sin(theta), np.sin(2 * theta)], -1)
    x += 0.15 * rng.normal(size=x.shape)
    return Dataset(x.astype(np.float32), states)


SPEAKERS = (0, 2, 4, 6)  # of the nine, by index
PER_BLOCK = 3  # utterances of one speaker in a row
BLOCKS = 3  # speakers per sequence


def _utterances(split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """JapaneseVowels' utterances [T_i, 12] and speakers (0..8) of a split."""
    import tempfile

    from motions import _fetch_ts

    series, labels = _fetch_ts(
        Path(tempfile.gettempdir()) / "nld-bench-motions", "JapaneseVowels", split
    )
    return series, np.array([int(v) - 1 for v in labels])


def vowels(n: int, seed: int, split: str = "TRAIN") -> Dataset:
    """n sequences of BLOCKS blocks, each PER_BLOCK utterances of one of SPEAKERS (never the
    same speaker twice in a row), cut to one length (the shortest sequence drawn)."""
    rng = np.random.default_rng(seed)
    series, who = _utterances(split)
    by = {s: np.flatnonzero(who == s) for s in SPEAKERS}
    seqs, labs = [], []
    for _ in range(n):
        speaker = rng.choice(SPEAKERS)
        xs, ys = [], []
        for _ in range(BLOCKS):
            for i in rng.choice(by[speaker], PER_BLOCK, replace=False):
                xs.append(series[i])
                ys.append(np.full(len(series[i]), SPEAKERS.index(speaker)))
            speaker = rng.choice([s for s in SPEAKERS if s != speaker])
        seqs.append(np.concatenate(xs))
        labs.append(np.concatenate(ys))
    length = min(len(s) for s in seqs)
    x = np.stack([s[:length] for s in seqs]).astype(np.float32)
    return Dataset(x, np.stack([y[:length] for y in labs]))


CASES: list[tuple[str, Callable[..., Dataset], int, int]] = [
    # (name, generator(n, seed, ...), training sequences, regimes)
    ("ar1", ar1, 600, 3),
    ("manifold", manifold, 600, 4),
    ("vowels", vowels, 300, 4),
]


def splits(case: int) -> tuple[Dataset, Dataset]:
    name, make, n, _ = CASES[case]
    if name == "vowels":
        return make(n, 1, "TRAIN"), make(100, 2, "TEST")
    return make(n, 1), make(200, 2)


def _scores(labels: np.ndarray, truth: np.ndarray, k: int) -> dict[str, float]:
    from nld.analysis import many_to_one, match_labels

    out = {"many_to_one": float(many_to_one(labels, truth))}
    if int(labels.max()) + 1 == k:
        out["matched"] = float(match_labels(labels, truth, k).accuracy_mean)
    return out


def windows(x: np.ndarray) -> np.ndarray:
    """The last WINDOW steps before and at each step, flattened: [N * T, WINDOW * D] (the
    first steps padded with the first)."""
    pad = np.concatenate([np.repeat(x[:, :1], WINDOW - 1, 1), x], 1)
    cols = [pad[:, i : i + x.shape[1]] for i in range(WINDOW)]
    return np.concatenate(cols, -1).reshape(-1, WINDOW * x.shape[-1])


def ceiling(train: Dataset, test: Dataset) -> float:
    """Accuracy of a classifier trained with the labels on causal windows."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    assert train.states is not None and test.states is not None
    clf = HistGradientBoostingClassifier(random_state=0).fit(
        windows(train.x), train.states.reshape(-1)
    )
    return float(clf.score(windows(test.x), test.states.reshape(-1)))


def floor(train: Dataset, test: Dataset, k: int) -> float:
    """Matched accuracy of hmmlearn's GaussianHMM told k states, best of 3 EM starts,
    smoothed."""
    from hmmlearn.hmm import GaussianHMM

    from nld.analysis import match_labels

    assert test.states is not None
    flat = train.x.reshape(-1, train.x.shape[-1]).astype(np.float64)
    lengths = [train.length] * train.n_sequences
    fits = []
    for s in range(3):
        hmm = GaussianHMM(n_components=k, covariance_type="full", n_iter=100, random_state=s)
        hmm.fit(flat, lengths)
        fits.append((hmm.score(flat, lengths), hmm))
    hmm = max(fits, key=lambda f: f[0])[1]
    test_flat = test.x.reshape(-1, test.x.shape[-1]).astype(np.float64)
    labels = hmm.predict_proba(test_flat, [test.length] * test.n_sequences).argmax(1)
    return float(match_labels(labels.reshape(test.states.shape), test.states, k).accuracy_mean)


def run(case: int, threads: int) -> dict:
    import nld

    name, _, _, k = CASES[case]
    train, test = splits(case)
    assert test.states is not None
    out = ROOT / "runs" / "regimes" / name
    wall = out.with_suffix(".wall_seconds")  # of the training, kept for a re-run that reuses it
    if (out / "config.json").exists():
        model = nld.load(out)
    else:
        t0 = time.perf_counter()
        model = nld.NLD("default", threads=threads, progress=False, run_dir=out).fit(train.x)
        wall.write_text(f"{time.perf_counter() - t0:.1f}\n")
    train_s = float(wall.read_text()) if wall.exists() else None
    row: dict = {"case": case, "name": name, "regimes": k, "n_minima": model.n_states_}
    row["n_regimes"] = model.n_regimes_
    for how, online in (("online", True), ("offline", False)):
        try:
            labels = model.predict(test.x, online=online)
        except nld.NLDError as e:
            row[f"{how}_error"] = str(e)
            continue
        row.update({f"{how}_{m}": round(v, 4) for m, v in _scores(labels, test.states, k).items()})
        if model.regime_of_state_ is not None:
            regimes = model.regime_of_state_[labels]
            scores = _scores(regimes, test.states, k)
            row.update({f"{how}_regime_{m}": round(v, 4) for m, v in scores.items()})
    row["hmmlearn_matched"] = round(floor(train, test, k), 4)
    row["supervised"] = round(ceiling(train, test), 4)
    row["train_seconds"] = train_s  # wall seconds: both candidates and every stage
    row["command"] = "python bench/regimes.py " + " ".join(sys.argv[1:])
    return row


def table() -> None:
    rows = read_jsonl(RESULTS)
    print(
        "\n".join(
            table_head(
                "case",
                "regimes",
                "minima",
                "regimes found",
                "online (states, many-to-one)",
                "offline (regimes, matched)",
                "hmmlearn (matched)",
                "supervised",
                "train s",
            )
        )
    )
    for r in rows:
        v = {k: f"{x:.3f}" for k, x in r.items() if isinstance(x, float)}
        print(
            f"| {r['case']} {r['name']} | {r['regimes']} | {r['n_minima']} | "
            f"{r.get('n_regimes', '-')} | {v.get('online_many_to_one', '-')} | "
            f"{v.get('offline_regime_matched', '-')} | {v['hmmlearn_matched']} | "
            f"{v['supervised']} | "
            f"{r.get('train_seconds') or '-'} |"
        )


def main() -> None:
    a = case_parser(__doc__, len(CASES)).parse_args()
    if a.table:
        table()
        return
    import torch

    torch.set_num_threads(a.threads)
    for case in a.cases:
        append_row(RESULTS, run(case, a.threads))


if __name__ == "__main__":
    main()
