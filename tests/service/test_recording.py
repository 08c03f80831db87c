"""POST /segment: a whole recording, online or offline, and the probabilities a stream gets."""

import numpy as np
import pytest

from service.client import InvalidRequest, NLDClient


def test_online_labels_and_probabilities_are_the_streams(client, stream):
    whole = client.post("/segment", json={"observations": stream}).json()
    streamed = client.post("/segment/stream", json={"observations": stream, "end": True}).json()
    results = streamed["results"]
    assert whole["labels"] == [r["label"] for r in results]
    p = np.array(whole["probabilities"])
    assert p.shape == (len(stream), 2)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
    np.testing.assert_allclose(p, [r["probabilities"] for r in results], atol=1e-9)
    np.testing.assert_allclose(whole["z"], [r["z"] for r in results], atol=1e-5)
    assert p.argmax(1).tolist() == whole["labels"]


@pytest.mark.parametrize("method", ["smooth", "viterbi"])
def test_offline_labels_come_from_the_whole_recording(client, stream, method):
    body = {"observations": stream, "offline": True, "method": method}
    r = client.post("/segment", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["offline"] and len(out["labels"]) == len(stream)
    online = np.array(
        client.post("/segment", json={"observations": stream}).json()["probabilities"]
    )
    offline = np.array(out["probabilities"])
    # The last step has no future: smoothing and filtering agree there.
    np.testing.assert_allclose(offline[-1], online[-1], atol=1e-9)
    if method == "smooth":
        assert offline.argmax(1).tolist() == out["labels"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"observations": [[0.0, 1.0], [1.0, 2.0]]}, "dimension 2; model 'easy' expects 4"),
        ({"observations": [[0.0] * 4]}, "at least 2"),
        ({"observations": [[0.0] * 4] * 3, "method": "best"}, "smooth"),
    ],
)
def test_bad_recordings_are_a_clear_422(client, body, message):
    r = client.post("/segment", json=body)
    assert r.status_code == 422 and message in r.text


def test_the_client_labels_a_recording(client, stream):
    with NLDClient(client=client) as c:
        out = c.segment(stream, offline=True)
        assert len(out.labels) == len(stream) and out.probabilities is not None
        with pytest.raises(InvalidRequest):
            c.segment([[0.0, 1.0], [1.0, 2.0]])


def test_without_a_chain_streams_carry_the_heads_probabilities(tmp_path, models_dir, stream):
    """A model that labels by its basin head (no state chain kept) streams the head's
    probabilities, the same as POST /segment online; offline it needs a chain."""
    import shutil

    from nld import analysis_file, checkpoint
    from service.main import create_app
    from tests.service.conftest import make_settings, serving

    shutil.copytree(models_dir / "easy", tmp_path / "easy")
    model, fitted = checkpoint.load(tmp_path / "easy")
    fitted.set_chain(None)
    _, meta = checkpoint.read_config(tmp_path / "easy")
    checkpoint.save(tmp_path / "easy", model, fitted, meta=meta)
    (tmp_path / "easy" / analysis_file.FILE).unlink()  # it belonged to the old weights
    with serving(create_app(make_settings(tmp_path))) as c:
        assert c.get("/models/easy").json()["labels_from"] == "basin head"
        whole = c.post("/segment", json={"observations": stream}).json()
        body = {"observations": stream, "end": True}
        results = c.post("/segment/stream", json=body).json()["results"]
        p = np.array(whole["probabilities"])
        np.testing.assert_allclose(p, [r["probabilities"] for r in results], atol=1e-9)
        assert whole["labels"] == [r["label"] for r in results] == p.argmax(1).tolist()
        r = c.post("/segment", json={"observations": stream, "offline": True})
        assert r.status_code == 422 and "nld fit-chain" in r.text


def test_a_dynamic_chain_streams_in_chunks_as_in_one_pass(tmp_path, models_dir, easy_data, stream):
    """A model labelling by a dynamic chain (AR(1) emissions, nld.state_chain): the session
    carries the last observation with the chain's belief, so a stream cut into chunks gets
    the probabilities of one pass, and offline labels come from the same chain."""
    import shutil

    from nld import analysis_file, checkpoint
    from nld.inference import read_path
    from nld.state_chain import fit_dynamic_chain
    from service.main import create_app
    from tests.service.conftest import make_settings, serving

    shutil.copytree(models_dir / "easy", tmp_path / "easy")
    model, fitted = checkpoint.load(tmp_path / "easy")
    train = easy_data[0].x
    _, classes = read_path(model, fitted, train, chain=False)
    assert classes is not None
    fitted.set_chain(fit_dynamic_chain(train, classes, fitted.minima.double().numpy()))
    _, meta = checkpoint.read_config(tmp_path / "easy")
    checkpoint.save(tmp_path / "easy", model, fitted, meta=meta)
    (tmp_path / "easy" / analysis_file.FILE).unlink(missing_ok=True)  # the old chain's
    with serving(create_app(make_settings(tmp_path))) as c:
        assert c.get("/models/easy").json()["labels_from"] == "state chain"
        whole = np.array(c.post("/segment", json={"observations": stream}).json()["probabilities"])
        sid, got = None, []
        for seq, (a, b) in enumerate([(0, 7), (7, 8), (8, 33), (33, len(stream))]):
            body = {"observations": stream[a:b], "seq": seq, "end": b == len(stream)}
            body |= {"session_id": sid} if sid else {}
            r = c.post("/segment/stream", json=body).json()
            sid = r["session_id"]
            got += [res["probabilities"] for res in r["results"]]
        np.testing.assert_allclose(got, whole, atol=1e-9)
        reloaded = checkpoint.load(tmp_path / "easy")[1].chain
        assert reloaded is not None and reloaded.dynamic
        log_p, _, _ = reloaded.filter(np.asarray(stream)[None])
        np.testing.assert_allclose(whole, np.exp(log_p[0]), atol=1e-9)
        off = c.post("/segment", json={"observations": stream, "offline": True})
        assert off.status_code == 200 and len(off.json()["labels"]) == len(stream)
