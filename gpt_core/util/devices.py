"""Device names the user types ("cpu", "cuda", "auto") -> torch devices, with clear errors."""

from __future__ import annotations

import torch

from ..errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    return torch.cuda.is_available()


def available_devices() -> list[str]:
    return ["cpu", "cuda"] if cuda_available() else ["cpu"]


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not cuda_available():
            raise DeviceError(
                "CUDA was asked for, but torch sees no CUDA device here "
                f"(torch {torch.__version__}); use the CPU or install a CUDA build of torch"
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"{name} does not exist; this machine has {torch.cuda.device_count()} CUDA "
                "device(s)"
            )
        return device
    raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return "CPU"
