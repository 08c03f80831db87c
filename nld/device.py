"""Which torch device a run uses: `auto` (a CUDA GPU, else Apple's MPS, else the CPU),
`cpu`, `cuda`, `cuda:N` or `mps`. A device torch cannot see is a one-line error naming it."""

from __future__ import annotations

import torch

from nld.errors import NLDError

CHOICES = "auto, cpu, cuda, cuda:N or mps"


def _mps() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | None) -> torch.device:
    """The device `name` means on this machine (None: the CPU); NLDError if torch cannot use
    it here."""
    text = (name or "cpu").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise NLDError(f"unknown device {name!r}: use {CHOICES}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            build = (
                "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            )
            raise NLDError(
                f"device {name!r}: torch ({torch.__version__}, {build}) sees no CUDA GPU"
            )
        if device.index is not None and device.index >= count:
            raise NLDError(
                f"device {name!r}: torch sees {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
            )
        return device
    if device.type == "mps":
        if not _mps():
            raise NLDError(f"device {name!r}: Apple's MPS is not available on this machine")
        return device
    raise NLDError(f"unknown device {name!r}: use {CHOICES}")


def device_of(module: torch.nn.Module) -> torch.device:
    """Where a module's parameters are (the CPU for one without any): the device that
    inference, prior sampling and the service compute a model on."""
    param = next(module.parameters(), None)
    return torch.device("cpu") if param is None else param.device
