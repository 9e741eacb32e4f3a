"""What this machine's CPU and GPU are and can do: for model cards, the benchmark and training
defaults; and which device a command runs on (``resolve_device``)."""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

import torch

from .errors import DeviceError

_CPUINFO = Path("/proc/cpuinfo")
DEVICE_ENV = "INTERP_DEVICE"
DEVICE_HELP = "cpu, cuda, cuda:N or mps (default: $INTERP_DEVICE, else cuda where a CUDA GPU is available, else cpu)"


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in _CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (oneDNN's own check, else /proc/cpuinfo's flags)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        try:
            flags = _CPUINFO.read_text()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


def available_devices() -> list[str]:
    """The devices this machine can run on: cpu, then each CUDA GPU (cuda:N), then mps."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return found


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _why_unavailable(device: torch.device) -> str | None:
    """Why this machine cannot run on ``device`` (None: it can)."""
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "torch.cuda.is_available() is False: no CUDA GPU here, or a CPU-only build of torch"
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            listed = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            return f"this machine has {count} CUDA device{'s' * (count != 1)} ({listed})"
        return None
    if device.type == "mps":
        return None if _mps_available() else "MPS (Apple's GPU backend) is not available here"
    return "not a device interp runs on (cpu, cuda, cuda:N, mps)"


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``name`` if given, else $INTERP_DEVICE, else cuda where
    ``torch.cuda.is_available()``, else cpu.

    Raises:
        DeviceError: an unknown name, or a device this machine lacks (cuda without a GPU,
            cuda:3 with one GPU, mps without MPS); the message lists what is available.
    """
    source = "device "
    if name is None:
        name = os.environ.get(DEVICE_ENV, "").strip() or None
        source = f"{DEVICE_ENV}="
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = name if isinstance(name, torch.device) else torch.device(str(name).strip().lower())
        why = _why_unavailable(device)
    except (RuntimeError, ValueError):
        device, why = None, "not a device interp runs on (cpu, cuda, cuda:N, mps)"
    if why is None and device is not None:
        return device
    raise DeviceError(
        f"{source}{str(name)!r}: {why}. Available here: {', '.join(available_devices())}. "
        f"Choose one with --device (e.g. --device cpu) or {DEVICE_ENV} (e.g. {DEVICE_ENV}=cpu)"
    )


def cuda_name(device: str | torch.device | None = None) -> str | None:
    """The CUDA GPU's name (``device``'s, else the current one's), or None without CUDA or for a
    device that is not a CUDA GPU."""
    device = torch.device("cuda") if device is None else torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(device)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA runs asynchronously; a timer must wait for it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
