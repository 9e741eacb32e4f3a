"""What this machine's CPU is and can do: for model cards, the benchmark and training defaults."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

_CPUINFO = Path("/proc/cpuinfo")


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
