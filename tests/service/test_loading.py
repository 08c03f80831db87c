"""Where a model's analysis comes from: the stored file of its weights, or computed once and
stored (beside the model, or in the cache when the models directory is read-only)."""

import errno
import shutil

import pytest

from nld import analysis_file, checkpoint
from nld.landscape import analyze
from service.main import create_app
from tests.service.conftest import make_settings, serving


@pytest.fixture
def fresh(tmp_path, models_dir):
    """A models directory holding the smoke model without any stored analysis."""
    root = tmp_path / "models"
    shutil.copytree(models_dir / "easy", root / "easy")
    (root / "easy" / analysis_file.FILE).unlink(missing_ok=True)
    return root


def _source(c) -> str:
    return c.get("/models").json()["models"][0]["analysis"]


def test_computed_once_then_read(fresh):
    settings = make_settings(fresh, cache_dir=fresh.parent / "cache")
    with serving(create_app(settings)) as c:
        assert _source(c) == "computed"
        first = c.get("/landscape/minima").json()
    assert (fresh / "easy" / analysis_file.FILE).is_file()  # stored beside the model
    with serving(create_app(settings)) as c:
        assert _source(c) == "stored"
        assert c.get("/landscape/minima").json() == first  # the same analysis, read back


def test_a_stored_analysis_of_other_weights_or_code_is_not_served(fresh, monkeypatch):
    settings = make_settings(fresh, cache_dir=fresh.parent / "cache")
    model, _ = checkpoint.load(fresh / "easy")
    stale = analyze(model, None, n_chains=16, n_steps=200, burn_in=50)
    analysis_file.save(fresh / "easy" / analysis_file.FILE, stale, "0" * 64)  # other weights
    with serving(create_app(settings)) as c:
        assert _source(c) == "computed"
    sha = checkpoint.weights_sha256(fresh / "easy")
    analysis_file.check(fresh / "easy" / analysis_file.FILE, sha)  # replaced by a good one
    monkeypatch.setattr(analysis_file, "ANALYSIS_VERSION", analysis_file.ANALYSIS_VERSION + 1)
    with serving(create_app(settings)) as c:
        assert _source(c) == "computed"  # made by another version of the analysis


def test_a_read_only_models_directory_stores_in_the_cache(fresh, monkeypatch):
    """As under compose, where the models are mounted read-only."""
    real_save = analysis_file.save

    def read_only(path, *args):
        if fresh in path.parents:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_save(path, *args)

    monkeypatch.setattr(analysis_file, "save", read_only)
    cache = fresh.parent / "cache"
    settings = make_settings(fresh, cache_dir=cache)
    with serving(create_app(settings)) as c:
        assert _source(c) == "computed"
    assert not (fresh / "easy" / analysis_file.FILE).exists()
    (stored,) = (cache / "analyses").glob("*.safetensors")
    assert stored.stem == checkpoint.weights_sha256(fresh / "easy")
    with serving(create_app(settings)) as c:
        assert _source(c) == "stored"
