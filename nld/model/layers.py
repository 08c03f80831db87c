"""Small building blocks shared by the model's networks."""

from __future__ import annotations

import itertools

from torch import nn


def mlp(
    sizes: list[int], act: type[nn.Module] = nn.Softplus, final_act: bool = False
) -> nn.Sequential:
    """Linear layers of the given sizes with `act` between them (and after, if final_act)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_act:
            layers.append(act())
    return nn.Sequential(*layers)
