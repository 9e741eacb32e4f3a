"""Shared mechanics of the methods: the per-model lock, hooks that live for one call, layer
lookup, input and target checks, gradients of a layer, the runner every method shares, and how a
method declares its options (:func:`options_from`).

Every method that puts hooks on a model does it through :func:`using` (the model's lock) and
:func:`forward_hooks` (removed in ``finally``), so the shared model is never left changed.
Kept as one module past 300 lines on purpose: it is the whole contract every method relies on,
read together when a method is added.
"""

from __future__ import annotations

import copy
import inspect
import math
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar, Union

import numpy as np
import torch
from torch import nn

from ..errors import ImageError, InternalError, LayerError, ModelOutputError, ParameterError, TargetError
from .records import REGISTRY

if TYPE_CHECKING:  # plotly is imported only when a figure is drawn
    import plotly.graph_objects as go
    from _typeshed import DataclassInstance

Target = Union[int, Sequence[int], np.ndarray, torch.Tensor, None]
# What a method computes: the map with a leading N, and the layer it read (None: the input)
Maps = tuple[torch.Tensor, str | None]
# compute(model, batch, targets) -> Maps; it fixes the targets with ``targets.of(logits)`` from its
# own forward pass (see Targets)
Compute = Callable[[nn.Module, torch.Tensor, "Targets"], Maps]
# A method may add a third element, facts about its run that the caller cannot know in advance
# (RISE: how many masks it used); attribute keeps them as Explanation.details.
MapsWithDetails = tuple[torch.Tensor, str | None, Mapping[str, Any]]
_F = TypeVar("_F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------------------------
# Locking and hooks

_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The lock that every method holds while it runs (and hooks) ``model``; re-entrant."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextmanager
def using(model: nn.Module) -> Iterator[nn.Module]:
    """Hold the model's lock; yield the model, or an eval-mode copy if any module is training.

    A training-mode forward would apply dropout and update batch-norm statistics (changing
    the model); flipping the shared model to eval and back could be seen by other threads.
    """
    with model_lock(model):
        if _any_training(model):
            yield copy.deepcopy(model).eval()
        else:
            yield model


def _any_training(model: nn.Module) -> bool:
    """Whether any module is in training mode (a plain walk: ``modules()`` costs more per call
    than a small model's whole forward pass at batch 1)."""
    stack = [model]
    while stack:
        m = stack.pop()
        if m.training:
            return True
        stack.extend(c for c in m._modules.values() if c is not None)
    return False


@contextmanager
def forward_hooks(pairs: Iterable[tuple[nn.Module, Callable]]) -> Iterator[None]:
    """Register forward hooks for the duration of a block; they are removed even on error.

    A hook acts only on forwards run by the thread that registered it, so a plain prediction
    from another thread passes through untouched.
    """
    owner = threading.get_ident()
    handles = []
    try:
        for module, fn in pairs:
            handles.append(module.register_forward_hook(_for_thread(fn, owner)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _for_thread(fn: Callable, owner: int) -> Callable:
    def hook(module: nn.Module, inputs: tuple, output):
        if threading.get_ident() != owner:
            return None
        return fn(module, inputs, output)

    return hook


# ---------------------------------------------------------------------------------------------
# Layers, inputs, targets


def get_module(model: nn.Module, layer: str) -> nn.Module:
    """The submodule called ``layer`` (dotted name).

    Raises:
        LayerError: no such module; the message names some that exist.
    """
    if not isinstance(layer, str) or not layer:
        raise LayerError(f"a layer is a dotted module name such as 'features.conv1', not {layer!r}")
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        shown = ", ".join(names[:12]) + (f" ... ({len(names)} in all)" if len(names) > 12 else "")
        raise LayerError(f"layer {layer!r} does not exist in {type(model).__name__}. Layers: {shown}") from None


def all_finite(t: torch.Tensor) -> bool:
    """No NaN or infinity in ``t``: one float64 sum (cheaper than isfinite().all() on small
    inputs, and it cannot overflow for finite float32 values)."""
    return math.isfinite(float(t.detach().sum(dtype=torch.float64)))


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensors in (model.parameters(), model.buffers()):
        for t in tensors:  # the first floating tensor decides; no need to list them all
            if t.is_floating_point():
                return t.device, t.dtype
    return torch.device("cpu"), torch.float32


def as_batch(model: nn.Module, x: torch.Tensor, check_finite: bool = True) -> tuple[torch.Tensor, bool]:
    """A private N x C x H x W copy of ``x`` on the model's device; and whether it is one image.

    One image is a C x H x W tensor or a batch of one (what ``interp.preprocess`` returns).
    ``check_finite``: False where the caller finds NaN and infinity in the layers' outputs anyway.

    Raises:
        ImageError: not a float tensor of 3 or 4 dimensions, empty, or not finite.
    """
    if not isinstance(x, torch.Tensor):
        raise ImageError(f"expected an image tensor (interp.preprocess(image, spec)), got a {type(x).__name__}")
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ImageError(f"expected an image C x H x W or a batch N x C x H x W, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ImageError(f"the input is {x.dtype}; normalise it first with interp.preprocess(image, spec)")
    if check_finite and not all_finite(x):
        raise ImageError("the input contains NaN or infinite values")
    device, dtype = model_device_dtype(model)
    # clone outside inference mode: a normal tensor that autograd can use
    with torch.inference_mode(False):
        return x.detach().to(device=device, dtype=dtype).clone(), x.shape[0] == 1


def logits_of(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """Run the model; its output must be N x classes logits."""
    out = model(xb)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != xb.shape[0]:
        what = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelOutputError(f"the methods need a model that returns N x classes logits; it returned {what}")
    return out


def resolve_targets(logits: torch.Tensor, target: Target) -> torch.Tensor:
    """Target classes as an int64 tensor (N,): the given ones, else the predictions.

    Raises:
        TargetError: not integers, the wrong number for the batch, or out of range.
    """
    n, k = logits.shape
    if target is None:
        return logits.argmax(1)
    try:
        t = (
            target.detach().cpu() if isinstance(target, torch.Tensor) else torch.as_tensor(np.asarray(target))
        ).flatten()
    except (TypeError, ValueError, RuntimeError):
        t = None
    if t is None or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool or t.numel() == 0:
        raise TargetError(f"a target is a class index (an int) or one per image, not {target!r}")
    t = t.to(device=logits.device, dtype=torch.int64)
    if t.numel() == 1:
        t = t.expand(n)
    elif t.numel() != n:
        raise TargetError(f"{t.numel()} targets for a batch of {n} images; give one, or one per image")
    if int(t.min()) < 0 or int(t.max()) >= k:
        bad = t[(t < 0) | (t >= k)]
        raise TargetError(f"target class {int(bad[0])} does not exist: the model has {k} classes (0 to {k - 1})")
    return t.clone()


def zero_safe_grad(score: torch.Tensor, wrt: torch.Tensor) -> torch.Tensor:
    """d score / d wrt; zeros where the score does not depend on ``wrt`` at all."""
    if not score.requires_grad:
        return torch.zeros_like(wrt)
    (grad,) = torch.autograd.grad(score, wrt, allow_unused=True)
    return torch.zeros_like(wrt) if grad is None else grad


def target_score(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of each image's target logit (images do not interact in eval mode)."""
    return logits.gather(1, targets[:, None]).sum()


class Targets:
    """The classes a method explains, fixed from the first forward pass the method runs anyway.

    A method calls :meth:`of` with the logits of its own (gradient-enabled) forward pass, so
    choosing the predicted class costs no separate prediction pass; a method that needs the
    classes before its first pass (Captum's integrated gradients) calls :meth:`before`.
    """

    def __init__(self, requested: Target):
        self.requested = requested
        self.logits: torch.Tensor | None = None
        self.value: torch.Tensor | None = None

    def of(self, logits: torch.Tensor) -> torch.Tensor:
        """The classes (N,), resolved from ``logits`` the first time and kept thereafter (with
        the logits, for the probabilities)."""
        if self.logits is None:
            logits = logits.detach()
            if not all_finite(logits):
                raise ModelOutputError(
                    "the model's output is NaN or infinite for this input "
                    "(a diverged checkpoint, or an input far outside the training range)"
                )
            self.logits = logits
            if self.value is None:
                self.value = resolve_targets(logits, self.requested)
        assert self.value is not None  # fixed with the logits, or before them by given()
        return self.value

    def given(self, n: int, classes: int, device: torch.device) -> torch.Tensor | None:
        """The classes without a forward pass where they were given (checked against ``classes``);
        None where they are the predictions. A later :meth:`of` still records the logits."""
        if self.value is None and self.requested is not None:
            self.value = resolve_targets(torch.empty((n, classes), device=device), self.requested)
        return self.value

    def before(self, model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        """The classes, running one no-grad forward pass if no pass has fixed them yet."""
        if self.value is not None:
            return self.value
        with torch.no_grad():
            return self.of(logits_of(model, xb))


class _KeepLayerOutput:
    """A forward hook that keeps a layer's output (its last call) for differentiation."""

    def __init__(self, layer: str):
        self.layer, self.act = layer, None

    def __call__(self, mod: nn.Module, inputs: tuple, output):
        if not isinstance(output, torch.Tensor):
            raise LayerError(f"layer {self.layer!r} returns a {type(output).__name__}, not a tensor")
        if torch.is_grad_enabled() and not output.requires_grad:
            # Nothing before the layer needs gradients (frozen weights, plain input): differentiate
            # from here without making the backward pass go further down than the layer.
            output = output.detach().requires_grad_(True)
        self.act = output
        # An in-place op after this layer (ReLU(inplace=True) after a conv) would overwrite
        # the tensor we differentiate against; the rest of the network gets a copy instead.
        return output.clone()

    def ran(self) -> torch.Tensor:
        if self.act is None:
            raise LayerError(f"layer {self.layer!r} did not run in the model's forward pass")
        return self.act


def layer_activation_and_grad(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's output (its last call, if it runs more than once) and d target logit / d output,
    from one forward and one backward pass (which stops at the layer)."""
    (act,), (grad,) = layers_activations_and_grads(model, xb, targets, [layer])
    return act, grad


def layers_activations_and_grads(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layers: Sequence[str]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """:func:`layer_activation_and_grad` for several layers from the same forward and backward pass."""
    keeps = [_KeepLayerOutput(layer) for layer in layers]
    with forward_hooks([(get_module(model, k.layer), k) for k in keeps]):
        logits = logits_of(model, xb.detach())
    acts = [k.ran() for k in keeps]
    score = target_score(logits, targets.of(logits))
    if not score.requires_grad:
        return [a.detach() for a in acts], [torch.zeros_like(a) for a in acts]
    grads = torch.autograd.grad(score, acts, allow_unused=True)
    return ([a.detach() for a in acts], [torch.zeros_like(a) if g is None else g for a, g in zip(acts, grads)])


def input_grad(model: nn.Module, xb: torch.Tensor, targets: Targets) -> torch.Tensor:
    """d target logit / d input, N x C x H x W, from one forward and one backward pass."""
    xb = xb.detach().requires_grad_(True)
    logits = logits_of(model, xb)
    return zero_safe_grad(target_score(logits, targets.of(logits)), xb)


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """N x h x w -> N x H x W, bilinear (what a CAM looks like at input resolution)."""
    return nn.functional.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


_RESOLUTION = threading.local()


@contextmanager
def layer_resolution() -> Iterator[None]:
    """Within the block, this thread's CAM maps stay at their layer's resolution
    (:func:`to_input_size` leaves them as they are)."""
    _RESOLUTION.layer = True
    try:
        yield
    finally:
        _RESOLUTION.layer = False


def to_input_size(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A CAM's last step: :func:`upsample` to the input, unless :func:`layer_resolution` asks
    for the layer's own resolution."""
    return maps if getattr(_RESOLUTION, "layer", False) else upsample(maps, size)


# ---------------------------------------------------------------------------------------------
# Running a method


@dataclass(frozen=True)
class Explanation:
    """An attribution of one image (or a batch) for one class: what ``explain`` and every
    attribution function compute (one type for all of them).

    In Jupyter it shows itself: the map over the image it explains (where ``image`` is known,
    e.g. ``explain(..., image=img)``), a colour bar in the map's units and a one-line caption;
    :meth:`show` returns the same as a Plotly figure (interp.figures.explanation draws both).
    """

    map: np.ndarray  # raw, not normalised: (H, W) for SPATIAL_METHODS, (C, H, W) for the others; leading N for a batch
    target: Union[int, np.ndarray]  # the explained class (default: the prediction); (N,) for a batch
    probability: Union[float, np.ndarray]  # softmax probability of the target class
    method: str  # a name of interp.methods.REGISTRY ('' where a caller ran a computation of its own)
    layer: str | None  # the layer a CAM method read ("a+b": layer_cam fused them); None for methods on the input alone
    neuron: tuple | None = None  # (layer, channel[, y, x]) for a neuron view (neuron_attribution)
    # The picture explained as the model saw it, uint8 (H, W, 3) ((N, H, W, 3) for a batch): for
    # display only (with_image); None where unknown (the map is then drawn alone).
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    # Facts about the run that the method reports (RISE: {"n_masks": 3000}); empty for most methods.
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def batched(self) -> bool:
        return isinstance(self.target, np.ndarray)

    def spatial(self, how: str = "absmax") -> np.ndarray:
        """One value per pixel, (H, W) or (N, H, W): channel maps reduced by ``how``."""
        if self.method in REGISTRY and REGISTRY[self.method].spatial:
            return self.map
        return reduce_channels(self.map, how, channel_axis=-3)

    def with_image(self, image: Any, size: int | tuple[int, int] | None = None) -> "Explanation":
        """This explanation with the picture it explains, for display.

        Args:
            image: a PIL image, an image file, or an RGB array (uint8, or float in [0, 1]); for a
                batch, one per image. It is scaled to cover ``size`` and centre-cropped, as
                ``interp.preprocess`` does, so the map lies on what the model saw.
            size: the model's input, a side or (height, width); default the map's size (right for
                every map at input resolution; give it for ``explain(..., resolution="layer")``).

        Raises:
            ImageError: not an image, or not one per image of a batch.
        """
        hw = self.map.shape[-2:] if size is None else ((size, size) if isinstance(size, int) else tuple(size))
        if not self.batched:
            return replace(self, image=_picture(image, hw))
        images = list(image) if isinstance(image, (list, tuple)) or np.ndim(image) == 4 else [image]
        if len(images) != np.size(self.target):
            raise ImageError(
                f"{len(images)} image(s) for a batch of {np.size(self.target)} explanations; give one per image"
            )
        return replace(self, image=np.stack([_picture(i, hw) for i in images]))

    def show(self, index: int | None = None) -> "go.Figure":
        """The map over its image (or alone) with a colour bar in raw units, titled with the method,
        the class and its probability and the layer, as a Plotly figure; for a batch, image
        ``index`` (default the first)."""
        from ..figures.explanation import explanation_figure

        return explanation_figure(self, index)

    def _repr_html_(self) -> str:
        from ..figures.explanation import explanation_html

        return explanation_html(self)


def _picture(image: Any, hw: Sequence[int]) -> np.ndarray:
    """An image (PIL, file, or RGB array) as uint8 (H, W, 3) at ``hw``, scaled to cover it and centre-cropped."""
    from PIL import Image

    from ..data.images import load_image, resize_center_crop

    if isinstance(image, (np.ndarray, torch.Tensor)):
        a = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        if a.ndim != 3 or a.shape[-1] not in (3, 4):
            raise ImageError(f"an image array is (H, W) or (H, W, 3) RGB, not shape {a.shape}")
        if a.dtype != np.uint8:  # float pictures are in [0, 1]
            a = np.round(np.clip(np.nan_to_num(a.astype(np.float64)), 0, 1) * 255).astype(np.uint8)
        image = Image.fromarray(np.ascontiguousarray(a[..., :3]))
    elif not isinstance(image, Image.Image):
        image = load_image(image)
    return np.asarray(resize_center_crop(image.convert("RGB"), (int(hw[0]), int(hw[1]))), dtype=np.uint8)


_CHANNEL_REDUCTIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "absmax": lambda a, ax: np.abs(a).max(axis=ax),  # Simonyan et al.'s saliency map
    "abs_sum": lambda a, ax: np.abs(a).sum(axis=ax),
    "sum": lambda a, ax: a.sum(axis=ax),  # signed; integrated gradients' per-pixel attribution
    "l2": lambda a, ax: np.sqrt((a.astype(np.float64) ** 2).sum(axis=ax)).astype(a.dtype),
}


def reduce_channels(arr: np.ndarray, how: str = "absmax", channel_axis: int = -3) -> np.ndarray:
    """Collapse the channel axis of a (C, H, W) or (N, C, H, W) map: absmax, abs_sum, sum or l2."""
    if how not in _CHANNEL_REDUCTIONS:
        raise ParameterError(f"how must be one of {', '.join(_CHANNEL_REDUCTIONS)}, not {how!r}")
    return _CHANNEL_REDUCTIONS[how](np.asarray(arr), channel_axis)


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    compute: Callable[[nn.Module, torch.Tensor, Targets], Maps | MapsWithDetails],
    method: str = "",
) -> Explanation:
    """Check the input, hold the model's lock, run ``compute`` (which fixes the targets from its
    own forward pass), return numpy as the Explanation of ``method`` (with the details that
    ``compute`` reports as a third element, if any)."""
    xb, single = as_batch(model, x)
    targets = Targets(target)
    with using(model) as m, torch.inference_mode(False):
        with torch.enable_grad():
            result = compute(m, xb, targets)
        amap, layer = result[0], result[1]
        details: dict[str, Any] = dict(result[2]) if len(result) > 2 else {}
        if targets.value is None or targets.logits is None:
            raise InternalError("the method returned without fixing its target classes (Targets.of)")
        probs = torch.softmax(targets.logits.double(), 1).gather(1, targets.value[:, None])[:, 0]
    out = amap.detach().float().cpu().numpy()
    if not math.isfinite(out.sum(dtype=np.float64)):
        raise ModelOutputError("the attribution is not finite: the model's gradients overflow for this input")
    t, p = targets.value.cpu().numpy(), probs.float().cpu().numpy()
    if single:
        return Explanation(out[0], int(t[0]), float(p[0]), method, layer, details=details)
    return Explanation(out, t, p, method, layer, details=details)


def options_from(options: type[DataclassInstance]) -> Callable[[_F], _F]:
    """Decorator for a function that takes its options as ``**options``, each a field of the
    dataclass ``options``: its signature then lists every field with its default, as keyword
    parameters. A method's record reads its options there (and explain checks a call against
    them), help() shows them, and each option's default is written once, in the dataclass."""

    def decorate(fn: _F) -> _F:
        signature = inspect.signature(fn)
        params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        params += [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
            for f in fields(options)
        ]
        fn.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return fn

    return decorate
