"""`nld sweep`: a sweep file's runs, trained one after another or through a local Ray, each
reused once finished; a failing run is reported and the others go on."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nld.data import save
from nld.errors import ConfigError
from tests.service.servers import free_port
from training.cli import main
from training.sweep import run_sweep
from training.sweep_spec import read_sweep

# Tiny runs: seconds each (what they learn does not matter here).
TINY = """
[base]
preset = "smoke"
data = "train.npz"
"train.iterations" = 40
"train.checkpoint_every" = 10
"stages.basin-head.iterations" = 20
"stages.depths.iterations" = 10
"""


def write_sweep(tmp_path: Path, easy_data, body: str) -> Path:
    save(tmp_path / "train.npz", easy_data[0])
    save(tmp_path / "test.npz", easy_data[1])
    path = tmp_path / "sweep.toml"
    path.write_text(body)
    return path


def test_a_sweep_file_lists_its_runs(tmp_path, easy_data):
    path = write_sweep(
        tmp_path,
        easy_data,
        'out = "out"\n' + TINY + '[grid]\nseed = [0, 1]\n"train.lr" = [0.01, 0.003]\n'
        '[[runs]]\nseed = 5\n"model.latent_dim" = 1\n',
    )
    sweep = read_sweep(path)
    assert len(sweep.runs) == 5 and sweep.out == tmp_path / "out"
    assert [r.config.train.seed for r in sweep.runs] == [0, 0, 1, 1, 5]
    assert sweep.runs[1].config.train.lr == 0.003 and sweep.runs[1].config.train.iterations == 40
    assert sweep.runs[4].config.model["latent_dim"] == 1
    names = [r.name for r in sweep.runs]
    assert len(set(names)) == 5 and names[0].startswith("smoke-s0-")
    assert [r.name for r in read_sweep(path).runs] == names  # the same file, the same runs
    # Another data file's content makes other runs.
    save(tmp_path / "train.npz", easy_data[1])
    assert not set(r.name for r in read_sweep(path).runs) & set(names)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('out = "o"\n[base]\npreset = "smoke"\n', "no data file"),
        ('out = "o"\n[base]\ndata = "nope.npz"\n', "no such file 'nope.npz'"),
        ('out = "o"\n[base]\ndata = "train.npz"\nsteps = 3\n', "unknown key 'steps'"),
        ('out = "o"\n[base]\ndata = "train.npz"\n"train.lr" = -1\n', "run 1"),
        ('out = "o"\n[base]\ndata = "train.npz"\n[grid]\nseed = []\n', "grid.seed lists no"),
        ('out = "o"\n[base]\ndata = "train.npz"\n[[runs]]\n[[runs]]\n', "listed twice"),
        ('out = "o"\nworkers = 3\n', "workers: no such setting"),
        (
            'out = "o"\n[resources]\nnum_cpu = 3\n',
            r"num_cpu: no such setting \(did you mean num_cpus",
        ),
        (
            'out = "o"\n[base]\ndata = "train.npz"\n"train.iteratons" = 3\n',
            "did you mean iterations",
        ),
        ("out = [", "not valid TOML"),
    ],
)
def test_a_bad_sweep_file_is_named_with_its_problem(tmp_path, easy_data, body, message):
    with pytest.raises(ConfigError, match=message):
        read_sweep(write_sweep(tmp_path, easy_data, body))


def test_a_failing_run_is_reported_and_the_others_are_kept(tmp_path, easy_data):
    path = write_sweep(
        tmp_path,
        easy_data,
        'out = "out"\ntest = "test.npz"\n' + TINY + "[grid]\nseed = [0, 1, 2]\n",
    )
    blocked = read_sweep(path).runs[2].run_dir  # a file where its directory would go
    blocked.parent.mkdir(parents=True)
    blocked.write_text("in the way")
    rows = run_sweep(read_sweep(path), use_ray=False, progress=False)
    assert [r["status"] for r in rows] == ["trained", "trained", "failed"]
    assert str(blocked) in rows[2]["error"]
    assert all(0 <= r["accuracy_mean"] <= 1 and r["n_minima"] >= 1 for r in rows[:2])
    table = (tmp_path / "out" / "sweep.md").read_text()
    assert "3 runs, 2 trained, 0 reused, 1 failed; scored on test.npz" in table
    assert (tmp_path / "out" / "sweep.csv").read_text().count("\n") == 4
    # Again: the finished runs are reused as they were; the blocked one fails again.
    again = run_sweep(read_sweep(path), use_ray=False, progress=False)
    assert [r["status"] for r in again] == ["reused", "reused", "failed"]
    assert [r["accuracy_mean"] for r in again[:2]] == [r["accuracy_mean"] for r in rows[:2]]


def test_what_would_fail_every_run_is_found_before_any_trains(tmp_path, easy_data, monkeypatch):
    import numpy as np
    import torch

    from nld.errors import NLDError

    base = 'out = "out"\n' + TINY
    path = write_sweep(tmp_path, easy_data, 'test = "three.npz"\n' + base)
    np.savez(tmp_path / "three.npz", x=easy_data[1].x[..., :3])
    with pytest.raises(NLDError, match=r"test three.npz has 3 channels, the data 4"):
        run_sweep(read_sweep(path), use_ray=False, progress=False)
    path.write_text(base + '"train.device" = "cuda"\n')
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NLDError, match=r"run smoke-s0-.*: device 'cuda'.*sees no CUDA GPU"):
        run_sweep(read_sweep(path), use_ray=False, progress=False)
    rows = ["c0,c1,c2,c3", *(",".join(map(str, v)) for v in easy_data[0].x[0, :50])]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    path.write_text(base.replace("train.npz", "train.csv") + '[table]\nstates_column = "state"\n')
    with pytest.raises(NLDError, match=r"train\.csv: .*state"):
        run_sweep(read_sweep(path), use_ray=False, progress=False)
    assert not (tmp_path / "out").exists()  # nothing trained


def test_ray_is_asked_only_for_what_it_can_give():
    from nld.errors import NLDError
    from training.schedule import _fits, _reachable

    _fits({"CPU": 2.0}, 1, 0)
    with pytest.raises(NLDError, match=r"asks Ray for 1 GPU.*has 0 in all"):
        _fits({"CPU": 2.0}, 1, 1)
    with pytest.raises(NLDError, match=r"cannot reach the Ray cluster at 127.0.0.1:"):
        _reachable(f"127.0.0.1:{free_port()}")  # nothing listens there
    _reachable("auto")  # left to Ray


def test_the_command_line_says_what_failed(tmp_path, easy_data, capsys):
    path = write_sweep(tmp_path, easy_data, 'out = "out"\n[base]\ndata = "nope.npz"\n')
    assert main(["sweep", str(path), "--no-ray"]) == 2
    assert "no such file 'nope.npz'" in capsys.readouterr().err
    assert main(["sweep", str(path), "--no-ray", "--ray-address", "127.0.0.1:1"]) == 2
    assert "--ray-address runs through Ray" in capsys.readouterr().err


@pytest.fixture
def local_ray():
    """A Ray head on 127.0.0.1 with 2 CPUs, its own session directory, stopped afterwards."""
    pytest.importorskip("ray")
    port = free_port()
    # A short path: Ray's sockets live under it, and a socket's path has at most 107 bytes.
    session = Path(tempfile.mkdtemp(prefix="nld-ray-", dir="/tmp"))
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={session}",
        ],
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},  # loopback only; the driver's too
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield f"127.0.0.1:{port}"
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
    shutil.rmtree(session, ignore_errors=True)


def _workers(title: str) -> list[int]:
    """PIDs of Ray workers running a task, by their process title."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(title.encode()):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def test_a_sweep_through_ray_survives_a_killed_worker(tmp_path, easy_data, local_ray):
    path = write_sweep(
        tmp_path, easy_data, 'out = "out"\n' + TINY + "[grid]\nseed = [0, 1, 2, 3]\n"
    )
    nld = Path(sys.executable).parent / "nld"
    command = [str(nld), "sweep", str(path), "--quiet", "--ray-address", local_ray]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    sweep = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (running := _workers("ray::run_one")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running, "no Ray worker started a run"
    time.sleep(1.0)  # into the run
    os.kill(running[0], signal.SIGKILL)
    _, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 2, err
    assert "1 of 4 runs failed" in err
    table = (tmp_path / "out" / "sweep.md").read_text()
    assert "4 runs, 3 trained, 0 reused, 1 failed" in table, table
    assert "Worker" in table or "died" in table  # the failed run says its worker died
    # Again: only the failed run trains (continued from its checkpoint, if it made one).
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "4 runs, 1 trained, 3 reused, 0 failed" in (tmp_path / "out" / "sweep.md").read_text()
    # And once more: nothing to train.
    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert "4 runs, 0 trained, 4 reused, 0 failed" in (tmp_path / "out" / "sweep.md").read_text()
