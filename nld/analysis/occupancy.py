"""Occupancy of each basin under the Boltzmann density exp(-beta E), from the minima alone.

(b) zeroth order:  w_i ∝ exp(-beta E(x_i))
(c) second order (Laplace):  w_i ∝ exp(-beta E(x_i)) det(beta H_i)^(-1/2)
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from nld.analysis.minima import Minimum


def zeroth_order(minima: list[Minimum], beta: float) -> np.ndarray:
    return softmax(-beta * np.array([m.energy for m in minima]))


def second_order(minima: list[Minimum], beta: float) -> np.ndarray:
    logdet = np.array([np.sum(np.log(beta * m.hessian_eigenvalues)) for m in minima])
    return softmax(-beta * np.array([m.energy for m in minima]) - 0.5 * logdet)
