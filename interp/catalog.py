"""The registry as rows for people: the `models` command and the dashboard's Home table."""

from __future__ import annotations

from typing import Any

import torch

from .checkpoints import read_card
from .registry import REGISTRY, ModelSpec


def parameter_count(spec: ModelSpec) -> int:
    """Parameters of an entry, counted on the meta device (no memory, no initialisation cost);
    torchvision's ResNets by formula, so that the table does not import torchvision."""
    from .models import resnet

    if spec.arch in resnet.BACKBONE_PARAMETERS and not spec.arch_kwargs:
        return resnet.parameter_count(spec.arch, spec.num_classes)
    with torch.device("meta"):
        model = spec.build()
    return sum(p.numel() for p in model.parameters())


def has_weights(spec: ModelSpec) -> bool:
    """A checkpoint is present, or the weights come from torchvision (downloaded on first use)."""
    return spec.checkpoint is not None or spec.task == "imagenet"


def weights_status(spec: ModelSpec) -> str:
    """'shipped checkpoint', the download note, or the command that trains the entry."""
    if spec.checkpoint:
        return "checkpoint present"
    if spec.task == "imagenet":
        return "torchvision ImageNet weights (downloaded on first use)"
    return f"python -m interp train {spec.name}"


def registry_rows() -> list[dict[str, Any]]:
    """One row per registry entry: model, arch, task, parameters, held-out accuracy, weights."""
    rows = []
    for spec in REGISTRY.values():
        card = read_card(spec.checkpoint_path) if spec.checkpoint else None
        accuracy = card.get("metrics", {}).get("accuracy") if card else None
        rows.append({
            "model": spec.name, "arch": spec.arch, "task": spec.task,
            "parameters": parameter_count(spec),
            "held-out accuracy": accuracy,
            "conv1 autocorrelation": card.get("conv1_autocorrelation") if card else None,
            "weights": weights_status(spec),
        })
    return rows
