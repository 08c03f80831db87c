"""Every route through the app in process: answers, and clear 4xx for bad input."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.service.conftest import make_settings


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and list(r.json()["models"]) == ["easy"]


def test_not_ready_before_loading(models_dir):
    app = create_app(make_settings(models_dir))
    c = TestClient(app)  # no `with`: the lifespan (model loading) has not run
    assert c.get("/healthz").status_code == 200
    assert c.get("/readyz").status_code == 503
    assert c.get("/landscape/minima").status_code == 503


def test_a_bad_model_is_reported_not_fatal(tmp_path, models_dir):
    import shutil

    shutil.copytree(models_dir / "easy", tmp_path / "easy")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with TestClient(create_app(make_settings(tmp_path))) as c:
        body = c.get("/readyz").json()
        assert list(body["models"]) == ["easy"] and "not valid JSON" in body["failed"]["broken"]


def test_minima_carry_the_split_tests_warning(tmp_path, models_dir):
    import shutil

    shutil.copytree(models_dir / "easy", tmp_path / "easy")
    path = tmp_path / "easy" / "config.json"
    config = json.loads(path.read_text())
    split = config["meta"]["basin_head"]["chain"]["split"]
    assert not split["preferred"]  # two states, two wells
    split["preferred"] = True  # as training records it when the data hold a third
    path.write_text(json.dumps(config))
    with TestClient(create_app(make_settings(tmp_path))) as c:
        warnings = c.get("/landscape/minima").json()["warnings"]
    assert any("one more state than the energy has minima" in w for w in warnings)


def test_models(client):
    listing = client.get("/models").json()
    assert listing["default"] == "easy"
    (m,) = listing["models"]
    assert m["obs_dim"] == 4 and m["n_minima"] == 2 and m["streams"]
    assert m["labels_from"] == "state chain"  # the smoke preset fits a head and a chain
    detail = client.get("/models/easy").json()
    assert detail["version"] == m["version"] and detail["config"]["obs_dim"] == 4
    r = client.get("/models/nope")
    assert r.status_code == 404 and "easy" in r.json()["detail"]


def test_landscape(client):
    minima = client.get("/landscape/minima").json()
    assert len(minima["minima"]) == 2
    assert not any("one more state" in w for w in minima["warnings"])
    for m in minima["minima"]:
        assert set(m["occupancy"]) == {"sampling", "zeroth", "second", "quadrature"}
        assert all(ev > 0 for ev in m["hessian_eigenvalues"])
    for method in ("sampling", "zeroth", "second", "quadrature"):
        occ = client.get("/landscape/occupancy", params={"method": method}).json()
        assert occ["method"] == method and sum(occ["occupancy"]) == pytest.approx(1)
        assert occ["description"]
    assert client.get("/landscape/occupancy", params={"method": "magic"}).status_code == 422
    tr = client.get("/landscape/transitions").json()
    assert len(tr["saddles"]) == 1 and all(t > 0 for t in tr["dwell_times"])
    assert tr["saddles"][0]["barrier_top_ratio"] > 0.5  # an integral over its Laplace value
    clock = client.get("/models/easy").json()["config"]["clock"]
    assert tr["clock"] == pytest.approx(clock) and clock != 1  # the smoke run's fitted clock
    assert all(t > 0 for t in tr["dwell_times_simulated"])
    exits = np.array(tr["transitions_simulated"])  # two wells: all exits lead to the other
    assert exits.shape == (2, 2) and exits[0, 1] > 0 and exits[1, 0] > 0
    assert exits[0, 0] == exits[1, 1] == 0
    assert client.get("/landscape/minima", params={"model": "nope"}).status_code == 404


def test_energy_grids(client):
    box = client.post(
        "/landscape/energy",
        json={"grid": {"kind": "box", "lo": [-2, -2], "hi": [2, 2], "resolution": 9}},
    ).json()
    assert len(box["energy"]) == 9 and len(box["energy"][0]) == 9
    plane = client.post("/landscape/energy", json={"grid": {"kind": "plane", "resolution": 7}})
    assert plane.status_code == 200 and len(plane.json()["basis"]) == 2
    for grid, message in (
        ({"kind": "box", "lo": [-2, -2], "hi": [2, 2], "resolution": 4096}, "max_grid_points"),
        ({"kind": "box", "lo": [-2], "hi": [2], "resolution": 4}, "latent dimension"),
        ({"kind": "box", "lo": [2, 2], "hi": [-2, 2], "resolution": 4}, "below"),
    ):
        r = client.post("/landscape/energy", json={"grid": grid})
        assert r.status_code == 422 and message in json.dumps(r.json())


def test_sample(client):
    r = client.post("/sample", json={"n_paths": 3, "n_steps": 5, "seed": 1})
    paths = r.json()["paths"]
    assert len(paths) == 3 and len(paths[0]) == 6 and len(paths[0][0]) == 2
    again = client.post("/sample", json={"n_paths": 3, "n_steps": 5, "seed": 1}).json()
    assert again["paths"] == paths  # seeded
    start = client.post("/sample", json={"n_paths": 2, "n_steps": 1, "start": [0.5, -0.5]})
    assert start.json()["paths"][0][0] == pytest.approx([0.5, -0.5])
    for body, message in (
        ({"n_paths": 10_000}, "max_sample_paths"),
        ({"n_steps": 100_000}, "max_sample_steps"),
        ({"n_paths": 1000, "n_steps": 5000}, "max_sample_values"),
        ({"start": [1.0]}, "latent dimension"),
        ({"dt": -1}, "greater than 0"),
    ):
        r = client.post("/sample", json=body)
        assert r.status_code == 422 and message in json.dumps(r.json()), (body, r.json())


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"observations": [[NaN, 1, 2, 3]]}', 422, "finite"),
        (b'{"observations": [[Infinity, 1, 2, 3]]}', 422, "finite"),
        (b'{"observations": []}', 422, "at least 1"),
        (b'{"observations": [[1, 2, 3, 4], [1, 2]]}', 422, "ragged"),
        (b'{"observations": [[1, 2, 3]]}', 422, "expects 4"),
        (b'{"observations": [[1, 2, 3, 4]], "model": "nope"}', 404, "no model"),
        (b'{"observations": [[1, 2, 3, 4]], "session_id": "nope"}', 404, "no session"),
        (b'{"observations": [[1, 2, 3, 4]], "seq": 3}', 409, "starts at seq 0"),
        (b'{"observations": [[1, 2, 3, 4]], "extra": 1}', 422, "extra"),
        (b'{"observations": [[1e300, 1e300, 1e300, 1e300]]}', 422, "float32"),
        (b"not json", 422, "JSON"),
    ],
)
def test_bad_stream_input_is_a_clear_4xx(client, body, status, message):
    r = client.post("/segment/stream", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and message in json.dumps(r.json()), r.json()


def test_body_limit_before_parsing(models_dir):
    with TestClient(create_app(make_settings(models_dir, max_body_bytes=1000))) as c:
        big = json.dumps({"observations": [[1.0, 2.0, 3.0, 4.0]] * 200})
        r = c.post("/segment/stream", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413

        def chunks():  # no content-length: counted as it arrives
            for _ in range(20):
                yield b" " * 100

        r = c.post(
            "/segment/stream", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        r = c.post("/segment/stream", json={"observations": [[1, 2, 3, 4]] * 3})
        assert r.status_code == 200


def test_observation_cap(models_dir):
    with TestClient(create_app(make_settings(models_dir, max_observations=5))) as c:
        r = c.post("/segment/stream", json={"observations": [[1, 2, 3, 4]] * 6})
        assert r.status_code == 422 and "max_observations" in r.json()["detail"]


def test_api_key(models_dir):
    with TestClient(create_app(make_settings(models_dir, api_key="s3cret"))) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/models").status_code == 401
        assert c.get("/models", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get("/models", headers={"X-API-Key": "s3cret"}).status_code == 200
        r = c.post("/segment/stream", json={"observations": [[1, 2, 3, 4]]})
        assert r.status_code == 401


def test_metrics(client):
    client.post("/segment/stream", json={"observations": [[1, 2, 3, 4]], "end": True})
    text = client.get("/metrics").text
    assert 'nld_requests_total{method="POST",route="/segment/stream",status="200"}' in text
    assert "nld_open_sessions" in text and "nld_stream_events_total" in text
    assert "nld_request_seconds_bucket" in text
