"""The crops and the forward passes of :mod:`.craft`: the images (the predictions and the layer's
maps), the crops (stopped at the layer, whose output is all they need) and the importance (the rest
of the model on masked concept coefficients).

The rest of the model is the modules registered after the layer, innermost container first, where
running them in turn on the layer's output gives the model's logits on the images (a model that runs
its children in sequence: nn.Sequential, or a forward such as ``classifier(features(x))``). That is
checked on the images rather than read from the code: torch.fx would say it exactly, but tracing
patches every module's call for all threads while it runs, and a shared model in the dashboard is
called from several. Elsewhere a forward hook replaces the layer's output in the whole forward pass.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import LayerError, ModelOutputError, ParameterError
from ..methods.core import forward_hooks, get_module, logits_of
from .sobol import total_indices


class _Stop(Exception):
    """Ends a forward pass at the layer."""


class _LayerHook:
    """Forward hook on the layer: keeps a copy of its output (an in-place ReLU after it changes the
    output itself) and counts its calls; with ``stop``, ends the forward pass there; with ``replace``
    set, puts that tensor in place of the output."""

    def __init__(self, layer: str, stop: bool = False):
        self.layer, self.stop, self.calls = layer, stop, 0
        self.act: torch.Tensor | None = None
        self.replace: torch.Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple, output):
        if self.replace is not None:
            return self.replace
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            raise LayerError(
                f"CRAFT needs a layer with maps (N x C x h x w); {self.layer!r} gives "
                f"{getattr(output, 'shape', type(output).__name__)}: pick a convolution or the activation after one"
            )
        self.calls += 1
        self.act = output.detach().clone()
        if self.stop:
            raise _Stop
        return None

    def run(self, model: nn.Module, xb: torch.Tensor) -> torch.Tensor | None:
        """One forward pass; the logits, or None where it stopped at the layer."""
        self.calls, self.act = 0, None
        try:
            logits = logits_of(model, xb)
        except _Stop:
            logits = None
        if self.act is None:
            raise LayerError(f"layer {self.layer!r} did not run in the model's forward pass")
        return logits


class Progress:
    """Counts batches for a callback(done, total), or on a tqdm bar where ``progress`` is True."""

    def __init__(self, progress: Callable[[int, int], None] | bool | None, total: int, desc: str = "CRAFT"):
        self.done, self.total = 0, total
        self.callback = progress if callable(progress) else None
        self.bar = None
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=False)

    def __call__(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def modules_after(model: nn.Module, layer: str) -> list[nn.Module]:
    """The modules registered after ``layer`` in each container on its path, innermost first."""
    chains, parent = [], model
    for name in layer.split("."):
        names = list(parent._modules)
        chains.append([parent._modules[n] for n in names[names.index(name) + 1 :]])
        parent = parent._modules[name]  # type: ignore[assignment]
    return [m for chain in reversed(chains) for m in chain if m is not None]


class Passes:
    """CRAFT's forward passes of one model (held by the caller with ``using``) at one layer."""

    def __init__(self, model: nn.Module, layer: str, batch_size: int, tick: Progress):
        self.model, self.layer, self.bs, self.tick = model, layer, int(batch_size), tick
        self.module = get_module(model, layer)
        self.suffix: list[nn.Module] | None = None  # the rest of the model, where it runs in sequence
        self.broadcast = True  # the hook path runs the layers before once per batch, on one image

    def to_layer(self, xb: torch.Tensor) -> torch.Tensor:
        """The layer's maps of a batch, the forward pass stopped there."""
        hook = _LayerHook(self.layer, stop=True)
        with forward_hooks([(self.module, hook)]), torch.inference_mode(False), torch.no_grad():
            hook.run(self.model, xb)
        assert hook.act is not None  # run() raises where the layer did not run
        return hook.act

    def images(self, x: torch.Tensor, keep: np.ndarray | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits of every image and the maps (C x h x w) of those in ``keep`` (all where None);
        checks that the layer runs once per pass and finds the rest of the model on the first batch."""
        hook = _LayerHook(self.layer)
        kept = set(range(len(x)) if keep is None else keep.tolist())
        logits, acts = [], []
        with forward_hooks([(self.module, hook)]), torch.inference_mode(False), torch.no_grad():
            for s in range(0, len(x), self.bs):
                out = hook.run(self.model, x[s : s + self.bs])
                assert out is not None and hook.act is not None
                if hook.calls > 1:
                    raise LayerError(
                        f"layer {self.layer!r} runs more than once in each forward pass (its module is "
                        "reused); pick a layer that runs once, such as the convolution before it"
                    )
                if s == 0:
                    self.suffix = self._suffix(hook.act, out)
                acts += [hook.act[i - s].clone() for i in range(s, s + len(out)) if i in kept]
                logits.append(out)
                self.tick()
        return torch.cat(logits), acts

    def _suffix(self, act: torch.Tensor, logits: torch.Tensor) -> list[nn.Module] | None:
        """The modules after the layer where, run in turn on its maps, they give the logits."""
        chain = modules_after(self.model, self.layer)
        try:
            out = act.clone()
            for m in chain:
                out = m(out)
        except Exception:  # the model does more between its children than call them in turn
            return None
        if not isinstance(out, torch.Tensor) or out.shape != logits.shape:
            return None
        scale = 1.0 + float(logits.abs().max())
        return chain if torch.allclose(out, logits, rtol=1e-4, atol=1e-5 * scale) else None

    @staticmethod
    def crop_batches(n_images: int, per_image: int, batch_size: int) -> int:
        """How many batches :meth:`crops` runs."""
        group = max(1, batch_size // per_image)
        sizes = [min(group, n_images - s) * per_image for s in range(0, n_images, group)]
        return sum(-(-size // batch_size) for size in sizes)

    def crops(self, xb: torch.Tensor, grid: Sequence[tuple[int, int, int, int]]) -> torch.Tensor:
        """A (n_crops x C): each crop's maps, clipped at 0 and averaged over positions; the crops of
        each image in ``grid``'s order, resized to the input size, images in order."""
        hook = _LayerHook(self.layer, stop=True)
        group = max(1, self.bs // len(grid))  # whole images per batch: one resize per grid cell
        rows = []
        with forward_hooks([(self.module, hook)]), torch.inference_mode(False), torch.no_grad():
            for s in range(0, len(xb), group):
                imgs = xb[s : s + group]
                crops = torch.stack(
                    [
                        nn.functional.interpolate(
                            imgs[:, :, t:b, left:r], size=xb.shape[-2:], mode="bilinear", align_corners=False
                        )
                        for t, left, b, r in grid
                    ],
                    1,
                ).flatten(0, 1)
                for c in range(0, len(crops), self.bs):
                    hook.run(self.model, crops[c : c + self.bs])
                    assert hook.act is not None
                    rows.append(hook.act.clamp(min=0).flatten(2).mean(2).cpu())
                    self.tick()
        return torch.cat(rows)

    def importance(
        self,
        xs: torch.Tensor,
        acts: list[torch.Tensor],
        coefficients: list[np.ndarray],
        bank: np.ndarray,
        target: int,
        masks: np.ndarray,
    ) -> np.ndarray:
        """Each concept's total Sobol index for the target's logit, (k,), mean over the images ``xs``
        (their maps ``acts`` and those maps' ``coefficients`` (h*w x k) in the ``bank``)."""
        k = len(bank)
        device, dtype = acts[0].device, acts[0].dtype
        w = torch.from_numpy(bank).to(device=device, dtype=dtype)
        m = torch.from_numpy(masks).to(device=device, dtype=dtype)
        hook = _LayerHook(self.layer)
        hooks = [] if self.suffix is not None else [(self.module, hook)]
        scores = []
        with forward_hooks(hooks), torch.inference_mode(False), torch.no_grad():
            for x1, act, coef in zip(xs, acts, coefficients):
                c, h, wd = act.shape
                u = torch.from_numpy(coef).to(device=device, dtype=dtype)
                f = []
                for s in range(0, len(m), self.bs):
                    maps = (u[None] * m[s : s + self.bs, None, :]) @ w  # (b, h*w, C)
                    maps = maps.reshape(-1, h, wd, c).permute(0, 3, 1, 2).contiguous()
                    f.append(self._rest(hook, x1[None], maps)[:, target].double().cpu())
                    self.tick()
                scores.append(total_indices(torch.cat(f).numpy(), len(m) // (k + 2), k))
        return np.mean(scores, 0)

    def _rest(self, hook: _LayerHook, x1: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """The logits of the rest of the model on the layer's maps ``maps`` (one image's, x1)."""
        if self.suffix is not None:
            out = maps
            for m in self.suffix:
                out = m(out)
            return out
        b, logits = len(maps), None
        hook.replace = maps
        try:
            if self.broadcast:
                try:  # the layers before run once, on the one image; the rest on the b maps
                    logits = self.model(x1)
                except RuntimeError:  # the maps met an earlier tensor of batch 1 (a concatenation)
                    logits = None  # an error of the model's own recurs below
                if not isinstance(logits, torch.Tensor) or logits.shape[0] != b:
                    self.broadcast, logits = False, None
            if logits is None:
                logits = self.model(x1.expand(b, *x1.shape[1:]))
        finally:
            hook.replace = None
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != b:
            raise ModelOutputError(
                f"the model returned {getattr(logits, 'shape', type(logits).__name__)} for {b} masked maps; "
                f"CRAFT needs {b} x classes logits"
            )
        return logits


def crop_grid(hw: Sequence[int], crop_fraction: float, crops_per_side: int) -> list[tuple[int, int, int, int]]:
    """The crops of one image, (top, left, bottom, right) in input pixels, row by row.

    Raises:
        ParameterError: crop_fraction outside (0, 1], crops_per_side below 1.
    """
    if not 0 < crop_fraction <= 1:
        raise ParameterError(f"crop_fraction must be in (0, 1], not {crop_fraction!r}")
    check_count("crops_per_side", crops_per_side, 1)
    h, w = int(hw[0]), int(hw[1])
    ch, cw = max(1, round(crop_fraction * h)), max(1, round(crop_fraction * w))

    def starts(side: int, crop: int) -> list[int]:
        if crops_per_side == 1:
            return [(side - crop) // 2]
        return [int(v) for v in np.round(np.linspace(0, side - crop, int(crops_per_side)))]

    return [(t, left, t + ch, left + cw) for t in starts(h, ch) for left in starts(w, cw)]


def crop_pictures(pictures: Sequence[np.ndarray] | np.ndarray | torch.Tensor, boxes: np.ndarray) -> list[np.ndarray]:
    """The crops of ``boxes`` (rows of ``ConceptSet.crop_boxes``) cut out of the pictures, for display.

    Args:
        pictures: one per image of ``extract``, at the model's input size: (H, W[, 3]) arrays (a
            HeldOutBatch's pictures), or an N x C x H x W tensor or array (channels moved last).
    """
    if isinstance(pictures, torch.Tensor):
        pictures = pictures.detach().cpu().numpy()
    if isinstance(pictures, np.ndarray) and pictures.ndim == 4 and pictures.shape[1] in (1, 3, 4):
        pictures = np.moveaxis(pictures, 1, -1)
    out = []
    for i, t, left, b, r in np.asarray(boxes, dtype=np.int64).reshape(-1, 5):
        if not 0 <= i < len(pictures):
            raise ParameterError(f"a box names image {i}, but {len(pictures)} pictures were given: one per image")
        out.append(np.asarray(pictures[i])[t:b, left:r])
    return out


def is_int(value: Any) -> bool:
    """An integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_count(name: str, value: Any, least: int) -> None:
    """Raises ParameterError unless ``value`` is an integer >= ``least``."""
    if not is_int(value) or value < least:
        raise ParameterError(f"{name} must be an integer >= {least}, not {value!r}")
