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
