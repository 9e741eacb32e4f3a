"""Per-layer architecture table: type, kernel, padding, stride, output shape, parameters."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _pair(v: Any) -> str:
    if isinstance(v, tuple):
        return "x".join(map(str, v)) if len(set(v)) > 1 else str(v[0])
    return str(v)


def spec_layer_table(spec) -> tuple[list[dict[str, Any]], int]:
    """layer_table of a registry entry, traced on the meta device: shapes only, no arithmetic."""
    with torch.device("meta"):
        model = spec.build()
    return layer_table(model, spec.input_size)


def layer_table(model: nn.Module, input_size: int) -> tuple[list[dict[str, Any]], int]:
    """One row per leaf module that runs in a forward pass of a 1x3xSxS input.

    Works on the meta device too (shapes without arithmetic).

    Returns:
        (rows, total parameters); each row has layer, type, kernel, padding, stride,
        output (C, H, W or features) and parameters.
    """
    rows: list[dict[str, Any]] = []
    handles = []

    def record(name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            k = getattr(module, "kernel_size", "")
            rows.append({
                "layer": name,
                "type": type(module).__name__,
                "kernel": _pair(k) if k != "" else "",
                "padding": _pair(module.padding) if hasattr(module, "padding") and not isinstance(module.padding, str) else "",
                "stride": _pair(module.stride) if hasattr(module, "stride") else "",
                "output": tuple(output.shape[1:]),
                "parameters": sum(p.numel() for p in module.parameters(recurse=False)),
            })
        return hook

    try:
        for name, module in model.named_modules():
            if name and not list(module.children()):
                handles.append(module.register_forward_hook(record(name)))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                device = next(model.parameters()).device
                model(torch.zeros(1, 3, input_size, input_size, device=device))
        finally:
            model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return rows, count_parameters(model)
