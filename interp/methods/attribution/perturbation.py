"""Perturbation attributions: occlusion, LIME and KernelSHAP over superpixels.

- Occlusion (Zeiler & Fergus 2014): Captum's Occlusion, a window of the baseline slid over the
  image; each pixel gets the mean drop of the target logit over the windows that cover it.
- LIME (Ribeiro et al. 2016) and KernelSHAP (Lundberg & Lee 2017): Captum's Lime (Lasso, alpha
  0.01, exponential kernel on the cosine distance, width 1) and KernelShap (the Shapley kernel),
  whose features are SLIC superpixels (Achanta et al. 2012) of the de-normalised image. Captum
  draws the samples from torch's global generator; here the same draws, in the same order, come
  from a generator seeded by ``seed`` for each image, so ``torch.manual_seed(seed)`` before
  Captum's call gives Captum's map exactly, and no global random state is touched (the linear
  fit neither iterates a DataLoader nor initialises its linear layer at random, both of which
  would draw from it).

The window and the superpixels span every input channel, so each map has one value per pixel:
(H, W), or (N, H, W) for a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..core import Maps, Target, Targets, attribute, logits_of, options_from
from .gradients import BaselineLike, _baseline, _check, _check_count

Size = int | tuple[int, int] | None


def _pair(value: Size, default: int, name: str) -> tuple[int, int]:
    v = (default, default) if value is None else value if isinstance(value, (tuple, list)) else (value, value)
    _check(
        len(v) == 2 and all(isinstance(i, (int, np.integer)) and i >= 1 for i in v),
        f"{name} must be an int >= 1 or a pair (height, width), not {value!r}",
    )
    return int(v[0]), int(v[1])


@dataclass(frozen=True)
class OcclusionOptions:
    """Occlusion's options: the occluding ``window`` (a side, or (height, width); default an eighth
    of the image's side), its ``stride`` (default half the window), the ``baseline`` that fills it
    (in the model's input space; default zeros, the mean image) and ``batch_size`` occluded images
    per forward pass."""

    window: Size = None
    stride: Size = None
    baseline: BaselineLike = None
    batch_size: int = 64


@options_from(OcclusionOptions)
def _occlusion(model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any) -> Maps:
    from captum.attr import Occlusion

    o = OcclusionOptions(**options)
    c, h, w = xb.shape[1:]
    win = _pair(o.window, max(1, min(h, w) // 8), "window")  # about 15 x 15 windows by default
    step = _pair(o.stride, max(1, min(win) // 2), "stride")
    _check(win[0] <= h and win[1] <= w, f"the window {win} is larger than the image ({h}, {w})")
    classes = targets.before(model, xb)
    attr = Occlusion(lambda inp: logits_of(model, inp)).attribute(
        xb.detach(),
        sliding_window_shapes=(c, *win),
        strides=(c, *step),
        baselines=_baseline(xb, o.baseline),
        target=classes,
        perturbations_per_eval=max(1, o.batch_size // xb.shape[0]),
    )
    return attr[:, 0], None  # the same map in every channel


def superpixels(
    x: torch.Tensor | np.ndarray,
    n_segments: int = 50,
    compactness: float = 10.0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """SLIC superpixels (Achanta et al. 2012) of one preprocessed image (C, H, W): (H, W) labels 0..K-1.

    Args:
        mean: the model's normalisation (``spec.mean``), undone before SLIC with ``std``;
            without them the image is rescaled to [0, 1] by its own range.
        std: the model's normalisation (``spec.std``).
    """
    from skimage.segmentation import slic

    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
    _check(a.ndim == 3, f"superpixels need one image (C, H, W), not shape {a.shape}")
    if mean is not None and std is not None:
        a = a * np.asarray(std, np.float32)[:, None, None] + np.asarray(mean, np.float32)[:, None, None]
    else:
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    img = np.clip(a, 0.0, 1.0).transpose(1, 2, 0)
    gray = img.shape[-1] == 1
    labels = slic(
        img[..., 0] if gray else img,
        n_segments=int(n_segments),
        compactness=float(compactness),
        start_label=0,
        channel_axis=None if gray else -1,
    )
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int64)


def _segments_for(xb: torch.Tensor, segments, n_segments, compactness, mean, std) -> list[torch.Tensor]:
    """One feature mask (1, 1, H, W) per image: the given labels, else SLIC's."""
    n, h, w = xb.shape[0], *xb.shape[-2:]
    if segments is None:
        labels = [superpixels(xb[i], n_segments, compactness, mean, std) for i in range(n)]
    else:
        s = np.asarray(segments.detach().cpu() if isinstance(segments, torch.Tensor) else segments)
        _check(
            s.shape in ((h, w), (n, h, w)) and np.issubdtype(s.dtype, np.integer) and s.min() >= 0,
            f"segments must be non-negative integer labels (H, W) or (N, H, W) for the input {tuple(xb.shape)}",
        )
        labels = [s if s.ndim == 2 else s[i] for i in range(n)]
    return [
        torch.as_tensor(np.unique(segments, return_inverse=True)[1].reshape(h, w), device=xb.device)[None, None]
        for segments in labels
    ]


class _SkipInit(TorchFunctionMode):
    """Skips torch.nn.init's random initialisation (the fit overwrites those weights anyway)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", "") == "torch.nn.init" and func.__name__.endswith("_"):
            return args[0] if args else kwargs["tensor"]  # an in-place initialiser returns its tensor
        return func(*args, **kwargs)


def _fit_without_global_rng(cls):
    """A Captum linear model that leaves torch's global generator alone: its fit reads the tensors
    directly (iterating Captum's DataLoader draws a seed) and its nn.Linear skips the random
    initialisation that its fitted weights replace."""

    class Fit(cls):
        def fit(self, train_data, **kwargs):
            return super().fit([train_data.dataset.tensors], **kwargs)

        def _construct_model_params(self, *args, **kwargs):
            with _SkipInit():
                return super()._construct_model_params(*args, **kwargs)

    return Fit


def _lime_explainer(forward, gen: torch.Generator):
    from captum._utils.models.linear_model import SkLearnLasso
    from captum.attr import Lime

    def perturb(original_inp, **kwargs):  # Captum's default_perturb_func, on our generator
        probs = torch.ones(1, int(kwargs["num_interp_features"])) * 0.5
        return torch.bernoulli(probs, generator=gen).to(device=original_inp.device).long()

    return Lime(forward, interpretable_model=_fit_without_global_rng(SkLearnLasso)(alpha=0.01), perturb_func=perturb)


def _kernel_shap_explainer(forward, gen: torch.Generator):
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from captum.attr import KernelShap

    class Seeded(KernelShap):
        def kernel_shap_perturb_generator(self, original_inp, **kwargs):
            # Captum's sampler, step for step, on our generator: k ones with p(k) ~ (M-1) / (k (M-k))
            m, device = int(kwargs["num_interp_features"]), original_inp.device
            probs = kwargs["num_select_distribution"].probs
            yield torch.ones(1, m, device=device, dtype=torch.long)
            yield torch.zeros(1, m, device=device, dtype=torch.long)
            while True:
                k = torch.multinomial(probs.reshape(1, -1), 1, True, generator=gen).T[0]
                vals = torch.randn(1, m, generator=gen)
                threshold = torch.kthvalue(vals, m - int(k)).values.item()
                yield (vals > threshold).to(device=device).long()

        def attribute(self, inputs, baselines, target, feature_mask, **kwargs):
            if int(feature_mask.max()) == 0:
                # One feature (a flat image): its Shapley value is exactly f(x) - f(baseline);
                # Captum's sampler would divide by zero.
                with torch.no_grad():
                    gap = forward(inputs)[:, target] - forward(baselines)[:, target]
                return gap.view(-1, 1, 1, 1).expand_as(inputs).clone()
            return super().attribute(inputs, baselines=baselines, target=target, feature_mask=feature_mask, **kwargs)

    explainer = Seeded(forward)
    explainer.interpretable_model = _fit_without_global_rng(SkLearnLinearRegression)()
    return explainer


@dataclass(frozen=True)
class SurrogateOptions:
    """LIME's and KernelSHAP's options: ``n_samples`` perturbed images, ``n_segments`` SLIC
    superpixels of ``compactness`` (see :func:`superpixels`, which also reads the model's
    normalisation ``mean`` and ``std``), or the labels ``segments`` (H, W) or (N, H, W) to use
    instead of SLIC's; the ``baseline`` that fills a superpixel switched off (in the model's input
    space; default zeros) and the ``seed`` of the draws."""

    n_samples: int = 200
    n_segments: int = 50
    compactness: float = 10.0
    baseline: BaselineLike = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    segments: Any = None
    seed: int = 0

    def __post_init__(self) -> None:
        _check_count("n_samples", self.n_samples, least=2)
        _check_count("n_segments", self.n_segments)


def _surrogate(
    model: nn.Module, xb: torch.Tensor, targets: Targets, make: Callable, o: SurrogateOptions, batch_size: int = 64
) -> tuple[torch.Tensor, None]:
    """One linear surrogate per image, from the explainer that ``make(forward, generator)`` builds;
    ``batch_size`` perturbed images per forward pass."""
    classes = targets.before(model, xb)
    masks = _segments_for(xb, o.segments, o.n_segments, o.compactness, o.mean, o.std)
    base = _baseline(xb, o.baseline)
    forward = partial(logits_of, model)
    maps = []
    for i, mask in enumerate(masks):  # one surrogate per image, each seeded alike
        explainer = make(forward, torch.Generator().manual_seed(int(o.seed)))
        attr = explainer.attribute(
            xb[i : i + 1].detach(),
            baselines=base[i : i + 1],
            target=int(classes[i]),
            feature_mask=mask,
            n_samples=o.n_samples,
            perturbations_per_eval=min(o.n_samples, batch_size),
        )
        maps.append(attr[0, 0])
    return torch.stack(maps), None


@options_from(SurrogateOptions)
def _lime(model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any) -> Maps:
    return _surrogate(model, xb, targets, _lime_explainer, SurrogateOptions(**options))


@options_from(SurrogateOptions)
def _kernel_shap(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any
) -> Maps:
    return _surrogate(model, xb, targets, _kernel_shap_explainer, SurrogateOptions(**options))


# ---------------------------------------------------------------------------------------------
# Public functions (explain() reaches the same computations by name)


@options_from(OcclusionOptions)
def occlusion(model: nn.Module, x: torch.Tensor, target: Target = None, **options: Any) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014): (H, W) or (N, H, W), the mean drop of the target logit.

    Args:
        options: window (the occluding square, or (height, width); default an eighth of the image
            side), stride (default half the window), baseline (what fills the window, in the model's
            input space; default zeros, the mean image), batch_size; see :class:`OcclusionOptions`.
    """
    return attribute(model, x, target, partial(_occlusion, **options)).map


@options_from(SurrogateOptions)
def lime(model: nn.Module, x: torch.Tensor, target: Target = None, **options: Any) -> np.ndarray:
    """LIME (Ribeiro et al. 2016) over SLIC superpixels: (H, W) or (N, H, W), each pixel its
    superpixel's weight.

    Args:
        options: n_samples, n_segments, compactness, baseline, mean, std (the model's normalisation,
            for SLIC), segments (labels to use instead of SLIC's), seed; see :class:`SurrogateOptions`.
    """
    return attribute(model, x, target, partial(_lime, **options)).map


@options_from(SurrogateOptions)
def kernel_shap(model: nn.Module, x: torch.Tensor, target: Target = None, **options: Any) -> np.ndarray:
    """KernelSHAP (Lundberg & Lee 2017) over SLIC superpixels: (H, W) or (N, H, W); options as :func:`lime`."""
    return attribute(model, x, target, partial(_kernel_shap, **options)).map
