"""The paper's fifteen released checkpoints (github.com/vlamen/dynvae, `models/`): each
imported with `nld import-dynvae`'s converter and analysed as the service analyses a model
(no data: MALA samples seed the search), then set against the paper's Tables 1 and 4.

    python bench/dynvae_release.py DYNVAE_MODELS_DIR [--threads 2] [--only GROUP ...]
    python bench/dynvae_release.py --table

DYNVAE_MODELS_DIR holds `symmetric_overdamped/`, `symmetric_underdamped/` and
`asymmetric_underdamped/`, each with `model N.pth` and `settings N.txt`, N = 0..4 (a
checkout's `models/`). l1 is to the stationary distribution of the paper's experiment:
(1/3, 1/3, 1/3) for the symmetric models, (.45, .35, .2) for the asymmetric ones, both sorted
(as the paper's Table 4 compares them). A row per checkpoint goes to
bench/results/dynvae_release.jsonl; `--table` prints mean +- sample std over each group of
five beside the paper's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from record import append_row

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "dynvae_release.jsonl"
TRUTH = {
    "symmetric_overdamped": (1 / 3, 1 / 3, 1 / 3),
    "symmetric_underdamped": (1 / 3, 1 / 3, 1 / 3),
    "asymmetric_underdamped": (0.45, 0.35, 0.2),
}
# Mean +- std over the paper's five models: (a) sampling, (b) zeroth, (c) second order.
PAPER = {
    "symmetric_overdamped": ("0.047 ± 0.037", "0.051 ± 0.022", "0.040 ± 0.013"),
    "symmetric_underdamped": ("0.072 ± 0.068", "0.041 ± 0.029", "0.021 ± 0.0044"),
    "asymmetric_underdamped": ("0.23 ± 0.040", "0.24 ± 0.049", "0.22 ± 0.0061"),
}
ESTIMATES = ("sampling", "zeroth", "second", "quadrature")


def sorted_l1(estimate: list[float] | None, truth: tuple[float, ...]) -> float | None:
    """l1 between the sorted estimate and the sorted truth (None if not computed, or if the
    model has another number of wells than the truth has states)."""
    if estimate is None or len(estimate) != len(truth):
        return None
    return float(np.abs(np.sort(estimate) - np.sort(truth)).sum())


def measure(models: Path, group: str, i: int) -> dict:
    from nld.dynvae import convert
    from nld.landscape import analyze

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        model = convert(models / group / f"model {i}.pth", models / group / f"settings {i}.txt")
    t0 = time.perf_counter()
    res = analyze(model, None)
    seconds = time.perf_counter() - t0
    return {
        "group": group,
        "model": i,
        "dynamics": model.cfg.dynamics,
        "latent_dim": model.cfg.latent_dim,
        "beta": res.beta,
        "notes": [str(w.message).split(": ", 1)[-1] for w in caught],
        "n_minima": len(res.minima),
        "occupancy": res.occupancy,
        "l1": {k: sorted_l1(res.occupancy[k], TRUTH[group]) for k in ESTIMATES},
        "warnings": res.warnings,
        "analysis_seconds": seconds,
        "stages": res.seconds,
    }


def _stat(values: list[float], of: int) -> str:
    """Mean +- sample std, and over how many models when not all `of` have a value."""
    if not values:
        return "-"
    out = (
        f"{values[0]:.3f}"
        if len(values) == 1
        else (f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}")
    )
    return out if len(values) == of else f"{out} ({len(values)} of {of})"


def table() -> None:
    rows: dict[tuple[str, int], dict] = {}
    for line in RESULTS.read_text().splitlines():
        row = json.loads(line)
        rows[(row["group"], row["model"])] = row  # the latest row of each checkpoint
    print(
        "| models | dynamics | minima (per model) | (a) sampling | (b) zeroth | (c) second "
        "| (d) quadrature | paper (a) / (b) / (c) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for group in TRUTH:
        group_rows = [rows[k] for k in sorted(rows) if k[0] == group]
        if not group_rows:
            continue
        l1 = {k: [r["l1"][k] for r in group_rows if r["l1"][k] is not None] for k in ESTIMATES}
        minima = ", ".join(str(r["n_minima"]) for r in group_rows)
        print(
            f"| {group} ({len(group_rows)}) | {group_rows[0]['dynamics']} | {minima} | "
            + " | ".join(_stat(l1[k], len(group_rows)) for k in ESTIMATES)
            + f" | {' / '.join(PAPER[group])} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("models", nargs="?", type=Path, help="the dynvae checkout's models/")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="+", choices=list(TRUTH), default=list(TRUTH))
    p.add_argument("--table", action="store_true", help="print the recorded results")
    a = p.parse_args()
    if a.table:
        table()
        return
    if a.models is None:
        p.error("give the dynvae checkout's models/ directory (or --table)")
    torch.set_num_threads(a.threads)
    for group in a.only:
        for i in range(5):
            append_row(RESULTS, measure(a.models, group, i), show=False)
            print(f"{group} {i}: done", flush=True)
    table()


if __name__ == "__main__":
    main()
