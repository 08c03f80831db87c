import numpy as np
import pytest

from nld.data import HMMSpec, sample


def easy_spec(dim: int = 4, stay: float = 0.95) -> HMMSpec:
    """Two states, well-separated means, dwell time 1/(1-stay) steps."""
    return HMMSpec(
        name="easy",
        transition_matrix=[[stay, 1 - stay], [1 - stay, stay]],
        initial_distribution=[0.5, 0.5],
        means=[[1.5] * dim, [-1.5] * dim],
        covariances=[np.eye(dim).tolist()] * 2,
        splits={},
    )


@pytest.fixture(scope="session")
def easy_data():
    spec = easy_spec()
    return sample(spec, 200, 100, seed=0), sample(spec, 50, 200, seed=1)
