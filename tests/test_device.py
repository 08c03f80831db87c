"""Devices: names resolved or refused with a one-line error; a training step that keeps to the
data's device (checked op by op on the `meta` device, so that it holds for a GPU this machine
does not have); and, where CUDA is present, a run trained on it that the CPU reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from nld.device import resolve_device
from nld.errors import ConfigError, NLDError
from nld.fitting.config import load_config, presets, with_overrides
from nld.fitting.step import window_index
from nld.fitting.trainer import _batch, initial_model
from training.cli import main


def test_device_names(monkeypatch):
    assert resolve_device(None) == resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    for name, message in [
        ("cuda", "sees no CUDA GPU"),
        ("cuda:1", "sees no CUDA GPU"),
        ("mps", "MPS is not available"),
        ("tpu", "unknown device 'tpu': use auto, cpu, cuda, cuda:N or mps"),
    ]:
        with pytest.raises(NLDError, match=message):
            resolve_device(name)
    # A machine with one GPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(NLDError, match="sees 1 CUDA GPU"):
        resolve_device("cuda:1")


def test_a_config_names_a_device_torch_knows():
    assert with_overrides(load_config("smoke"), {"train.device": "cuda:1"}).train.device == "cuda:1"
    with pytest.raises(ConfigError, match="device"):
        with_overrides(load_config("smoke"), {"train.device": "gpu"})


def test_the_command_line_refuses_a_device_it_cannot_see(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["train", "--preset", "smoke", "--data", str(tmp_path / "none.npz")]
    assert main([*argv, "--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "device 'cuda'" in err and "sees no CUDA GPU" in err and "Traceback" not in err


class OneDevice(TorchDispatchMode):
    """Records every op whose tensors (beyond scalars) are on more than one device, and every
    random draw from a generator on another device than its output's: what a GPU refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.mixed: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat, _ = tree_flatten((args, kwargs))
        devices = {t.device.type for t in flat if isinstance(t, torch.Tensor) and t.dim() > 0}
        if len(devices) > 1:
            self.mixed.append(f"{func}: {sorted(devices)}")
        gen, device = kwargs.get("generator"), kwargs.get("device")
        if gen is not None and device is not None and gen.device.type != torch.device(device).type:
            self.mixed.append(f"{func}: a {gen.device.type} generator for {device}")
        return func(*args, **kwargs)


@pytest.mark.parametrize("preset", presets())
def test_a_training_step_keeps_to_the_datas_device(preset, easy_data):
    """The batch, the ELBO's forward pass and its backward pass of every preset's model, on the
    `meta` device (shapes only) from the run's CPU generator, as the training loop does."""
    x = torch.from_numpy(easy_data[0].x[:16, :40])
    torch.manual_seed(0)
    model = initial_model(load_config(preset), x).to("meta")
    gen = torch.Generator().manual_seed(0)
    mode = OneDevice()
    with mode:
        xb = _batch(x.to("meta"), 4, 20, gen)
        terms, _ = model.elbo_terms(xb, generator=gen)
        sum(v.sum() for v in terms.values()).backward()
    assert mode.mixed == []
    assert xb.device.type == "meta" and all(
        p.grad is None or p.grad.device.type == "meta" for p in model.parameters()
    )
    rows, steps = window_index(16, 40, 4, 20, gen)
    assert rows.device.type == steps.device.type == "cpu"  # drawn here, moved by _batch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_a_run_trained_on_a_gpu_labels_the_same_on_the_cpu(tmp_path, easy_data):
    import nld

    train, test = easy_data
    fitted = nld.NLD("smoke", seed=0, device="cuda", progress=False, iterations=120)
    fitted.fit(train.x)
    fitted.save(tmp_path / "gpu")
    on_cpu = nld.load(tmp_path / "gpu")  # the checkpoint holds CPU tensors
    assert next(on_cpu.model_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(on_cpu.predict(test.x), fitted.predict(test.x))


class Elsewhere(OneDevice):
    """OneDevice with the `meta` device standing in for an accelerator this machine lacks:
    a copy from it to the CPU gives zeros and a scalar read of it gives 1 (meta tensors have
    shapes, no values), so code that computes on the model's device and brings its results
    back runs end to end. Counts the matrix products each device ran."""

    def __init__(self) -> None:
        super().__init__()
        self.products: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        first = args[0] if args else None
        on_meta = isinstance(first, torch.Tensor) and first.device.type == "meta"
        if on_meta and func.overloadpacket in (torch.ops.aten._to_copy, torch.ops.aten.to):
            target = kwargs.get(
                "device", next((a for a in args if isinstance(a, torch.device)), None)
            )
            if target is not None and torch.device(target).type == "cpu":
                return torch.zeros(first.shape, dtype=kwargs.get("dtype") or first.dtype)
        if on_meta and func in (
            torch.ops.aten._local_scalar_dense.default,
            torch.ops.aten.item.default,
            torch.ops.aten.is_nonzero.default,
        ):
            return 1
        if func in (torch.ops.aten.addmm.default, torch.ops.aten.mm.default):
            device = args[1].device.type
            self.products[device] = self.products.get(device, 0) + 1
        return super().__torch_dispatch__(func, types, args, kwargs)


@pytest.fixture(scope="module")
def on_meta(smoke_run):
    """The smoke run's model and fitted parts, the model on `meta`."""
    from nld import checkpoint

    model, fitted = checkpoint.load(smoke_run[0])
    return model.to("meta").eval(), fitted


def test_inference_and_prior_sampling_compute_on_the_models_device(on_meta, easy_data):
    from nld.inference import read_all, readout_path
    from nld.simulate import simulate_prior

    model, fitted = on_meta
    x = easy_data[1].x[:3, :50]
    mode = Elsewhere()
    with mode:
        positions, head = read_all(model, fitted, x)
        path = readout_path(model, x)
        paths = simulate_prior(model, 4, 30, 0.1, seed=0)
        started = simulate_prior(model, 4, 30, 0.1, seed=0, start=np.zeros(model.cfg.latent_dim))
    assert mode.mixed == []
    assert mode.products.get("meta", 0) > 0 and "cpu" not in mode.products
    d = model.cfg.latent_dim
    assert positions.device.type == path.device.type == "cpu"  # brought back
    assert positions.shape == path.shape == (3, 50, d)
    assert head is not None and head.shape == (3, 50, fitted.classes)
    assert paths.shape == started.shape == (4, 31, d)


def test_the_service_computes_on_its_device(smoke_run, easy_data, tmp_path):
    """A model the service loaded, moved to `meta`: a stream's chunk, prior paths and decoded
    observations run there and come back as arrays; the landscape stays on the CPU."""
    from service.config import Settings
    from service.loader import load_model

    lm = load_model(smoke_run[0], Settings(models_dir=tmp_path, cache_dir=tmp_path))
    lm.model.to("meta")
    x = easy_data[1].x[0, :40]
    mode = Elsewhere()
    with mode:
        chunk = lm.label_chunk(x, None)
        again = lm.label_chunk(x, chunk.h, chunk.belief)
        paths, _ = lm.sample(3, 20, 0.1, seed=0, start=None, velocities=False, observed=True)
        grid = lm.energy_box([-1.0] * lm.model.cfg.latent_dim, [1.0] * lm.model.cfg.latent_dim, 5)
    assert mode.mixed == []
    assert mode.products.get("meta", 0) > 0
    assert chunk.labels.shape == again.labels.shape == (40,)
    assert chunk.h.dtype == np.float32 and isinstance(chunk.h, np.ndarray)
    assert paths.shape == (3, 21, lm.model.cfg.obs_dim)
    assert np.isfinite(grid.energy).all() and grid.energy.std() > 0  # real values: the CPU


def test_a_device_setting_torch_cannot_use_is_refused(monkeypatch, tmp_path):
    from service.config import Settings
    from service.loader import configure

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NLDError, match=r"device 'cuda:1'.*sees no CUDA GPU"):
        configure(Settings(models_dir=tmp_path, device="cuda:1"))
    with pytest.raises(ValueError, match="device"):
        Settings(models_dir=tmp_path, device="gpu")


def test_commands_that_use_a_model_refuse_a_device_it_cannot_see(smoke_run, tmp_path, capsys):
    import nld

    run = str(smoke_run[0])
    data = tmp_path / "x.npy"
    np.save(data, np.zeros((2, 10, 4), dtype=np.float32))
    for argv in (
        ["analyze", run, "--out", str(tmp_path / "a.json")],
        ["evaluate", run, "--data", str(data)],
        ["segment", run, "--data", str(data), "--out", str(tmp_path / "l.npy")],
    ):
        assert main([*argv, "--device", "cuda:7"]) == 2, argv
        err = capsys.readouterr().err
        assert "device 'cuda:7'" in err and "Traceback" not in err, argv
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "l.npy").exists()
    with pytest.raises(NLDError, match="device 'cuda:7'"):
        nld.load(run, device="cuda:7")
    assert (
        main(
            [
                "segment",
                run,
                "--data",
                str(data),
                "--out",
                str(tmp_path / "l.npy"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "l.npy").shape == (2, 10)
