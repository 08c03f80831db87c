"""The command line: one-line errors without tracebacks, and the happy path end to end."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nld import checkpoint, state_chain
from nld.data import Dataset, load_spec, sample, save
from tests.fixtures import easy_spec
from training.cli import main
from training.evaluate import evaluate


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_nld_script_loads_without_torch():
    """`nld serve --workers N` spawns workers that re-import the `nld` script (and
    service.cli, whose protocol class the config holds) before they can answer uvicorn's
    health pings: with torch in them, a loaded machine's workers were killed as hung while
    they started, again and again."""
    code = (
        "import sys, training.cli, service.cli; "
        "print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_generate_writes_splits(tmp_path, capsys, monkeypatch):
    spec = json.loads(load_spec("exp1").model_dump_json())
    spec["splits"] = {"train": {"n_sequences": 3, "length": 20, "seed": 1}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    code, out, _ = _run(
        capsys, "data", "generate", "--spec", str(tmp_path / "s.json"), "--out", str(tmp_path / "d")
    )
    assert code == 0 and "train.npz" in out
    with np.load(tmp_path / "d" / "train.npz") as f:
        assert f["x"].shape == (3, 20, 15) and f["states"].shape == (3, 20)
    # The same split as a table, which reads back as the same recordings and states.
    from nld.data.recordings import as_recordings, evaluation_set
    from nld.data.tables import TableOptions

    for form in ("csv", "parquet"):
        argv = ["data", "generate", "--spec", str(tmp_path / "s.json"), "--format", form]
        code, out, _ = _run(capsys, *argv, "--out", str(tmp_path / "d"))
        assert code == 0 and f"train.{form}" in out
        options = TableOptions(sequence_column="sequence", states_column="state")
        back = evaluation_set(as_recordings(tmp_path / "d" / f"train.{form}", table=options))
        with np.load(tmp_path / "d" / "train.npz") as f:
            np.testing.assert_array_equal(back.x, f["x"])
            np.testing.assert_array_equal(back.states, f["states"])


def test_wells_writes_splits_and_their_truth(tmp_path, capsys):
    out_dir = tmp_path / "w"
    argv = ["data", "wells", "--wells", "3", "--dim", "4", "--sequences", "8", "--length", "30"]
    code, out, _ = _run(capsys, *argv, "--out", str(out_dir))
    assert code == 0 and "wells.json" in out
    truth = json.loads((out_dir / "wells.json").read_text())
    assert len(truth["minima"]) == 3 and sum(truth["occupancy"]) == pytest.approx(1.0)
    with np.load(out_dir / "train.npz") as f:
        assert f["x"].shape == (8, 30, 4) and set(np.unique(f["states"])) <= {0, 1, 2}
    with np.load(out_dir / "test.npz") as f:
        assert f["x"].shape == (2, 30, 4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "generate", "--spec", "nope", "--out", "x"], "no spec"),
        (["data", "wells", "--wells", "1", "--out", "x"], "--wells >= 2"),
        (["train", "--data", "missing.npz", "--out", "r"], "no such file"),
        (["train", "--preset", "nope", "--data", "d.npz", "--out", "r"], "no preset"),
        # Overrides are validated like a preset file, before any data is read.
        (["train", "--iterations", "-5", "--data", "d.npz", "--out", "r"], "greater than 0"),
        (["train", "--set", "train.windw=50", "--data", "d.npz", "--out", "r"], "windw"),
        (["train", "--set", "window=50", "--data", "d.npz", "--out", "r"], "train.KEY=VALUE"),
        (["train", "--set", "model.latent_dim=0", "--data", "d.npz", "--out", "r"], "latent_dim"),
        (["stage", "clock", "no-run", "--data", "d.npz"], "missing"),
        (["stage", "clock", "r", "--set", "model.x=1", "--data", "d.npz"], "train.KEY=VALUE"),
        (["evaluate", "no-run", "--data", "d.npz"], "missing"),
        (["segment", "no-run", "--data", "d.npz", "--out", "l.npy"], "missing"),
        (["analyze", "no-run", "--out", "a.json"], "missing"),
        (["plot", "no-run", "--out", "figs"], "missing"),
        (["fit-chain", "no-run", "--data", "d.npz"], "missing"),
        (["separate", "no-run", "--data", "d.npz"], "missing"),
        (["clock", "no-run", "--data", "d.npz"], "missing"),
        (["depths", "no-run", "--data", "d.npz"], "missing"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err and err.startswith("nld: error:")


def test_bad_data_file_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savez("bad.npz", x=np.full((2, 5, 3), np.nan, dtype=np.float32))
    code, _, err = _run(capsys, "train", "--preset", "smoke", "--data", "bad.npz", "--out", "r")
    assert code == 2 and "non-finite" in err


def test_train_segment_evaluate(tmp_path, capsys, easy_data_cli):
    train_path, test_path = easy_data_cli
    run = tmp_path / "run"
    code, out, err = _run(
        capsys,
        "train",
        "--preset",
        "smoke",
        "--iterations",
        "30",
        "--quiet",
        "--data",
        str(train_path),
        "--out",
        str(run),
    )
    assert code == 0, err
    found = re.search(r"(\d+) energy minima", out)
    assert found, out
    assert (found[1] == "1") == ("warning: the energy has a single minimum" in out)
    # The smoke preset has a basin head and a state chain: fitted whenever there are basins
    # to tell apart; else labels are the basins of the readout positions.
    assert ("labels: readout basins" in out) == (found[1] == "1")
    code, _, err = _run(
        capsys, "segment", str(run), "--data", str(test_path), "--out", str(tmp_path / "l.npy")
    )
    assert code == 0, err
    labels = np.load(tmp_path / "l.npy")
    assert labels.shape == (10, 40) and labels.dtype.kind == "i"
    code, out, err = _run(
        capsys, "evaluate", str(run), "--data", str(test_path), "--out", str(tmp_path / "e.json")
    )
    assert code == 0, err
    assert '"accuracy_mean"' in out
    res = json.loads((tmp_path / "e.json").read_text())
    for key in (
        "n_minima",
        "accuracy_mean",
        "accuracy_std",
        "occupancy_zeroth",
        "occupancy_second",
        "encode_seconds",
    ):
        assert key in res
    code, out, err = _run(
        capsys, "analyze", str(run), "--data", str(test_path), "--out", str(tmp_path / "a.json")
    )
    assert code == 0, err
    res = json.loads((tmp_path / "a.json").read_text())
    for key in (
        "minima",
        "occupancy",
        "saddles",
        "rates",
        "dwell_times",
        "dwell_times_simulated",
        "transitions_simulated",
        "segmentation",
    ):
        assert key in res
    assert set(res["occupancy"]) == {"sampling", "zeroth", "second", "quadrature"}
    # ... and stored beside the model, for these weights, where the service reads it
    from nld import analysis_file, checkpoint

    assert res["weights_sha256"] == checkpoint.weights_sha256(run)
    stored = analysis_file.load(
        run / analysis_file.FILE, checkpoint.load(run)[0], res["weights_sha256"]
    )
    assert [m.position.tolist() for m in stored.minima] == [m["position"] for m in res["minima"]]
    single = any("single minimum" in w for w in res["warnings"])
    assert single == (len(res["minima"]) == 1)
    assert all(len(v) == len(res["minima"]) for v in res["occupancy"].values())
    code, out, err = _run(
        capsys, "plot", str(run), "--data", str(test_path), "--out", str(tmp_path / "fig")
    )
    assert code == 0, err
    for name in ("training", "landscape", "surface", "drift", "segmentation"):
        png = tmp_path / "fig" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
    # a model trained on D = 4 refuses D = 3
    np.savez(tmp_path / "d3.npz", x=np.zeros((2, 5, 3), dtype=np.float32))
    code, _, err = _run(capsys, "evaluate", str(run), "--data", str(tmp_path / "d3.npz"))
    assert code == 2 and "expects D = 4" in err


@pytest.fixture
def easy_data_cli(tmp_path):
    from nld.data import save

    spec = easy_spec()
    save(tmp_path / "train.npz", sample(spec, 20, 40, seed=0))
    save(tmp_path / "test.npz", sample(spec, 10, 40, seed=1))
    return tmp_path / "train.npz", tmp_path / "test.npz"


def test_fit_chain_adds_the_chain_and_separate_acts_on_its_split_test(
    tmp_path, capsys, smoke_run, easy_data
):
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    (run / checkpoint.WEIGHTS).write_bytes(_without_chain(run))
    assert checkpoint.load(run)[1].chain is None
    np.savez(tmp_path / "train.npz", x=easy_data[0].x)
    code, out, err = _run(capsys, "fit-chain", str(run), "--data", str(tmp_path / "train.npz"))
    assert code == 0, err
    assert "state chain: dwell times" in out and "kept" in out
    assert checkpoint.load(run)[1].chain is not None
    fit = checkpoint.read_config(run)[1]["basin_head"]["chain"]
    assert fit["kept"] and not fit["split"]["preferred"] and "warning" not in out
    code, out, err = _run(capsys, "separate", str(run), "--data", str(tmp_path / "train.npz"))
    assert code == 0 and "nothing to separate" in out

    # Data of three states for the model's two wells: the third differs from the first in
    # one coordinate only, so both label it as the first; the split test finds it.
    spec = easy_spec().model_copy(
        update={
            "transition_matrix": [[0.94, 0.03, 0.03], [0.03, 0.94, 0.03], [0.03, 0.03, 0.94]],
            "initial_distribution": [1 / 3] * 3,
            "means": [[1.5] * 4, [-1.5] * 4, [1.5, 1.5, 1.5, -1.5]],
            "covariances": [np.eye(4).tolist()] * 3,
        }
    )
    np.savez(tmp_path / "three.npz", x=sample(spec, 100, 100, seed=0).x)
    code, out, err = _run(capsys, "fit-chain", str(run), "--data", str(tmp_path / "three.npz"))
    assert code == 0, err
    fit = checkpoint.read_config(run)[1]["basin_head"]["chain"]
    assert fit["split"]["preferred"] and "warning: the data support more states" in out

    # `nld separate` acts on it: the third state gets its own well, and the labels follow.
    test = sample(spec, 50, 200, seed=1)
    before = evaluate(*checkpoint.load(run), test).record
    assert before["n_minima"] == 2 and before["accuracy_mean"] < 0.75
    args = ["--data", str(tmp_path / "three.npz"), "--iterations", "500", "--threads", "1"]
    code, out, err = _run(capsys, "separate", str(run), *args, "--quiet")
    assert code == 0, err
    assert "2 -> 3 minima, kept" in out and "warning" not in out
    meta = checkpoint.read_config(run)[1]
    assert (
        meta["separation"]["rounds"][0]["kept"]
        and not meta["basin_head"]["chain"]["split"]["preferred"]
    )
    after = evaluate(*checkpoint.load(run), test).record
    assert after["n_minima"] == 3 and after["accuracy_mean"] > 0.95


def _without_chain(run) -> bytes:
    """The run's weights file as it was before the state chain existed."""
    from safetensors.torch import save

    tensors = checkpoint.read_tensors(run / checkpoint.WEIGHTS)
    return save({k: v for k, v in tensors.items() if not k.startswith(state_chain.PREFIX)})


def test_train_reads_a_csv_and_keeps_its_channel_names(tmp_path, capsys, easy_data):
    x = easy_data[0].x[:20].reshape(-1, 4)  # one long recording, 2000 steps
    lines = ["when,c0,c1,c2,c3"] + [f"{t},{','.join(map(str, row))}" for t, row in enumerate(x)]
    (tmp_path / "rec.csv").write_text("\n".join(lines) + "\n")
    quick = ["--set", "stages.basin-head.iterations=20", "--set", "stages.depths.iterations=0"]
    code, _, err = _run(
        capsys,
        "train",
        "--preset",
        "smoke",
        "--data",
        str(tmp_path / "rec.csv"),
        "--time-column",
        "when",
        "--out",
        str(tmp_path / "run"),
        "--iterations",
        "30",
        *quick,
        "--quiet",
    )
    assert code == 0, err
    meta = checkpoint.read_config(tmp_path / "run")[1]
    assert meta["data"]["columns"] == ["c0", "c1", "c2", "c3"]
    assert (
        meta["data"]["n_sequences"] == 20 and meta["data"]["length"] == 100
    )  # pieces of 4 windows

    import nld

    model = nld.load(tmp_path / "run")
    shuffled = tmp_path / "shuffled.csv"  # the same channels in another order: found by name
    shuffled.write_text(
        "\n".join(
            ["c3,c1,when,c0,c2"] + [f"{r[3]},{r[1]},{t},{r[0]},{r[2]}" for t, r in enumerate(x)]
        )
    )
    np.testing.assert_array_equal(model.predict(shuffled), model.predict(x))


def test_segment_writes_a_table_per_step_online_and_offline(tmp_path, capsys, smoke_run, easy_data):
    run, _ = smoke_run
    x = easy_data[1].x[:3]  # 3 recordings of 200 steps
    frame = "\n".join(
        ["rec,time,a,b,c,d"]
        + [f"r{n},{t},{','.join(map(str, x[n, t]))}" for n in range(3) for t in range(200)]
    )
    (tmp_path / "rec.csv").write_text(frame + "\n")
    table = ["--data", str(tmp_path / "rec.csv"), "--sequence-column", "rec"]
    for offline in ([], ["--offline"], ["--offline", "viterbi"]):
        out = tmp_path / f"labels{len(offline)}.csv"
        code, printed, err = _run(capsys, "segment", str(run), *table, "--out", str(out), *offline)
        assert code == 0, err
        assert "600 steps of 3 recording(s)" in printed
        import pyarrow.csv as pcsv

        got = pcsv.read_csv(out).to_pydict()
        assert list(got)[:4] == ["sequence", "step", "time", "label"]
        assert {"p_0", "p_1", "z_0", "z_1"} <= set(got) and got["sequence"][200] == "r1"
        import nld

        model = nld.load(run)
        method = offline[1] if len(offline) == 2 else "smooth"
        expected = model.predict(x, online=not offline, method=method)
        np.testing.assert_array_equal(np.array(got["label"]).reshape(3, 200), expected)


def test_evaluate_sets_online_and_offline_beside_the_bayes_limits(tmp_path, capsys, smoke_run):
    from tests.fixtures import easy_spec

    run, _ = smoke_run
    spec = tmp_path / "easy.json"
    spec.write_text(easy_spec().model_dump_json())
    test = tmp_path / "test.npz"
    save(test, sample(easy_spec(), 30, 200, seed=5))
    code, out, err = _run(capsys, "evaluate", str(run), "--data", str(test), "--spec", str(spec))
    assert code == 0, err
    res = json.loads(out)
    assert res["bayes_limit_offline"] >= res["bayes_limit_online"] > 0.9
    assert res["offline_accuracy_mean"] >= res["accuracy_mean"] - 0.01
    assert res["offline_accuracy_mean"] <= res["bayes_limit_offline"] + 0.01
    # Two states, each its own regime: the two levels coincide.
    assert res["n_regimes"] == res["n_minima"] == 2
    assert res["regime_accuracy_mean"] == res["accuracy_mean"]


def test_evaluate_and_analyze_read_a_table_with_its_states(tmp_path, capsys, smoke_run, easy_data):
    run, _ = smoke_run
    test = easy_data[1]
    x, states = test.x[:4], test.states[:4]
    names = np.array(["high", "low"])  # the easy states by name, in a column of the table
    rows = [
        f"r{n},{t},{','.join(map(str, x[n, t]))},{names[states[n, t]]}"
        for n in range(4)
        for t in range(x.shape[1])
    ]
    (tmp_path / "rec.csv").write_text("\n".join(["rec,time,a,b,c,d,state", *rows]) + "\n")
    table = ["--data", str(tmp_path / "rec.csv"), "--sequence-column", "rec"]
    code, out, err = _run(capsys, "evaluate", str(run), *table, "--states-column", "state")
    assert code == 0, err
    from_table = json.loads(out)
    save(tmp_path / "rec.npz", Dataset(x, states))
    code, out, err = _run(capsys, "evaluate", str(run), "--data", str(tmp_path / "rec.npz"))
    assert code == 0, err
    from_npz = json.loads(out)
    assert from_table["accuracy_mean"] == from_npz["accuracy_mean"] > 0.9
    args = ["analyze", str(run), *table, "--states-column", "state", "--out"]
    code, out, err = _run(capsys, *args, str(tmp_path / "a.json"))
    assert code == 0 and "accuracy" in out, err
    # Without the states column it is a channel it cannot read; recordings of different lengths
    # cannot be measured as one batch.
    code, _, err = _run(capsys, "evaluate", str(run), *table)
    assert code == 2 and "'state' (string) are not numeric" in err
    (tmp_path / "uneven.csv").write_text("\n".join(["rec,time,a,b,c,d,state", *rows[:-1]]) + "\n")
    uneven = ["--data", str(tmp_path / "uneven.csv"), "--sequence-column", "rec"]
    code, _, err = _run(capsys, "evaluate", str(run), *uneven, "--states-column", "state")
    assert code == 2 and "different lengths" in err and "Traceback" not in err
