"""The gradient-free CAMs that weigh each channel by how the target logit responds when it is used
alone or taken away: Score-CAM (Wang et al. 2020) and Ablation-CAM (Desai & Ramaswamy 2020).

Both run the model on batches under ``torch.inference_mode``. Ablation-CAM recomputes only what
it must: the layers before the ablated one run once per batch on the single image, and the layer's
forward hook hands the rest of the network a batch of ablated copies of its output (broadcasting
carries the image's own tensors, such as a residual branch, to every copy). Where a model cannot
mix the two batch sizes (a concatenation of the layer's output with an earlier tensor), the whole
model runs on copies of the image instead, as pytorch-grad-cam does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import LayerError, ModelOutputError
from ..core import Targets, forward_hooks, get_module, logits_of, options_from
from ..layers import remembered_default_layer
from .cam_family import finish, layer_activation, need_maps, weighted_sum


def _masks(maps: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """k x h x w maps -> k x H x W masks in [0, 1]: upsampled, then min-max scaled, each alone.

    align_corners=True, as pytorch-grad-cam's UpsamplingBilinear2d (the maps then are its maps);
    interp's own upsampling, and torch-cam's, has align_corners=False.
    """
    up = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=True)[:, 0]
    lo, hi = up.amin((1, 2), keepdim=True), up.amax((1, 2), keepdim=True)
    return (up - lo) / (hi - lo + 1e-8)  # the peers' 1e-8


@dataclass(frozen=True)
class ScoreCamOptions:
    """Score-CAM's options: ``relu`` keeps the positive part, as every CAM of the family;
    ``batch_size`` masked images per forward pass."""

    relu: bool = True
    batch_size: int = 32


@options_from(ScoreCamOptions)
def _score_cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any
) -> tuple[torch.Tensor, str]:
    """Score-CAM: each channel's map, upsampled to the input and min-max scaled to [0, 1], masks
    the image; the channel's weight is the softmax over channels of the masked images' target logits.

    The masks are pytorch-grad-cam's (see :func:`_masks`); torch-cam scales each map before it
    upsamples it, which changes the masks slightly and, through the softmax, the weights more
    (the two peers' maps differ as much from each other). A constant channel masks the image to
    zeros: one forward pass of a black image serves every such channel.
    """
    o = ScoreCamOptions(**options)
    layer = layer or remembered_default_layer(model, xb)
    act = layer_activation(model, xb, targets, layer)
    need_maps(act, layer, "Score-CAM")
    t, bs = targets.value, max(1, int(o.batch_size))
    assert t is not None  # layer_activation's pass fixed the targets
    scores = torch.empty(act.shape[:2], dtype=torch.float64, device=xb.device)
    with torch.inference_mode():
        for i in range(len(xb)):
            flat = act[i].flatten(1)
            live = (flat.amax(1) > flat.amin(1)).nonzero()[:, 0]
            if len(live) < len(flat):
                scores[i] = float(logits_of(model, torch.zeros_like(xb[i : i + 1]))[0, t[i]])
            for s in range(0, len(live), bs):
                ch = live[s : s + bs]
                masked = xb[i] * _masks(act[i, ch], xb.shape[-2:])[:, None]
                scores[i, ch] = logits_of(model, masked)[:, t[i]].double()
        weights = torch.softmax(scores, 1)
    return finish(weighted_sum(weights, act), xb.shape[-2:], o.relu), layer


class _Ablate:
    """Forward hook on the ablated layer. In the first pass it keeps the layer's output (its last
    call) and counts its calls; once ``copies`` is set, it replaces that call's output with them."""

    def __init__(self, layer: str):
        self.layer, self.calls, self.seen = layer, 0, 0
        self.act: torch.Tensor | None = None
        self.copies: torch.Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple, output):
        self.seen += 1
        if self.copies is None:
            if not isinstance(output, torch.Tensor):
                raise LayerError(f"layer {self.layer!r} returns a {type(output).__name__}, not a tensor")
            self.calls, self.act = self.seen, output.clone()  # a copy: later in-place ops change the output
            return None
        return self.copies if self.seen == self.calls else None

    def run(self, model: nn.Module, x: torch.Tensor, copies: torch.Tensor | None = None):
        """One forward pass of ``x``; the layer's output replaced by ``copies`` where given."""
        self.seen, self.copies = 0, copies
        return model(x)


def _ablated(a: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """Copies of one image's maps a (C x h x w), copy j with channel ``channels[j]`` set to zero."""
    copies = a.expand(len(channels), *a.shape).clone()
    copies[torch.arange(len(channels)), channels] = 0
    return copies


def _ablated_logits(
    model: nn.Module,
    hook: _Ablate,
    x1: torch.Tensor,
    a: torch.Tensor,
    channels: torch.Tensor,
    classes: int,
    bs: int,
    state: dict,
) -> torch.Tensor:
    """The logits of one image (x1, 1 x C x H x W) with each of ``channels`` of its maps ``a`` ablated in turn."""
    out = []
    for start in range(0, len(channels), bs):
        copies = _ablated(a, channels[start : start + bs])
        k, logits = len(copies), None
        if state["broadcast"]:
            try:  # the layers before run once, on the single image; the rest on the copies
                logits = hook.run(model, x1, copies)
            except RuntimeError:  # the copies met an earlier tensor of batch 1 (a concatenation)
                logits = None  # an error of the model's own recurs below
            if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (k, classes):
                state["broadcast"], logits = False, None
        if logits is None:
            logits = hook.run(model, x1.expand(k, -1, -1, -1), copies)
            if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (k, classes):
                raise ModelOutputError(
                    f"the model returned {getattr(logits, 'shape', type(logits))} for "
                    f"{k} ablated copies; Ablation-CAM needs {k} x {classes} logits"
                )
        out.append(logits)
    return torch.cat(out) if out else a.new_empty((0, classes))


# Ablated copies per pass by default: as many as 64 MB of the layer's maps hold (all of AlexNet's
# conv5 at once), so the layers before it run once or twice, not once per 32 channels.
_COPIES_BYTES = 64 * 2**20


@dataclass(frozen=True)
class AblationCamOptions:
    """Ablation-CAM's options: ``relu`` keeps the positive part, as every CAM of the family;
    ``batch_size`` ablated copies per pass (default: as many as 64 MB of the layer's maps hold)."""

    relu: bool = True
    batch_size: int | None = None


@options_from(AblationCamOptions)
def _ablation_cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any
) -> tuple[torch.Tensor, str]:
    """Ablation-CAM: w_k = (y_c - y_c^k) / y_c, where y_c^k is the target logit with channel k of the
    layer set to zero (where y_c is 0, the drop y_c - y_c^k itself).

    The paper ablates with zeros; pytorch-grad-cam does too where the layer's minimum is 0 (after
    a ReLU) and otherwise uses its minimum minus 1e7. A channel that is zero already is not run:
    its weight does not matter, as its map is zero.
    """
    o = AblationCamOptions(**options)
    layer = layer or remembered_default_layer(model, xb)
    hook = _Ablate(layer)
    with forward_hooks([(get_module(model, layer), hook)]), torch.inference_mode():
        logits0 = logits_of(model, xb)  # the hook has no copies yet: it keeps the maps
        if hook.act is None:
            raise LayerError(f"layer {layer!r} did not run in the model's forward pass")
        t = targets.of(logits0)
        act = hook.act
        need_maps(act, layer, "Ablation-CAM")
        bs = int(o.batch_size) if o.batch_size else _COPIES_BYTES // max(1, act[0].numel() * act.element_size())
        y = logits0.gather(1, t[:, None]).double()  # N x 1
        y_k = y.repeat(1, act.shape[1])
        state = {"broadcast": True}
        for i in range(len(xb)):
            live = act[i].flatten(1).ne(0).any(1).nonzero()[:, 0]
            logits = _ablated_logits(model, hook, xb[i : i + 1], act[i], live, logits0.shape[1], max(1, bs), state)
            y_k[i, live] = logits[:, t[i]].double()
        weights = (y - y_k) / torch.where(y == 0, torch.ones_like(y), y)
    return finish(weighted_sum(weights, act), xb.shape[-2:], o.relu), layer
