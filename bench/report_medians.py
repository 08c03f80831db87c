"""Medians over the seeds of `nld report` directories: how a change to a preset moves its
results, report against report.

    python bench/report_medians.py bench/reports/exp1 NEW_REPORT_DIR

For each report directory and each preset in it (from `analyses/*.json`): the seeds, the
minima of each run, and the medians over seeds of the online accuracy, the occupancy l1 to
the truth of each estimate (a)-(d), and the simulated prior's dwell time over the true dwell
time (median over every matched state of every seed).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from training.report import DWELLS, dwell_ratios

ESTIMATES = ("sampling", "zeroth", "second", "quadrature")


def rows(report: Path) -> dict[str, list[dict[str, Any]]]:
    """The report's analyses by preset (the file name without its seed)."""
    by_preset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted((report / "analyses").glob("*.json")):
        by_preset[path.stem.rsplit("-s", 1)[0]].append(json.loads(path.read_text()))
    if not by_preset:
        raise SystemExit(f"{report}: no analyses/*.json (write it with `nld report --out`)")
    return by_preset


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seg = [r["segmentation"] for r in runs]
    ratios = dwell_ratios(runs, DWELLS["simulated"])
    out: dict[str, Any] = {
        "seeds": len(runs),
        "minima": [len(r["minima"]) for r in runs],
        "online": statistics.median(s["accuracy_mean"] for s in seg),
    }
    for e in ESTIMATES:
        values = [s["occupancy_l1"][e] for s in seg if s["occupancy_l1"].get(e) is not None]
        out[e] = statistics.median(values) if values else None
    out["simulated_dwell"] = statistics.median(ratios) if ratios else None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+")
    a = p.parse_args()
    print(
        "| report | preset | seeds | minima | online | (a) | (b) | (c) | (d) "
        "| simulated dwell / true |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for report in a.reports:
        for preset, runs in rows(report).items():
            m = medians(runs)
            cells = [f"{m[e]:.3f}" if m[e] is not None else "-" for e in ESTIMATES]
            dwell = "-" if m["simulated_dwell"] is None else f"{m['simulated_dwell']:.2f}"
            print(
                f"| {report} | {preset} | {m['seeds']} | {', '.join(map(str, m['minima']))} "
                f"| {m['online']:.2%} | {' | '.join(cells)} | {dwell} |"
            )


if __name__ == "__main__":
    main()
