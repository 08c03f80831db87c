import math

import numpy as np
import pytest
import torch

from nld.model import MLPEnergy
from nld.model.boltzmann import boltzmann_nll


def _quadratic(dim: int, c: float) -> MLPEnergy:
    """E(q) = c |q|^2 exactly: the MLP part is switched off."""
    e = MLPEnergy(dim, [4], confinement=c).double()
    with torch.no_grad():
        e.out.weight.zero_()
        e.out.bias.zero_()
    return e


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_nll_of_a_gaussian_energy_is_the_gaussian_nll(dim):
    beta, c = 1.7, 0.8
    gen = torch.Generator().manual_seed(dim)
    q = torch.randn(4000, dim, generator=gen, dtype=torch.float64) / math.sqrt(2 * beta * c)
    with torch.no_grad():
        got = boltzmann_nll(_quadratic(dim, c), torch.tensor(beta, dtype=torch.float64), q)
    exact = beta * c * (q * q).sum(-1).mean() + 0.5 * dim * math.log(math.pi / (beta * c))
    assert got.item() == pytest.approx(exact.item(), abs=1e-4)


def test_higher_dimensions_are_refused():
    with pytest.raises(ValueError, match="dimension <= 3"):
        boltzmann_nll(MLPEnergy(4, [4]), torch.tensor(1.0), torch.zeros(10, 4))


def test_fitting_recovers_the_weights_of_two_wells():
    # Samples from two equally wide wells holding 70% and 30%: score matching alone cannot
    # tell the weights apart; the likelihood with Z must give them.
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    n = 6000
    left = torch.rand(n, generator=gen) < 0.7
    q = torch.where(left, -1.5, 1.5) + 0.3 * torch.randn(n, generator=gen)
    q = q[:, None].double()
    e = MLPEnergy(1, [32, 32]).double()
    opt = torch.optim.Adam(e.parameters(), lr=1e-2)
    beta = torch.tensor(1.0, dtype=torch.float64)
    for i in range(600):
        opt.param_groups[0]["lr"] = 1e-2 if i < 300 else 1e-3  # then settle at the optimum
        opt.zero_grad()
        boltzmann_nll(e, beta, q).backward()
        opt.step()
    x = torch.linspace(-4, 4, 4001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        w = torch.exp(-e(x)).numpy()
    mass_left = w[x[:, 0].numpy() < 0].sum() / w.sum()
    assert mass_left == pytest.approx(left.double().mean().item(), abs=0.01)
    assert np.isfinite(w).all()


def test_stray_points_do_not_stretch_the_grid():
    # 4000 points of a narrow Gaussian and two strays far out: the likelihood is the narrow
    # Gaussian's on the box around the bulk (a grid stretched to the strays would put the
    # well between two nodes).
    beta, c = 1.0, 50.0
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(4000, 2, generator=gen, dtype=torch.float64) / math.sqrt(2 * beta * c)
    strays = torch.tensor([[40.0, -40.0], [-35.0, 30.0]], dtype=torch.float64)
    with torch.no_grad():
        got = boltzmann_nll(
            _quadratic(2, c), torch.tensor(beta, dtype=torch.float64), torch.cat([q, strays])
        )
    inside = q[(q.abs() < 0.4).all(-1)]
    exact = beta * c * (inside * inside).sum(-1).mean() + math.log(math.pi / (beta * c))
    assert got.item() == pytest.approx(exact.item(), abs=0.01)
