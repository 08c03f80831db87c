import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
    overrides.setdefault("cache_dir", models_dir.parent / "cache")
    return Settings(models_dir=models_dir, analysis_chains=64, analysis_steps=1000, **overrides)


@contextmanager
def serving(app, timeout: float = 120) -> Iterator[TestClient]:
    """The app in process, once its models have loaded (they load in the background)."""
    with TestClient(app) as client:
        deadline = time.monotonic() + timeout
        while not app.state.registry.ready:
            assert time.monotonic() < deadline, f"models still loading: {app.state.registry}"
            time.sleep(0.02)
        yield client


@pytest.fixture(scope="module")
def client(models_dir):
    with serving(create_app(make_settings(models_dir))) as c:
        yield c


@pytest.fixture(scope="session")
def stream(easy_data):
    """One test sequence [T, D] as lists."""
    return easy_data[1].x[0, :60].astype(np.float64).tolist()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis (CI starts one); tests use a real server, never a fake."""
    import redis

    url = os.environ.get("NLD_TEST_REDIS", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as e:
        pytest.fail(f"the tests need a Redis server at {url} ({e}): start one")
    return url


@contextmanager
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A prefix for Redis keys, whose keys are deleted at the end."""
    import redis

    prefix = f"nldtest:{secrets.token_hex(6)}:"
    yield prefix
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(f"{prefix}*"))
    if keys:
        r.delete(*keys)
    r.close()


@pytest.fixture
def key_prefix(redis_url):
    """Redis keys of one test, deleted after it."""
    with redis_prefix(redis_url) as prefix:
        yield prefix


@pytest.fixture(scope="module")
def key_prefix_module(redis_url):
    """Redis keys of one test module, deleted after it."""
    with redis_prefix(redis_url) as prefix:
        yield prefix


def write_csv(path, x, states=None) -> None:
    header = ["time", *(f"c{i}" for i in range(x.shape[1]))] + ([] if states is None else ["state"])
    rows = [",".join(header)]
    for t, row in enumerate(x):
        rows.append(
            ",".join([str(t), *map(str, row), *([] if states is None else [str(states[t])])])
        )
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="session")
def ui_models(tmp_path_factory, models_dir, easy_data):
    """The smoke model with one bundled example: a test sequence with its known states."""
    root = tmp_path_factory.mktemp("ui-models")
    shutil.copytree(models_dir / "easy", root / "easy")
    (root / "easy" / "examples").mkdir()
    test = easy_data[1]
    write_csv(root / "easy" / "examples" / "one.csv", test.x[0, :80], test.states[0, :80])
    return root
