"""A trace of one forward pass: every module call, in order, with the identity and version
of its output tensor. CAM uses it to find the GAP head, layer discovery to find the layers
with spatial maps and Grad-CAM's default layer; :func:`remembered` keeps what a trace found.

Identity plus version counter names a tensor exactly: an in-place op (ReLU(inplace=True),
``out += identity``) returns the same object with a higher version, so a batch-norm whose
output an in-place ReLU later overwrote is not mistaken for the ReLU.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .core import forward_hooks, logits_of


@dataclass
class Call:
    """One module call seen by a trace, in order of completion (children before containers)."""

    name: str
    module: nn.Module
    order: int
    output: torch.Tensor  # held so that ids stay unique during the trace
    version: int  # the output's version counter when the call returned (in-place ops bump it)
    input: torch.Tensor | None
    input_version: int
    input_value: torch.Tensor | None  # a copy, taken only where ``keep_inputs`` asks for it
    output_value: torch.Tensor | None


def trace(
    model: nn.Module, xb: torch.Tensor, keep_inputs: Callable[[nn.Module], bool] = lambda m: False
) -> tuple[list[Call], torch.Tensor]:
    """Every named module's calls during one no-grad forward pass, and the logits."""
    calls: list[Call] = []

    def record(name: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            if not isinstance(output, torch.Tensor):
                return
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            keep = keep_inputs(module)
            calls.append(
                Call(
                    name,
                    module,
                    len(calls),
                    output,
                    output._version,
                    first,
                    first._version if first is not None else -1,
                    first.clone() if keep and first is not None else None,
                    output.clone() if keep else None,
                )
            )

        return hook

    with forward_hooks((m, record(n)) for n, m in model.named_modules() if n), torch.no_grad():
        logits = logits_of(model, xb)
    return calls, logits


def name_of_tensor(calls: list[Call], tensor: torch.Tensor, version: int, before: int) -> list[str]:
    """Modules (called before ``before``) whose output is exactly this tensor at this version,
    best name first: the innermost module called once, else the innermost."""
    hits = [c for c in calls if c.order < before and c.output is tensor and c.version == version]
    counts: dict[str, int] = {}
    for c in calls:
        counts[c.name] = counts.get(c.name, 0) + 1
    names = list(dict.fromkeys(c.name for c in hits))
    return sorted(names, key=lambda n: (counts[n] != 1, -n.count(".")))


# Per model and input shape: what a first, traced call found (a CAM head plan, the default
# layer, or why CAM does not apply). Weak keys: a model that is dropped takes its entries
# along; callers check that what they remembered still names the model's modules.
_FOUND: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, Any]]" = weakref.WeakKeyDictionary()


def remembered(model: nn.Module, kind: str, xb: torch.Tensor, find: Callable[[], Any]) -> Any:
    """``find()`` the first time for this model, ``kind`` and input shape; the kept value after."""
    key = (kind, tuple(xb.shape[1:]), xb.dtype, xb.device.type)
    table = _FOUND.setdefault(model, {})
    if key not in table:
        table[key] = find()
    return table[key]


def forget(model: nn.Module) -> None:
    """Drop what was remembered of a model (it was edited since: trace again)."""
    _FOUND.pop(model, None)
