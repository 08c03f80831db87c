"""Every route through the app in process: answers, and clear 4xx for bad input."""

import json
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from service.main import create_app
from service.registry import Loading
from tests.service.conftest import make_settings, serving


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and list(r.json()["models"]) == ["easy"]


def test_answers_while_its_models_load(models_dir, monkeypatch):
    """The server answers at once; a model's endpoints are 503 with Retry-After, saying what
    is being done, until it is loaded."""
    import threading

    from service import loader

    release = threading.Event()
    real = loader.load_model

    def slow(run_dir, settings, status):
        status(Loading("analysing its landscape (a test holds it)", retry_after=7))
        release.wait(60)
        return real(run_dir, settings, status)

    monkeypatch.setattr(loader, "load_model", slow)
    app = create_app(make_settings(models_dir))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        deadline = time.monotonic() + 30
        while "analysing" not in c.get("/readyz").json()["loading"].get("easy", ""):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ready = c.get("/readyz")
        assert ready.status_code == 503 and not ready.json()["ready"]
        for r in (c.get("/landscape/minima"), c.get("/models/easy")):
            assert r.status_code == 503 and r.headers["Retry-After"] == "7"
            assert "model 'easy' is loading: analysing its landscape" in r.json()["detail"]
        assert c.get("/models").json()["loading"]["easy"].startswith("analysing")
        release.set()
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert c.get("/landscape/minima").status_code == 200


def test_a_bad_model_is_reported_not_fatal(tmp_path, models_dir):
    import shutil

    shutil.copytree(models_dir / "easy", tmp_path / "easy")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with serving(create_app(make_settings(tmp_path))) as c:
        body = c.get("/readyz").json()
        assert list(body["models"]) == ["easy"] and "not valid JSON" in body["failed"]["broken"]


def test_minima_carry_the_split_tests_warning(tmp_path, models_dir):
    import shutil

    shutil.copytree(models_dir / "easy", tmp_path / "easy")
    path = tmp_path / "easy" / "config.json"
    config = json.loads(path.read_text())
    split = config["meta"]["basin_head"]["chain"]["split"]
    assert not split["preferred"]  # two states, two wells
    # as training records it when the data hold a third state in the well of minimum 1
    split.update(preferred=True, merged=[1], not_gaussian=[])
    path.write_text(json.dumps(config))
    with serving(create_app(make_settings(tmp_path))) as c:
        warnings = c.get("/landscape/minima").json()["warnings"]
    assert any("more states than the energy has minima" in w for w in warnings)


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
    assert [m["regime"] for m in minima["minima"]] == [0, 1]  # two states: two regimes
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


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"observations": [[NaN, 1, 2, 3]]}', 422, "finite"),
        (b'{"observations": [[Infinity, 1, 2, 3]]}', 422, "finite"),
        (b'{"observations": []}', 422, "at least 1"),
        (b'{"observations": [[1, 2, 3, 4], [1, 2]]}', 422, "ragged"),
        (b'{"observations": [[1, 2, 3]]}', 422, "expects 4"),
        (b'{"observations": [[1, 2, 3, 4]], "model": "nope"}', 404, "no model"),
        (b'{"observations": [[1, 2, 3, 4]], "session_id": "never-opened"}', 404, "no session"),
        (b'{"observations": [[1, 2, 3, 4]], "session_id": "nope"}', 422, "session_id"),
        (b'{"observations": [["1.0", 2, 3, 4]]}', 422, "valid number"),
        (b'{"observations": [[true, 2, 3, 4]]}', 422, "valid number"),
        (b'{"observations": [[1, 2, 3, 4]], "end": "yes"}', 422, "valid boolean"),
        (b'{"observations": [[1, 2, 3, 4]], "seq": "0"}', 422, "valid integer"),
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
    with serving(create_app(make_settings(models_dir, max_body_bytes=1000))) as c:
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
    with serving(create_app(make_settings(models_dir, max_observations=5))) as c:
        r = c.post("/segment/stream", json={"observations": [[1, 2, 3, 4]] * 6})
        assert r.status_code == 422 and "max_observations" in r.json()["detail"]


def test_api_key(models_dir):
    with serving(create_app(make_settings(models_dir, api_key="s3cret"))) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/models").status_code == 401
        assert c.get("/models", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get("/models", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.post("/segment/stream", json={"observations": [[1, 2, 3, 4]]})
        assert r.status_code == 401
        # The docs and the metrics are behind the key too (Prometheus sends it as a bearer).
        for path in ("/metrics", "/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 401, path
        assert c.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/openapi.json", headers={"X-API-Key": "s3cret"}).status_code == 200
    public = make_settings(models_dir, api_key="s3cret", public_docs=True)
    with serving(create_app(public)) as c:
        assert c.get("/openapi.json").status_code == 200 and c.get("/docs").status_code == 200
        assert c.get("/models").status_code == 401 and c.get("/metrics").status_code == 401


def test_the_docs_need_no_internet(client):
    """Swagger UI and ReDoc load their JavaScript and CSS from the service itself."""
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn." not in html and "fonts.googleapis" not in html, page
        for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/redoc.standalone.js"):
            if asset in html:
                r = client.get(asset)
                assert r.status_code == 200 and len(r.content) > 100_000, asset
    assert "/docs-assets/swagger-ui.css" in client.get("/docs").text


def test_every_error_has_one_readable_detail(client):
    """`detail` is a string everywhere; validation errors add `errors`; what the user sent is
    echoed as a short prefix at most."""
    huge = "x" * 500_000
    cases = [
        client.post("/segment/stream", json={"session_id": huge, "observations": [[1, 2, 3, 4]]}),
        client.delete(f"/sessions/{huge[:30_000]}"),
        client.get("/landscape/minima", params={"model": huge[:30_000]}),
        client.post("/landscape/energy", json={"grid": {"kind": "cube"}}),
        client.get("/nowhere"),
        client.put("/models"),
        client.post("/sample", json={"n_paths": "many"}),
    ]
    for r in cases:
        body = r.json()
        assert 400 <= r.status_code < 500 and isinstance(body["detail"], str), body
        assert len(r.content) < 3000, (r.status_code, len(r.content))
    invalid = cases[0].json()
    assert invalid["detail"].startswith("invalid request: session_id")
    assert invalid["errors"][0]["loc"] == ["body", "session_id"]


def test_energy_grids(client):
    box = client.post(
        "/landscape/energy",
        json={"grid": {"kind": "box", "lo": [-2, -2], "hi": [2, 2], "resolution": 9}},
    ).json()
    assert len(box["energy"]) == 9 and len(box["energy"][0]) == 9
    untyped = client.post(
        "/landscape/energy", json={"grid": {"lo": [-2, -2], "hi": [2, 2], "resolution": 9}}
    )
    assert untyped.status_code == 200 and untyped.json()["energy"] == box["energy"]  # a box
    plane = client.post("/landscape/energy", json={"grid": {"kind": "plane", "resolution": 7}})
    assert plane.status_code == 200 and len(plane.json()["basis"]) == 2
    wide = {"kind": "box", "lo": [-1.0] * 1200, "hi": [1.0] * 1200, "resolution": 4096}
    for grid, message in (
        ({"kind": "box", "lo": [-2, -2], "hi": [2, 2], "resolution": 4096}, "max_grid_points"),
        ({"kind": "box", "lo": [-2], "hi": [2], "resolution": 4}, "latent dimension"),
        ({"kind": "box", "lo": [2, 2], "hi": [-2, 2], "resolution": 4}, "below"),
        (wide, "latent dimension 2"),  # checked before the size: never 4096 ** 1200
        ({"kind": "cube"}, "kind must be 'box' or 'plane'"),
    ):
        r = client.post("/landscape/energy", json={"grid": grid})
        assert r.status_code == 422 and message in r.json()["detail"], r.json()
    at_cap = {"kind": "box", "lo": [-2, -2], "hi": [2, 2], "resolution": 70}
    small = create_app(make_settings(client.app.state.settings.models_dir, max_grid_points=4900))
    with serving(small) as c:
        assert c.post("/landscape/energy", json={"grid": at_cap}).status_code == 200
        over = c.post("/landscape/energy", json={"grid": {**at_cap, "resolution": 71}})
        assert over.status_code == 422


def test_sample(client):
    r = client.post("/sample", json={"n_paths": 3, "n_steps": 5, "seed": 1})
    paths = r.json()["paths"]
    assert len(paths) == 3 and len(paths[0]) == 6 and len(paths[0][0]) == 2
    assert r.json()["velocities"] is None and r.json()["space"] == "latent"
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
        ({"velocities": True}, "overdamped: its paths have no velocities"),
        ({"space": "both"}, "'latent' or 'observed'"),
    ):
        r = client.post("/sample", json=body)
        assert r.status_code == 422 and message in json.dumps(r.json()), (body, r.json())


def test_sample_encodings_and_spaces(client):
    import io

    body = {"n_paths": 3, "n_steps": 5, "seed": 1}
    paths = np.array(client.post("/sample", json=body).json()["paths"])
    npy = client.post("/sample", json=body, headers={"Accept": "application/x-npy"})
    assert npy.headers["content-type"] == "application/x-npy"
    assert npy.headers["x-nld-model"] == "easy"
    np.testing.assert_array_equal(np.load(io.BytesIO(npy.content)), paths.astype(np.float32))
    lines = client.post("/sample", json=body, headers={"Accept": "application/x-ndjson"})
    rows = [json.loads(line) for line in lines.text.splitlines()]
    assert [row["path"] for row in rows] == [0, 1, 2]
    np.testing.assert_array_equal(np.array([row["positions"] for row in rows]), paths)
    refused = client.post("/sample", json=body, headers={"Accept": "text/csv"})
    assert refused.status_code == 406 and "application/x-npy" in refused.json()["detail"]
    # The observed space: the decoder's mean along the same paths, in the data's units.
    observed = client.post("/sample", json={**body, "space": "observed"}).json()
    assert observed["space"] == "observed" and np.array(observed["paths"]).shape == (3, 6, 4)
    from nld import checkpoint

    model, _ = checkpoint.load(client.app.state.settings.models_dir / "easy")
    with torch.no_grad():
        mean = model.decoder.mean(torch.tensor(paths, dtype=torch.float32))
        expected = (mean * model.x_std + model.x_mean).numpy()
    np.testing.assert_allclose(observed["paths"], expected, rtol=1e-5, atol=1e-5)


def test_metrics(client):
    client.post("/segment/stream", json={"observations": [[1, 2, 3, 4]], "end": True})
    text = client.get("/metrics").text
    assert 'nld_requests_total{method="POST",route="/segment/stream",status="200"}' in text
    assert "nld_open_sessions" in text and "nld_stream_events_total" in text
    assert "nld_request_seconds_bucket" in text


def test_made_up_methods_and_paths_add_no_metric_series(client):
    client.get("/metrics")
    series = len(client.get("/metrics").text.splitlines())
    for i in range(20):
        client.request(f"BREW{i}", "/segment/stream")
        client.get(f"/no/such/path/{i}")
    text = client.get("/metrics").text
    assert "BREW" not in text and "/no/such" not in text
    assert 'method="other",route="/segment/stream"' in text
    # One new series each at most (other x 405, GET x unmatched x 404), with its buckets.
    assert len(text.splitlines()) - series < 40


def test_an_unexpected_error_is_a_json_500_that_tells_nothing_internal(models_dir, monkeypatch):
    from service.loaded import LoadedModel

    def broken(self, *args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(LoadedModel, "energy_box", broken)
    app = create_app(make_settings(models_dir))
    with serving(app) as c:
        c_safe = TestClient(app, raise_server_exceptions=False)
        grid = {"kind": "box", "lo": [-1, -1], "hi": [1, 1], "resolution": 3}
        r = c_safe.post("/landscape/energy", json={"grid": grid})
        assert r.status_code == 500 and r.json() == {
            "detail": "internal error: the service's log has the details"
        }
        assert c.get("/healthz").status_code == 200


def test_underdamped_samples_with_velocities_and_observations(tmp_path):
    """On the shipped underdamped model (its stored analysis makes it load in a second)."""
    import shutil
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "models" / "exp2-underdamped"
    shutil.copytree(shipped, tmp_path / "models" / shipped.name)
    with serving(create_app(make_settings(tmp_path / "models"))) as c:
        body = {"n_paths": 4, "n_steps": 30, "seed": 3, "start": [0.8, 0.3]}
        plain = c.post("/sample", json=body).json()
        both = c.post("/sample", json={**body, "velocities": True}).json()
        assert both["paths"] == plain["paths"]  # the same paths, with their velocities
        v = np.array(both["velocities"])
        assert v.shape == (4, 31, 2) and np.all(v[:, 0] == 0)  # started at rest
        assert np.abs(v[:, 1:]).max() > 0
        rows = c.post(
            "/sample",
            json={**body, "velocities": True},
            headers={"Accept": "application/x-ndjson"},
        ).text.splitlines()
        assert [json.loads(r)["velocities"] for r in rows] == both["velocities"]
        observed = c.post("/sample", json={**body, "space": "observed"}).json()
        assert np.array(observed["paths"]).shape == (4, 31, 15)
        npy = c.post(
            "/sample",
            json={**body, "velocities": True},
            headers={"Accept": "application/x-npy"},
        )
        assert npy.status_code == 406 and "velocities" in npy.json()["detail"]
