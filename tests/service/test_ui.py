"""The landscape page's server side: the page and its assets, the bundled examples and the
table upload (the CLI's loader and its errors), and the plane's offset for 3-D models."""

import shutil

import numpy as np
import pytest

from service.main import create_app
from tests.service.conftest import make_settings, serving, write_csv


@pytest.fixture(scope="module")
def ui(ui_models):
    with serving(create_app(make_settings(ui_models))) as c:
        yield c


def test_the_page_and_its_assets_come_from_the_service(ui):
    page = ui.get("/ui")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '/ui/assets/app.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from outside
    script = ui.get("/ui/assets/app.js")
    assert script.status_code == 200 and "/segment/stream" in script.text
    assert "/ui/assets/vendor/plotly-cartesian.min.js" in script.text
    assert "/ui/vendor/plotly.min.js" in script.text  # the full bundle, for the 3-D surface
    # Both bundles are the same release of plotly.js.
    cartesian = ui.get("/ui/assets/vendor/plotly-cartesian.min.js")
    full = ui.get("/ui/vendor/plotly.min.js")
    assert cartesian.status_code == full.status_code == 200
    version = full.text[:200].split("plotly.js v")[1].split()[0]
    assert f"plotly.js (cartesian - minified) v{version}" in cartesian.text[:200]


def test_the_landscape_as_an_image(ui):
    import io

    from matplotlib import image

    r = ui.get("/landscape/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    pixels = image.imread(io.BytesIO(r.content), format="png")
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 100  # contours drawn
    assert ui.get("/landscape/image").content == r.content  # drawn once per model version
    missing = ui.get("/landscape/image?model=nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_bundled_examples(ui, easy_data):
    assert ui.get("/ui/examples").json() == {"model": "easy", "examples": ["one.csv"]}
    one = ui.get("/ui/examples/one.csv").json()
    np.testing.assert_allclose(one["observations"], easy_data[1].x[0, :80], rtol=1e-6)
    assert one["states"] == easy_data[1].states[0, :80].tolist()
    assert one["columns"] == ["c0", "c1", "c2", "c3"]  # the time column is not a channel
    for name in ("two.csv", ".hidden.csv"):
        r = ui.get(f"/ui/examples/{name}")
        assert r.status_code == 404 and "has no example" in r.json()["detail"]
    assert ui.get("/ui/examples/..%2Fconfig.json").status_code == 404
    assert ui.get("/ui/examples?model=nope").status_code == 404


def test_an_uploaded_table_is_read_as_the_cli_reads_it(ui, easy_data, tmp_path):
    write_csv(tmp_path / "mine.csv", easy_data[1].x[1, :50])
    body = (tmp_path / "mine.csv").read_bytes()
    got = ui.post("/ui/table?filename=mine.csv", content=body).json()
    np.testing.assert_allclose(got["observations"], easy_data[1].x[1, :50], rtol=1e-6)
    assert "states" not in got

    def error(content: bytes, name: str = "bad.csv") -> str:
        r = ui.post(f"/ui/table?filename={name}", content=content)
        assert r.status_code == 422, r.text
        return r.json()["detail"]

    assert "bad.csv: column(s) 'c1' (string) are not numeric" in error(
        b"c0,c1,c2,c3\n1,a,2,3\n1,b,2,3\n"
    )
    assert (
        error(b"c0,c1\n1,2\n3,4\n") == "bad.csv: observations have D = 2, the model expects D = 4"
    )
    assert (
        error(b"c0,c1,c2,c3\n1,2,3,4\n") == "bad.csv: 1 row(s); a recording needs at least 2 steps"
    )
    assert error(b"  \n") == "bad.csv: the file is empty"
    assert error(b"x", "data.xlsx") == "data.xlsx: upload a .csv or .tsv table"
    assert "tmp" not in error(b"c0,c1\n1,2\n3,4\n")  # the message names the upload, not a path


def test_the_key_guards_the_data_not_the_page(ui_models):
    with serving(create_app(make_settings(ui_models, api_key="s3cret"))) as c:
        assert c.get("/ui").status_code == 200
        assert c.get("/ui/assets/app.js").status_code == 200
        assert c.get("/ui/examples").status_code == 401
        assert c.post("/ui/table", content=b"a\n1\n2\n").status_code == 401
        assert c.get("/landscape/image").status_code == 401  # the picture is data too
        assert c.get("/ui/examples", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_a_plane_offset_needs_latent_dimension_3(ui):
    r = ui.post("/landscape/energy", json={"grid": {"kind": "plane", "offset": 0.5}})
    assert r.status_code == 422 and "offset needs latent dimension 3, not 2" in r.json()["detail"]
    flat = ui.post("/landscape/energy", json={"grid": {"kind": "plane", "resolution": 8}})
    assert flat.status_code == 200 and len(flat.json()["energy"]) == 8


def test_a_slice_of_a_3d_landscape_is_the_plane_moved_along_its_normal():
    """E(z) = z_3 with minima in the plane z_3 = 0.2: the slice at offset 0.5 is the plane
    z_3 = 0.2 +- 0.5 (the normal's sign is the plane's), E constant on it."""
    from types import SimpleNamespace

    from service.loaded import LoadedModel

    minima = [
        SimpleNamespace(position=np.array(p)) for p in ([0, 0, 0.2], [1, 0, 0.2], [0, 1, 0.2])
    ]
    index = SimpleNamespace(energy=lambda z: z[:, 2])
    lm = SimpleNamespace(analysis=SimpleNamespace(minima=minima, index=index))
    flat, plane = LoadedModel.energy_plane(lm, 5, 0.5)  # type: ignore[arg-type]
    np.testing.assert_allclose(flat.energy, 0.2, atol=1e-12)
    moved, plane2 = LoadedModel.energy_plane(lm, 5, 0.5, 0.5)  # type: ignore[arg-type]
    np.testing.assert_array_equal(plane2.basis, plane.basis)
    assert abs(moved.energy - 0.2).max() == pytest.approx(0.5) and np.ptp(moved.energy) < 1e-12
    np.testing.assert_allclose(plane2.origin - plane.origin, [0, 0, moved.energy[0, 0] - 0.2])


def test_the_chains_dwell_times_are_given_per_minimum(ui, ui_models):
    from nld import checkpoint

    _, fitted = checkpoint.load(ui_models / "easy")
    chain = fitted.chain or fitted.head_chain
    got = ui.get("/landscape/transitions").json()["dwell_times_chain"]
    minima = [m["position"] for m in ui.get("/landscape/minima").json()["minima"]]
    # each class of the chain stands for the minimum nearest its position
    nearest = [
        int(np.argmin(np.linalg.norm(np.array(minima) - p, axis=1)))
        for p in fitted.minima.double().numpy()
    ]
    np.testing.assert_allclose([got[i] for i in nearest], chain.dwell_steps())


def test_the_energy_grid_gives_each_points_basin(ui):
    """Asked for, the basin of every grid point; the grid point nearest each minimum lies in
    that minimum's basin."""
    body = {"grid": {"kind": "plane", "resolution": 41}, "basins": True}
    r = ui.post("/landscape/energy", json=body).json()
    basins, axes = np.array(r["basins"]), r["axes"]
    assert basins.shape == np.array(r["energy"]).shape == (41, 41)
    minima = ui.get("/landscape/minima").json()["minima"]
    assert set(basins.ravel()) <= set(range(len(minima)))
    origin, basis = np.array(r["origin"]), np.array(r["basis"])
    for k, m in enumerate(minima):
        u, v = basis @ (np.array(m["position"]) - origin)
        i, j = np.abs(np.array(axes[0]) - u).argmin(), np.abs(np.array(axes[1]) - v).argmin()
        assert basins[i, j] == k
    assert ui.post("/landscape/energy", json={"grid": body["grid"]}).json()["basins"] is None


def test_an_upload_with_sequences_streams_its_first_recording(ui, easy_data):
    x, states = easy_data[1].x[:2, :30], easy_data[1].states[:2, :30]
    rows = ["seq,c0,c1,c2,c3,state"]
    for n in range(2):
        rows += [",".join([str(n), *map(str, x[n, t]), str(states[n, t])]) for t in range(30)]
    body = ("\n".join(rows) + "\n").encode()
    query = "filename=two.csv&sequence_column=seq&states_column=state"
    got = ui.post(f"/ui/table?{query}", content=body).json()
    assert got["recordings"] == 2 and got["states"] == states[0].tolist()
    np.testing.assert_allclose(got["observations"], x[0], rtol=1e-6)
    r = ui.post("/ui/table?filename=two.csv&sequence_column=sequence", content=body)
    assert r.status_code == 422 and "two.csv: no column 'sequence'" in r.json()["detail"]


def test_an_example_with_quoted_names_keeps_its_states(tmp_path, ui_models, easy_data):
    """A table as `nld data generate --format csv` writes it quotes its column names."""
    root = tmp_path / "models"
    shutil.copytree(ui_models / "easy", root / "easy")
    x, states = easy_data[1].x[2, :20], easy_data[1].states[2, :20]
    rows = ['"time","c0","c1","c2","c3","state"']
    rows += [",".join([str(t), *map(str, x[t]), str(states[t])]) for t in range(20)]
    (root / "easy" / "examples" / "quoted.csv").write_text("\n".join(rows) + "\n")
    with serving(create_app(make_settings(root))) as c:
        got = c.get("/ui/examples/quoted.csv").json()
    assert got["states"] == states.tolist() and len(got["observations"]) == 20
