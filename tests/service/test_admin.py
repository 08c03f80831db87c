"""Model reloads while serving, and checkpoint directories that must never be trusted."""

import os
import pickle
import shutil
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from service.main import create_app
from tests.service.conftest import make_settings, serving

KEY = {"X-API-Key": "k3y"}


@pytest.fixture
def models(tmp_path, models_dir):
    shutil.copytree(models_dir / "easy", tmp_path / "easy")
    return tmp_path


def _perturb_weights(run_dir):
    """A new valid version of the model: the same shapes, slightly different weights."""
    weights = load_file(run_dir / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1e-3 * torch.ones_like(weights[name])
    save_file(weights, run_dir / "model.safetensors")


def test_reload_is_off_without_a_key_and_guarded_with_one(models):
    with serving(create_app(make_settings(models))) as c:
        r = c.post("/admin/reload")
        assert r.status_code == 403 and "NLD_API_KEY" in r.json()["detail"]
    with serving(create_app(make_settings(models, api_key="k3y"))) as c:
        assert c.post("/admin/reload").status_code == 401
        r = c.post("/admin/reload", headers=KEY)
        assert r.status_code == 200 and r.json()["unchanged"] == ["easy"]


def test_failed_reload_keeps_serving_and_good_reload_retires_old_sessions(models, stream):
    with serving(create_app(make_settings(models, api_key="k3y"))) as c:
        old = c.get("/models/easy", headers=KEY).json()["version"]
        sid = c.post("/segment/stream", json={"observations": stream[:5]}, headers=KEY).json()[
            "session_id"
        ]
        good = (models / "easy" / "model.safetensors").read_bytes()
        (models / "easy" / "model.safetensors").write_bytes(good[: len(good) // 2])  # truncated
        r = c.post("/admin/reload", headers=KEY)
        assert r.status_code == 422 and not r.json()["ok"]
        assert f"still serving version {old}" in r.json()["failed"]["easy"]
        nxt = {"session_id": sid, "observations": stream[5:8]}
        assert c.post("/segment/stream", json=nxt, headers=KEY).status_code == 200
        assert c.get("/models/easy", headers=KEY).json()["version"] == old
        assert "easy" in c.get("/readyz").json()["failed"]

        (models / "easy" / "model.safetensors").write_bytes(good)
        _perturb_weights(models / "easy")
        r = c.post("/admin/reload", headers=KEY)
        assert r.status_code == 200, r.text
        new = r.json()["loaded"]["easy"]
        assert new != old and c.get("/readyz").json()["failed"] == {}
        stale = c.post("/segment/stream", json=nxt, headers=KEY)
        assert stale.status_code == 409 and "open a new session" in stale.json()["detail"]
        fresh = c.post("/segment/stream", json={"observations": stream[:5]}, headers=KEY)
        assert fresh.json()["version"] == new


def test_every_worker_follows_a_reload(models, redis_url, key_prefix):
    settings = make_settings(
        models,
        api_key="k3y",
        session_store=redis_url,
        session_key_prefix=key_prefix,
        reload_poll_seconds=0.1,
    )
    with serving(create_app(settings)) as a, serving(create_app(settings)) as b:
        old = b.get("/models/easy", headers=KEY).json()["version"]
        _perturb_weights(models / "easy")
        new = a.post("/admin/reload", headers=KEY).json()["loaded"]["easy"]
        deadline = time.monotonic() + 60
        while b.get("/models/easy", headers=KEY).json()["version"] == old:
            assert time.monotonic() < deadline, "the other worker never reloaded"
            time.sleep(0.1)
        assert b.get("/models/easy", headers=KEY).json()["version"] == new


class _Payload:
    """Unpickling this runs a shell command: the test checks that it never runs."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_is_never_loaded(models, tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Payload(marker))
    for name, weights_file in [("as-weights", "model.safetensors"), ("beside", "model.pth")]:
        shutil.copytree(models / "easy", models / name)
        (models / name / "model.safetensors").unlink()
        (models / name / weights_file).write_bytes(evil)
    (models / "easy" / "trainer.pkl").write_bytes(evil)  # a stray pickle next to good weights
    with serving(create_app(make_settings(models))) as c:
        body = c.get("/readyz").json()
        assert list(body["models"]) == ["easy"]
        assert set(body["failed"]) == {"as-weights", "beside"}
        assert "model.safetensors" in body["failed"]["beside"]
    assert not marker.exists()
