"""The `default` preset on data it has never seen: random HMMs with 2-6 states.

    python bench/unseen.py --cases 0 1 2 3 4 5 6 7 8 [--tag NAME]
    python bench/unseen.py --table
    python bench/unseen.py --likelihoods --cases 5

Each case draws a random Gaussian HMM (`nld.data.hmm.random_spec`), trains the default preset
on it, and compares the model's number of minima with the true number of states and its
segmentation accuracy with the Bayes online-filter limit; the readout kNN column says how
much the readout positions know about the states whatever the energy made of them (a failure
with a high kNN score is the landscape's, with a low one the encoder's). Rows are appended to
bench/results/unseen.jsonl; cases already there are skipped.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
from record import add_variant_options, append_row, case_parser, trained, variant_of

from nld.data import Dataset
from nld.data.hmm import HMMSpec, random_spec
from nld.io import read_jsonl
from nld.model import NLDModel
from training.markdown import table_head

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "unseen.jsonl"

# (states, dim, dwell, length, sequences): spans the promise of the default preset. A tuple of
# dwell times gives each state its own, and the stationary distribution follows them (cases 9
# and 10: one state holds 62.5% of the time; a rare state holds 10% in visits of 10 steps).
# Cases 11 and 12: many sensors (D = 40, 100).
CASES: list[tuple[int, int, float | tuple[float, ...], int, int]] = [
    (2, 3, 10, 50, 1000),
    (3, 8, 30, 200, 500),
    (4, 5, 20, 100, 600),
    (5, 12, 15, 150, 600),
    (6, 20, 40, 300, 400),
    (6, 6, 10, 100, 800),
    (3, 4, 10, 100, 800),
    (4, 10, 12, 60, 1000),
    (2, 1, 50, 300, 300),
    (3, 5, (10, 20, 50), 200, 600),
    (4, 8, (10, 30, 30, 30), 150, 600),
    (4, 40, 25, 120, 500),
    (3, 100, 30, 100, 400),
]


def case_spec(case: int) -> HMMSpec:
    k, dim, dwell, _, _ = CASES[case]
    return random_spec(k, dim, dwell=dwell, seed=100 + case, separation=3.0)


def train_split(case: int) -> Dataset:
    from nld.data import sample

    _, _, _, length, n = CASES[case]
    return sample(case_spec(case), n, length, seed=1)


def case_data(case: int) -> tuple[HMMSpec, Dataset, Dataset, dict[str, float]]:
    """A case's spec, training and test sets, and the Bayes limits on the test set."""
    from nld.data import bayes_limits, sample

    _, _, _, length, _ = CASES[case]
    spec = case_spec(case)
    train_set = train_split(case)
    test_set = sample(spec, 200, max(length, 200), seed=2)
    assert test_set.states is not None
    return spec, train_set, test_set, bayes_limits(spec, test_set.x, test_set.states)


def _row(case: int, variant: str, limits: dict[str, float], **values: object) -> dict:
    k, dim, dwell, length, n = CASES[case]
    return {
        "case": case,
        "variant": variant,
        "states": k,
        "dim": dim,
        "dwell": dwell,
        "length": length,
        "sequences": n,
        **values,
        "online_filter_limit": round(limits["online_filter_accuracy_mean"], 4),
        "per_step_limit": round(limits["per_step_accuracy_mean"], 4),
    }


def run_hmm(case: int, seed: int, starts: int, variant: str) -> dict:
    """hmmlearn's GaussianHMM told the true number of states (EM from `starts` seeds from
    `seed` on, the likeliest kept): what maximum likelihood without the true parameters
    reaches, beside the limits that assume them."""
    from training.baseline import hmm_baseline

    spec, train_set, test_set, limits = case_data(case)
    res = hmm_baseline(train_set, test_set, spec.n_states, spec.stationary(), seed, starts)
    if res is None:
        raise SystemExit("the HMM baseline needs hmmlearn: pip install -e '.[bench]'")
    return _row(
        case,
        variant,
        limits,
        n_minima=spec.n_states,
        accuracy_mean=round(res["accuracy_mean"], 4),
        train_seconds=round(res["fit_seconds"], 1),
    )


def run(case: int, threads: int, overrides: dict[str, object], variant: str) -> dict:
    from nld.fitting.config import load_config, with_overrides
    from training.evaluate import evaluate

    spec, train_set, test_set, limits = case_data(case)
    assert test_set.states is not None
    cfg = with_overrides(load_config("default"), {"train.threads": threads, **overrides})
    out = ROOT / "runs" / "unseen" / f"case{case}" / variant
    model, fitted, train_s = trained(cfg, train_set, out)  # a finished run: its own training time
    res = evaluate(
        model, fitted, test_set, true_occupancy=spec.stationary(), fit_data=train_set
    ).record
    knn = readout_knn(model, test_set.x, test_set.states)
    return _row(
        case,
        variant,
        limits,
        n_minima=res.get("n_minima"),
        accuracy_mean=round(res["accuracy_mean"], 4),
        chain_accuracy_mean=round(res["chain_accuracy_mean"], 4),
        head_accuracy_mean=round(res.get("head_accuracy_mean", res["accuracy_mean"]), 4),
        labels_from=res.get("labels_from"),
        readout_knn_accuracy=round(knn, 4),
        occupancy_second_l1=res.get("occupancy_second_l1"),
        occupancy_quadrature_l1=res.get("occupancy_quadrature_l1"),
        train_seconds=round(train_s, 1),
    )


@functools.cache
def split_l1(case: int) -> float:
    """l1 of the case's training split's state frequencies to the true stationary distribution:
    what a model that fits the time its training data spend in each state is off by at least."""
    spec = case_spec(case)
    states = train_split(case).states
    assert states is not None
    freq = np.bincount(states.ravel(), minlength=spec.n_states) / states.size
    return float(np.abs(freq - spec.stationary()).sum())


def readout_knn(model: NLDModel, x: np.ndarray, states: np.ndarray) -> float:
    """How much the readout positions know about the true states, whatever the energy:
    accuracy of a 15-nearest-neighbour classifier fitted on the readout points of the first
    half of the sequences and scored on the second half."""
    from sklearn.neighbors import KNeighborsClassifier

    from nld.inference import readout_path

    r = readout_path(model, x).numpy()
    half = len(x) // 2
    d = r.shape[-1]
    knn = KNeighborsClassifier(15).fit(r[:half].reshape(-1, d), states[:half].reshape(-1))
    return float(knn.score(r[half:].reshape(-1, d), states[half:].reshape(-1)))


def reference_loglik(case: int, n: int = 200) -> dict[str, float]:
    """Log-likelihoods per step, in the units the training log uses (x standardised by its own
    mean and std), that a model's ELBO can be held against: one Gaussian for all steps, the
    true HMM (the forward algorithm's marginal), and the single state path of the Bayes
    filter's argmax (a discrete path, no KL)."""
    from scipy.stats import multivariate_normal

    from nld.data import sample
    from nld.data.limits import emission_loglik, forward_filter

    dim, length = CASES[case][1], CASES[case][3]
    spec = case_spec(case)
    data = sample(spec, n, length, seed=1)
    flat = data.x.reshape(-1, dim).astype(np.float64)
    jacobian = float(np.log(flat.std(0)).sum())  # log|dx/dx_standardised|
    single = multivariate_normal(flat.mean(0), np.cov(flat.T)).logpdf(flat).mean()
    ll = emission_loglik(spec, data.x)
    alpha, evidence = forward_filter(spec, ll)
    path = alpha.argmax(-1)
    return {
        "single_gaussian": float(single + jacobian),
        "true_hmm": float(evidence.mean() / length + jacobian),
        "filter_path": float(np.take_along_axis(ll, path[..., None], -1).mean() + jacobian),
    }


def _l1(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def table() -> str:
    rows = read_jsonl(RESULTS)
    lines = [
        *table_head(
            "case",
            "variant",
            "states",
            "D",
            "dwell",
            "length",
            "n_minima",
            "accuracy",
            "head",
            "chain",
            "online filter limit",
            "per-step limit",
            "readout kNN",
            "occupancy l1 (c)",
            "(d)",
            "split l1",
            "train s",
        ),
    ]
    for r in sorted(rows, key=lambda r: (r["case"], r.get("variant", "default"))):
        lines.append(
            f"| {r['case']} | {r.get('variant', 'default')} | {r['states']} | {r['dim']} "
            f"| {r['dwell']} | {r['length']} "
            f"| {r['n_minima']} | {100 * r['accuracy_mean']:.1f}% "
            f"| {_pct(r.get('head_accuracy_mean'))} | {_pct(r.get('chain_accuracy_mean'))} "
            f"| {100 * r['online_filter_limit']:.1f}% | {100 * r['per_step_limit']:.1f}% "
            f"| {_pct(r.get('readout_knn_accuracy'))} "
            f"| {_l1(r.get('occupancy_second_l1'))} | {_l1(r.get('occupancy_quadrature_l1'))} "
            f"| {split_l1(r['case']):.3f} | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    p = case_parser(__doc__, len(CASES))
    p.add_argument(
        "--likelihoods",
        action="store_true",
        help="print reference log-likelihoods per step of the cases (reference_loglik) and the "
        "last logged ELBO of their runs under runs/unseen/",
    )
    add_variant_options(p, "model.substeps=4 train.kl_final=0.5")
    p.add_argument(
        "--hmm",
        type=int,
        metavar="SEED",
        help="instead of training: hmmlearn's GaussianHMM told the number of states, EM from SEED",
    )
    p.add_argument(
        "--hmm-starts",
        type=int,
        default=1,
        metavar="N",
        help="with --hmm: EM from N seeds (SEED, SEED + 1, ...), the likeliest on the training "
        "data kept",
    )
    a = p.parse_args()
    overrides, name = variant_of(a)
    variant = name or "default"
    if a.hmm is not None:
        variant = (
            f"hmmlearn-s{a.hmm}" if a.hmm_starts == 1 else f"hmmlearn-best{a.hmm_starts}-s{a.hmm}"
        )
    if a.table:
        print(table())
        return 0
    if a.likelihoods:
        for case in a.cases:
            refs = ", ".join(f"{k} {v:.3f}" for k, v in reference_loglik(case).items())
            print(f"case {case}: {refs}")
            for log in sorted((ROOT / "runs" / "unseen" / f"case{case}").glob("*/metrics.jsonl")):
                rows = read_jsonl(log)
                full = [r for r in rows if r["kl_weight"] == 1.0] or rows
                print(
                    f"  {log.parent.name}: ELBO {full[-1]['elbo']:.3f} at iteration "
                    f"{full[-1]['iteration']} (KL weight {full[-1]['kl_weight']})"
                )
        return 0
    done = set()
    if RESULTS.exists():
        rows = read_jsonl(RESULTS)
        done = {r["case"] for r in rows if r.get("variant", "default") == variant}
    for case in a.cases:
        if case in done:
            print(f"skip case {case} ({variant}): already in {RESULTS}")
            continue
        row = (
            run_hmm(case, a.hmm, a.hmm_starts, variant)
            if a.hmm is not None
            else run(case, a.threads, overrides, variant)
        )
        append_row(RESULTS, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
