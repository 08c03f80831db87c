"""The calibration stage (nld.fitting.calibrate) with weighted positions."""

import numpy as np
import torch

from nld import checkpoint
from nld.analysis import find_minima, model_energy, zeroth_order
from nld.fitting.calibrate import calibrate


def test_weighted_positions_deepen_the_well_they_favour(smoke_run, easy_data):
    """Positions on one side of the plane between the two wells count 4x: that well must end
    with a larger share of exp(-beta E) than after the same fit with equal weights."""
    run, _ = smoke_run
    fitted = checkpoint.load(run)[1].minima
    a, b = fitted[:2]
    normal, mid = a - b, (a + b) / 2

    def share_of_first(weigh) -> float:
        model, _ = checkpoint.load(run)
        calibrate(model, easy_data[0], 60, seed=0, progress_bar=False, weigh=weigh)
        minima = find_minima(model_energy(model), fitted.double())
        beta = float(model.prior.beta().detach())
        assert len(minima) == 2
        first = int(np.argmin([np.linalg.norm(m.position - a.numpy()) for m in minima]))
        return float(zeroth_order(minima, beta)[first])

    def favour_first(q: torch.Tensor) -> torch.Tensor:
        return torch.where((q - mid) @ normal > 0, 4.0, 1.0)

    equal = share_of_first(lambda q: torch.ones(len(q)))
    favoured = share_of_first(favour_first)
    assert favoured > equal + 0.05, (equal, favoured)
