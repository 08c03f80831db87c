"""Where a model's occupancies come from: the time fractions each stage sees, per true state.

The calibration stage fits exp(-beta E) to the posterior's sampled positions on the training
data (`nld.fitting.calibrate`), so the energy's basin masses can be no closer to the data than
the share of those positions in each basin. This prints, matched to the true states by the
model's own segmentation of the training data: the data's state frequencies, the Bayes
filter's argmax labels (true parameters, with `--spec`), the basin fractions of the sampled
posterior positions and of the readout positions, the state chain's stationary distribution,
and the energy's occupancy (d), each with its l1 to the frequencies.

    python bench/occupancy_source.py RUN --data ../shared/benchmarks/exp2-train.npz --spec exp2
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from nld import checkpoint
from nld.analysis import match_labels, per_state
from nld.data import load, load_spec
from nld.data.limits import forward_backward
from nld.fitting.calibrate import posterior_sample
from nld.inference import basin_labels, class_source, head_order, read_path
from nld.landscape import analyze


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--data", required=True, help="the training split (with `states`)")
    p.add_argument("--spec", help="the HMM spec, for the Bayes filter's labels")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    (model, fitted), data = checkpoint.load(a.run), load(a.data)
    states = data.states
    assert states is not None, "the data need their hidden states"
    latents, classes = read_path(model, fitted, data.x)
    res = analyze(model, latents, seed=0)
    index, chain_fit, order = res.index, fitted.chain, head_order(fitted, res.minima)
    assert index is not None and chain_fit is not None and order is not None
    k = len(res.minima)
    labels, _ = basin_labels(order, classes, latents, index.assign, class_source(fitted))
    mapping = match_labels(labels, states, k).mapping  # basin -> true state

    def by_state(per_basin: np.ndarray) -> np.ndarray:
        return per_state(per_basin, mapping, int(states.max()) + 1)

    def fractions(points: torch.Tensor) -> np.ndarray:
        basins = index.assign(points.reshape(-1, model.cfg.latent_dim).double().numpy())
        return by_state(np.bincount(basins, minlength=k) / basins.size)

    truth = data.state_frequencies()
    rows = {"the data's state frequencies": truth}
    if a.spec:
        filtered = forward_backward(load_spec(a.spec), data.x)[0].argmax(-1)
        rows["Bayes filter, argmax (true parameters)"] = (
            np.bincount(filtered.ravel(), minlength=len(truth)) / filtered.size
        )
    sampled, _, _ = posterior_sample(model, data, torch.Generator().manual_seed(0))
    rows["sampled posterior positions (what the calibration fits)"] = fractions(sampled)
    rows["readout positions"] = fractions(latents)
    in_minima = np.zeros(k)
    in_minima[order] = chain_fit.stationary()
    rows["the state chain's stationary distribution"] = by_state(in_minima)
    if res.occupancy["quadrature"] is not None:
        rows["the energy: occupancy (d)"] = by_state(np.asarray(res.occupancy["quadrature"]))
    print("| time fractions of | per true state | l1 to the data's |")
    print("|---|---|---|")
    for name, f in rows.items():
        print(f"| {name} | {' / '.join(f'{x:.4f}' for x in f)} | {abs(f - truth).sum():.4f} |")


if __name__ == "__main__":
    main()
