"""Analytic potentials with known minima, saddles and rates, for testing the analysis."""

import math

C3 = 0.5  # strength of the three-fold term of `three_fold`


def three_fold(q):
    """E = (r^2 - 1)^2 - c r^3 cos(3 theta), r^3 cos(3 theta) = x^3 - 3 x y^2.

    Minima at theta = 0, 2pi/3, 4pi/3 and radius (3c + sqrt(9c^2 + 64)) / 8; index-1 saddles
    at theta = pi/3, pi, 5pi/3 and radius (-3c + sqrt(9c^2 + 64)) / 8; a maximum at 0.
    The three wells are equal by symmetry: each holds a third of exp(-beta E).
    """
    x, y = q[..., 0], q[..., 1]
    r2 = x**2 + y**2
    return (r2 - 1) ** 2 - C3 * (x**3 - 3 * x * y**2)


def three_fold_radii() -> tuple[float, float]:
    root = math.sqrt(9 * C3**2 + 64)
    return (3 * C3 + root) / 8, (-3 * C3 + root) / 8


def double_well(height: float):
    """E = h (x^2 - 1)^2 + y^2: minima (+-1, 0) with Hessian diag(8h, 2), saddle (0, 0) with
    Hessian diag(-4h, 2), barrier h."""

    def energy(q):
        return height * (q[..., 0] ** 2 - 1) ** 2 + q[..., 1] ** 2

    return energy
