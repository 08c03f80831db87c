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


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, easy_data):
    """A `smoke` model trained once on the easy two-state data: (run_dir, CPU seconds).

    CPU time of this process (one torch thread), so that other work on the machine does not
    count against the model's own cost."""
    import time

    import torch

    from nld.fitting.config import load_config
    from nld.fitting.trainer import train

    torch.manual_seed(0)
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("smoke") / "easy"
    start = time.process_time()
    train(load_config("smoke"), easy_data[0], run, progress_bar=False)
    return run, time.process_time() - start
