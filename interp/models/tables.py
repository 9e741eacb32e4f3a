"""Tables of models for people: parameter counts, the per-layer architecture table (type,
kernel, padding, stride, output shape, parameters) and the registry's rows (the `models`
command and the dashboard's Home page)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .arch import resnet
from .registry import REGISTRY, ModelSpec
from .weights import read_card, weights_command, weights_status


def count_parameters(model: nn.Module) -> int:
    """Parameters of a built model (trainable or frozen)."""
    return sum(p.numel() for p in model.parameters())


def parameter_count(spec: ModelSpec) -> int:
    """Parameters of an entry, counted on the meta device (no memory, no initialisation cost);
    torchvision's ResNets by formula, so that the table does not import torchvision."""
    if spec.arch in resnet.BACKBONE_PARAMETERS and not spec.arch_kwargs:
        return resnet.parameter_count(spec.arch, spec.num_classes)
    return count_parameters(meta_model(spec))


def registry_rows() -> list[dict[str, Any]]:
    """One row per registry entry: model, arch, task, parameters, held-out accuracy, conv1
    autocorrelation, where the weights stand and the command that gets them."""
    rows = []
    for spec in REGISTRY.values():
        card = read_card(spec.card_path) if spec.checkpoint else None
        accuracy = card.get("metrics", {}).get("accuracy") if card else None
        rows.append(
            {
                "model": spec.name,
                "arch": spec.arch,
                "task": spec.task,
                "parameters": parameter_count(spec),
                "held-out accuracy": accuracy,
                "conv1 autocorrelation": card.get("conv1_autocorrelation") if card else None,
                "weights": weights_status(spec),
                "get weights": weights_command(spec),
            }
        )
    return rows


def _pair(v: Any) -> str:
    if isinstance(v, tuple):
        return "x".join(map(str, v)) if len(set(v)) > 1 else str(v[0])
    return str(v)


def meta_model(spec: ModelSpec) -> nn.Module:
    """The entry's model on the meta device, in eval mode: shapes without memory or arithmetic."""
    with torch.device("meta"):
        model = spec.build()
    return model.to("meta").eval()  # a user's model, copied from real tensors, moves there too


def spec_layer_table(spec: ModelSpec) -> tuple[list[dict[str, Any]], int]:
    """layer_table of a registry entry, traced on the meta device: shapes only, no arithmetic."""
    return layer_table(meta_model(spec), spec.input_size)


def layer_table(model: nn.Module, input_size: int | tuple[int, int]) -> tuple[list[dict[str, Any]], int]:
    """One row per leaf module that runs in a forward pass of a 1x3xSxS (or 1x3xHxW) input.

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
            rows.append(
                {
                    "layer": name,
                    "type": type(module).__name__,
                    "kernel": _pair(k) if k != "" else "",
                    "padding": _pair(module.padding)
                    if hasattr(module, "padding") and not isinstance(module.padding, str)
                    else "",
                    "stride": _pair(module.stride) if hasattr(module, "stride") else "",
                    "output": tuple(output.shape[1:]),
                    "parameters": sum(p.numel() for p in module.parameters(recurse=False)),
                }
            )

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
                h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
                model(torch.zeros(1, 3, h, w, device=device))
        finally:
            model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return rows, count_parameters(model)
