"""MALA samples exp(-beta E); basin lookups agree with the gradient flow."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from nld.analysis import assign_basins, find_minima
from nld.analysis.basins import BasinIndex
from nld.analysis.sampling import mala, sampled_occupancy
from tests.analysis.potentials import three_fold


def tilted_well(q):
    x = q[..., 0]
    return 1.5 * (x**2 - 1) ** 2 + 0.4 * x


def test_mala_stationary_law_passes_ks():
    beta = 1.3
    gen = torch.Generator().manual_seed(1)
    starts = 4 * torch.rand(3000, 1, generator=gen, dtype=torch.float64) - 2
    out = mala(tilted_well, beta, starts, n_steps=600, burn_in=300, thin=299, seed=0)
    final = out.chains[-1, :, 0]  # one state per independent chain

    grid = np.linspace(-4, 4, 20001)
    dens = np.exp(-beta * tilted_well(torch.from_numpy(grid)[:, None]).numpy())
    cum = integrate.cumulative_trapezoid(dens, grid, initial=0)

    def cdf(xs):
        return np.interp(xs, grid, cum / cum[-1])

    assert 0.3 < out.acceptance < 0.9
    assert stats.kstest(final, cdf).pvalue > 0.05


def test_sampled_occupancy_of_equal_wells():
    gen = torch.Generator().manual_seed(0)
    ms = find_minima(three_fold, 4 * torch.rand(200, 2, generator=gen, dtype=torch.float64) - 2)
    starts = torch.from_numpy(np.stack([m.position for m in ms])).repeat(100, 1)
    out = mala(three_fold, 2.0, starts, n_steps=3000, burn_in=500, thin=10, seed=0)
    index = BasinIndex.around(three_fold, ms, out.chains)
    labels = index.assign(out.chains)
    occ, err = sampled_occupancy(labels, len(ms))
    assert occ.sum() == pytest.approx(1.0)
    assert np.all(err > 0) and np.all(err < 0.02)
    np.testing.assert_allclose(occ, 1 / 3, atol=4 * err.max())


def test_basin_index_agrees_with_flow():
    gen = torch.Generator().manual_seed(2)
    ms = find_minima(three_fold, 4 * torch.rand(200, 2, generator=gen, dtype=torch.float64) - 2)
    data = 3 * torch.rand(2000, 2, generator=gen, dtype=torch.float64) - 1.5
    index = BasinIndex.around(three_fold, ms, data, n_reference=4000)
    pts = 4 * torch.rand(3000, 2, generator=gen, dtype=torch.float64) - 2  # some outside
    np.testing.assert_array_equal(index.assign(pts), assign_basins(three_fold, pts, ms))
    assert index.assign(pts[:7].reshape(7, 1, 2)).shape == (7, 1)
    # The bounded-time path (majority vote near boundaries) disagrees only there.
    fast = index.assign(pts, exact=False)
    assert (fast == assign_basins(three_fold, pts, ms)).mean() > 0.98
    far = torch.tensor([[9.0, 0.5], [-0.3, -8.0]], dtype=torch.float64)  # beyond the grid
    np.testing.assert_array_equal(
        index.assign(far, exact=False), assign_basins(three_fold, far, ms)
    )
