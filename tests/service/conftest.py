import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, smoke_run):
    """A models directory holding the smoke model as `easy` (D = 4, two wells)."""
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(smoke_run[0], root / "easy")
    return root


def make_settings(models_dir, **overrides) -> Settings:
    return Settings(models_dir=models_dir, analysis_chains=64, analysis_steps=1000, **overrides)


@pytest.fixture(scope="module")
def client(models_dir):
    with TestClient(create_app(make_settings(models_dir))) as c:
        yield c


@pytest.fixture(scope="session")
def stream(easy_data):
    """One test sequence [T, D] as lists."""
    return easy_data[1].x[0, :60].astype(np.float64).tolist()
