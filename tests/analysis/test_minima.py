"""Minima, basins and occupancy estimates on analytic potentials with known answers."""

import numpy as np
import pytest
import torch
from scipy import integrate, optimize

from nld.analysis import (
    assign_basins,
    dwell_lengths,
    find_minima,
    many_to_one,
    match_labels,
    matched_l1,
    quadrature,
    second_order,
    zeroth_order,
)


def double_well(q):
    return (q[..., 0] ** 2 - 1) ** 2 + 0.5 * q[..., 1] ** 2


def triple_well(q):
    """Three Gaussian wells at known places, plus confinement."""
    centres = torch.tensor([[1.5, 0.0], [-0.75, 1.3], [-0.75, -1.3]], dtype=q.dtype)
    depth = torch.tensor([3.0, 2.5, 2.0], dtype=q.dtype)
    r2 = ((q[..., None, :] - centres) ** 2).sum(-1)
    return -(depth * torch.exp(-r2 / 0.5)).sum(-1) + 0.05 * (q**2).sum(-1)


def test_double_well_minima_are_exact():
    ms = find_minima(double_well, torch.randn(40, 2, dtype=torch.float64))
    pos = sorted(m.position[0] for m in ms)
    assert len(ms) == 2
    np.testing.assert_allclose(pos, [-1, 1], atol=1e-6)
    for m in ms:
        np.testing.assert_allclose(m.hessian_eigenvalues, [1, 8], atol=1e-5)
        assert abs(m.energy) < 1e-10


def test_triple_well_and_basins():
    gen = torch.Generator().manual_seed(0)
    ms = find_minima(triple_well, 3 * torch.rand(200, 2, generator=gen, dtype=torch.float64) - 1.5)
    assert len(ms) == 3
    # the deepest well is first
    assert ms[0].position[0] > 1
    pts = torch.tensor([[1.4, 0.1], [-0.7, 1.2], [-0.8, -1.1]], dtype=torch.float64)
    labels = assign_basins(triple_well, pts, ms)
    assert labels.tolist() == [0, 1, 2]


def test_basins_unchanged_by_shifting_energy():
    ms = find_minima(double_well, torch.randn(40, 2, dtype=torch.float64))
    pts = torch.randn(500, 2, dtype=torch.float64)
    a = assign_basins(double_well, pts, ms)
    b = assign_basins(lambda q: double_well(q) + 17.0, pts, ms)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, (pts[:, 0] > 0).numpy() == (ms[1].position[0] > 0))


def _quadrature_masses(energy, beta, split):
    """Masses left and right of x = split (the basin boundary of a separable potential)."""

    def density(y, x):
        return float(torch.exp(-beta * energy(torch.tensor([x, y], dtype=torch.float64))))

    right = integrate.dblquad(density, split, 4, -4, 4, epsabs=1e-10)[0]
    left = integrate.dblquad(density, -4, split, -4, 4, epsabs=1e-10)[0]
    return np.array([left, right]) / (left + right)


@pytest.mark.parametrize("beta", [2.0, 6.0])
def test_occupancy_approximations_on_a_tilted_double_well(beta):
    def tilted(q):
        return double_well(q) + 0.1 * q[..., 0]

    ms = sorted(
        find_minima(tilted, torch.randn(40, 2, dtype=torch.float64)), key=lambda m: m.position[0]
    )
    # the flow in x does not depend on y: the basins part where dE/dx = 0 between the wells
    split = optimize.brentq(lambda x: 4 * x * (x * x - 1) + 0.1, -0.5, 0.5)
    truth = _quadrature_masses(tilted, beta, split)
    b, c = zeroth_order(ms, beta), second_order(ms, beta)
    d = quadrature(tilted, ms, beta, np.array([-4.0, -4.0]), np.array([4.0, 4.0]))
    np.testing.assert_allclose(d, truth, atol=2e-3)
    assert np.isclose(b.sum(), 1) and np.isclose(c.sum(), 1)
    # The Laplace estimate improves as the wells get sharper relative to 1/beta.
    tol = 0.08 if beta == 2.0 else 0.02
    assert np.abs(c - truth).sum() < tol
    assert np.abs(b - truth).sum() < 0.25


def test_matching_handles_permutations_and_extra_labels():
    states = np.array([[0, 0, 1, 1, 2, 2]])
    pred = np.array([[2, 2, 0, 0, 1, 3]])
    m = match_labels(pred, states)
    assert m.mapping[2] == 0 and m.mapping[0] == 1 and m.mapping[1] == 2
    assert m.accuracy_mean == pytest.approx(5 / 6)
    assert matched_l1(
        np.array([0.3, 0.3, 0.3, 0.1]), np.array([1 / 3] * 3), m.mapping
    ) == pytest.approx(0.2)


def test_many_to_one_and_dwell_lengths():
    states = np.array([[0, 0, 1, 1, 1, 0, 0, 0, 1, 1]])
    split = np.array([[0, 0, 1, 1, 2, 0, 0, 0, 1, 1]])  # state 1 split into labels 1 and 2
    assert many_to_one(split, states) == 1.0
    assert match_labels(split, states).accuracy_mean == pytest.approx(0.9)
    runs = dwell_lengths(states, 2)
    # the first and last runs are cut by the sequence's ends: only interior runs count
    assert runs[0].tolist() == [3] and runs[1].tolist() == [3]
