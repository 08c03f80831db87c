import copy

import pytest
import torch

from nld.model import MLPEnergy


@pytest.mark.parametrize("activation", ["softplus", "tanh"])
@pytest.mark.parametrize("hidden", [[8], [16, 16], [8, 8, 8]])
def test_closed_form_gradient_equals_autograd(activation, hidden):
    e = MLPEnergy(3, hidden, activation).double()
    q = torch.randn(20, 3, dtype=torch.float64, requires_grad=True)
    value, grad = e.energy_and_grad(q)
    (auto,) = torch.autograd.grad(e(q).sum(), q)
    torch.testing.assert_close(value, e(q))
    torch.testing.assert_close(grad, auto)
    torch.testing.assert_close(e.force_grad(q.detach()), auto)


def test_simulation_gradient_holds_in_float32_far_from_the_data():
    # Pre-activations beyond +-200, where float32's sigmoid is exactly 0 or 1: force_grad's
    # softplus (a - log sigmoid(a)) stays finite and agrees with autograd in float64.
    torch.manual_seed(0)
    e = MLPEnergy(2, [16, 16])
    with torch.no_grad():
        for layer in e.layers:
            layer.weight.mul_(20)
    q = torch.randn(200, 2) * 10
    pre = e.layers[0](q)
    assert pre.min() < -200 and pre.max() > 200
    fast = e.force_grad(q)
    q64 = q.double().requires_grad_()
    (auto,) = torch.autograd.grad(copy.deepcopy(e).double()(q64).sum(), q64)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast.double(), auto, rtol=1e-5, atol=1e-4)


def test_gradient_is_differentiable_in_the_parameters():
    e = MLPEnergy(2, [8, 8]).double()
    q = torch.randn(5, 2, dtype=torch.float64)
    loss = e.grad(q).pow(2).sum()
    loss.backward()
    # every parameter but the constant offset shapes the force
    for name, p in e.named_parameters():
        if name != "out.bias":
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_confinement_makes_energy_grow():
    e = MLPEnergy(2, [16])
    far = torch.tensor([[100.0, 0.0], [0.0, -100.0]])
    assert (e(far) > e(torch.zeros(1, 2)) + 100).all()


def test_param_grad_false_keeps_the_graph_to_q_only():
    e = MLPEnergy(2, [8, 8]).double()
    q = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    g = e.grad(q, param_grad=False)
    g.pow(2).sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert all(p.grad is None for p in e.parameters())
    torch.testing.assert_close(g, e.grad(q))
