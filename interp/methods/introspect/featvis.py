"""Feature visualisation by activation maximisation (Olah et al. 2017, as Lucid/Lucent do it): an
image in a decorrelated-colour Fourier basis, optimised to excite one channel, neuron or class
logit, under random jitter, scale and rotation at every step so that it stays readable."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Literal, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...errors import LayerError, ParameterError
from ..core import forward_hooks, get_module, model_device_dtype, using

# Lucid's square root of ImageNet's colour correlation (its SVD), columns normalised below:
# optimising in these coordinates keeps the colours of the image decorrelated as in photos.
_COLOUR = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOUR = _COLOUR / _COLOUR.norm(dim=0).max()
Progress = Callable[[int, int], None]
Position = Union[tuple[int, int], Literal["centre"], None]


@dataclass(frozen=True)
class FeatureVis:
    """Optimised images (N x 3 x H x W in [0, 1]) and each one's objective per step (N, steps)."""

    images: np.ndarray
    objective: np.ndarray
    channels: tuple[int, ...]
    layer: str | None


@dataclass(frozen=True)
class Transforms:
    """The random changes applied before every step (robustness makes readable images)."""

    pad: float = 1 / 16  # grey border, as a fraction of the side, so jitter shows no hard edge
    # Lucid's 8-pixel jitter, 0.9-1.1 scale and 10 degrees are for 224-pixel images; fractions of
    # the side keep small (32-pixel) images from being warped beyond what their channels see.
    jitter: float = 1 / 32  # largest shift, as a fraction of the side
    scale: tuple[float, float] = (0.95, 1.05)
    degrees: float = 5.0


class FourierImage(nn.Module):
    """A batch of images as a 1/f-scaled spectrum per decorrelated colour channel (Lucid's fft_image)."""

    scale: torch.Tensor  # a registered buffer: moves with the module, but is not optimised

    def __init__(self, n: int, size: int, generator: torch.Generator, decay: float = 1.0):
        super().__init__()
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        freq = torch.sqrt(fx * fx + fy * fy)
        # 1/f, as in natural images' spectra: low frequencies move first, so the image stays smooth.
        # (Lucid multiplies by sqrt(h w) before TensorFlow's unnormalised inverse FFT: the same as
        # the orthonormal one used here.)
        self.register_buffer("scale", 1.0 / freq.clamp(min=1.0 / size) ** decay)
        shape = (n, 3, size, size // 2 + 1, 2)
        self.spectrum = nn.Parameter(0.01 * torch.randn(shape, generator=generator))
        self.size = size

    def shift_colour(self, logits: torch.Tensor) -> None:
        """Move each image's mean colour to sigmoid(``logits``) (N x 3, RGB before the sigmoid).

        The 0-frequency coefficient, scaled by ``size`` and then by the orthonormal inverse FFT's
        1/size, reaches every pixel as itself; divided by the magic 4 and mixed by the colour
        matrix, so the inverse of both is added here."""
        with torch.no_grad():
            dc = torch.linalg.solve(_COLOUR.to(logits), logits.T).T * 4.0
            self.spectrum[:, :, 0, 0, 0] += dc.to(self.spectrum)

    def keep(self, rows: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """Keep only the images ``rows`` (and their optimiser state), in that order."""
        old = self.spectrum
        self.spectrum = nn.Parameter(old.detach()[rows].clone())
        state = opt.state.pop(old, {})
        opt.param_groups[0]["params"] = [self.spectrum]
        opt.state[self.spectrum] = {
            k: v[rows].clone() if torch.is_tensor(v) and v.ndim else v for k, v in state.items()
        }

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        image = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho") / 4.0  # Lucid's magic 4
        image = torch.einsum("nchw,dc->ndhw", image, _COLOUR.to(image))
        return torch.sigmoid(image)


def transform(images: torch.Tensor, t: Transforms, g: torch.Generator) -> torch.Tensor:
    """Pad with grey, then one random affine warp (shift, scale, rotation) back to the same size."""
    n, _, h, w = images.shape
    p = max(int(round(t.pad * h)), 1)
    padded = F.pad(images, (p, p, p, p), value=0.5)
    r = torch.rand(4, generator=g)
    scale = t.scale[0] + (t.scale[1] - t.scale[0]) * float(r[0])
    angle = math.radians(t.degrees * (2 * float(r[1]) - 1))
    shift = [t.jitter * (2 * float(v) - 1) * 2 for v in r[2:]]  # affine_grid's units: half a side
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    side = h / (h + 2 * p)  # sample the unpadded area at scale 1
    theta = torch.tensor(
        [[cos * side, -sin * side, shift[0]], [sin * side, cos * side, shift[1]]],
        dtype=images.dtype,
        device=images.device,
    ).expand(n, 2, 3)
    grid = F.affine_grid(theta, [n, 3, h, w], align_corners=False)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, per image (N,)."""
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    return dx + dy


class _Stop(Exception):
    """Raised after the layer ran: the rest of the network is not needed for its objective."""


def _layer_output(model: nn.Module, x: torch.Tensor, layer: str | None) -> torch.Tensor:
    """The layer's output (the logits where ``layer`` is None), stopping the forward pass there:
    a conv layer then takes any image size, even in a model whose dense head wants one."""
    if layer is None:
        return model(x)
    kept: list = []

    def keep(module: nn.Module, inputs: tuple, output) -> None:
        kept.append(output)
        raise _Stop

    try:
        with forward_hooks([(get_module(model, layer), keep)]):
            model(x)
    except _Stop:
        pass
    if not kept or not isinstance(kept[0], torch.Tensor):
        raise LayerError(f"layer {layer!r} did not return a tensor in the model's forward pass")
    return kept[0]


def _objective(
    model: nn.Module, x: torch.Tensor, layer: str | None, channels: torch.Tensor, position: Position
) -> torch.Tensor:
    """Each image's own unit: its channel's mean (or value at ``position``), or a class logit (N,)."""
    out = _layer_output(model, x, layer)
    if int(channels.max()) >= out.shape[1]:
        raise LayerError(
            f"channel {int(channels.max())} does not exist: {layer or 'the logits'!r} has "
            f"{out.shape[1]} channels (0 to {out.shape[1] - 1})"
        )
    picked = out[torch.arange(len(x), device=out.device), channels.to(out.device)]
    if picked.ndim == 1:
        return picked
    if position == "centre":
        return picked[:, picked.shape[-2] // 2, picked.shape[-1] // 2]
    if position is not None:
        return picked[:, position[0], position[1]]
    return picked.flatten(1).mean(1)


def feature_visualization(
    model: nn.Module,
    layer: str | None,
    channels: Sequence[int],
    *,
    steps: int = 128,
    size: int = 64,
    seed: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    lr: float = 0.1,
    tv: float = 0.0,
    position: Position = None,
    transforms: Transforms | None = Transforms(),
    starts: int = 1,
    time_budget: float | None = None,
    progress: Progress | bool | None = None,
) -> FeatureVis:
    """Images that maximise channels of ``layer`` (or class logits where ``layer`` is None), all
    channels optimised together in one batch, one image per channel.

    Args:
        channels: channel (or class) indices; one image each.
        size: the images' side in pixels. mean, std: the model's input normalisation (default none).
        tv: weight of a total-variation penalty. position: optimise one neuron of each channel,
            (row, column) or "centre", instead of the channel's mean.
        lr: Adam's step; Lucid's 0.05 wants about 512 steps, 0.1 gives a readable image in 64-128.
        transforms: random jitter, scale and rotation per step (None: none).
        starts: starting images per channel, all in the batch for the first eighth of the steps,
            then each channel goes on from its best: Lucid's grey, then random colours spread from
            dark to light (a channel that wants white paper stalls on grey).
        time_budget: seconds; stop early when spent (the objective then has fewer steps).
        progress: a callback(step, steps), or True for a tqdm bar.

    Returns:
        FeatureVis with images (N x 3 x size x size in [0, 1]) and objective (N, steps run).

    Raises:
        LayerError: unknown layer, or a channel it does not have. ParameterError: steps or starts < 1,
            size < 8.
    """
    chans = _checked(model, layer, channels, steps, size, starts)
    g = torch.Generator().manual_seed(seed)
    device, dtype = model_device_dtype(model)
    param = FourierImage(len(chans) * starts, size, g).to(device)
    if starts > 1:
        param.shift_colour(_start_colours(starts, len(chans), g).to(device))
    m_t = torch.tensor(mean or (0.0, 0.0, 0.0), device=device).view(1, 3, 1, 1)
    s_t = torch.tensor(std or (1.0, 1.0, 1.0), device=device).view(1, 3, 1, 1)
    units = chans.repeat(starts)  # start-major: row s * N + i is channel i's start s

    def step() -> torch.Tensor:
        img = param()
        seen = transform(img, transforms, g) if transforms is not None else img
        per_image = _objective(m, ((seen - m_t) / s_t).to(dtype), layer, units, position)
        _image_gradient(param, per_image, img, tv)
        return per_image.detach().float().cpu()

    with using(model) as m, torch.inference_mode(False), torch.enable_grad():
        opt = torch.optim.Adam(param.parameters(), lr=lr)
        trial = max(1, steps // 8) if starts > 1 else steps
        with _Runner(steps, time_budget, progress) as run:
            history = run(step, opt, trial)
            if starts > 1:
                best = _best_starts(history, starts, len(chans))
                param.keep(best, opt)
                history, units = [h[best] for h in history], chans
                history += run(step, opt, steps - len(history))
        images = param().detach().float().cpu().numpy()
    return FeatureVis(images, torch.stack(history, 1).numpy(), tuple(int(c) for c in chans), layer)


def _checked(
    model: nn.Module, layer: str | None, channels: Sequence[int], steps: int, size: int, starts: int
) -> torch.Tensor:
    """The channels as a tensor, after checking the arguments (see feature_visualization's Raises)."""
    if layer is not None:
        get_module(model, layer)
    if steps < 1 or size < 8 or starts < 1:
        raise ParameterError(
            f"steps and starts must be at least 1 and size at least 8 pixels, not {steps}, {starts} and {size}"
        )
    chans = torch.as_tensor(list(channels), dtype=torch.int64)
    if chans.numel() == 0 or int(chans.min()) < 0:
        raise LayerError(f"channels must be a non-empty list of indices >= 0, not {list(channels)!r}")
    return chans


def _image_gradient(param: FourierImage, per_image: torch.Tensor, img: torch.Tensor, tv: float) -> None:
    """Set the spectrum's gradient of -(the objectives' sum) + tv * total variation.

    Gradients for the image only: the shared model's parameters get no .grad, no flag changes."""
    loss = -per_image.sum() + (tv * total_variation(img).sum() if tv else 0.0)
    (param.spectrum.grad,) = torch.autograd.grad(loss, [param.spectrum])


def _start_colours(starts: int, n: int, g: torch.Generator) -> torch.Tensor:
    """RGB logits (starts * n x 3) of every start's mean colour: grey for start 0; start s > 0
    takes the s-th of starts - 1 equal brightness bands from -2.5 to 2.5 (sigmoid 0.08 to 0.92),
    at a uniform point within it, with a random tint per colour."""
    bands = starts - 1
    low = -2.5 + 5.0 * torch.arange(bands).view(bands, 1, 1) / bands
    brightness = low + 5.0 / bands * torch.rand(bands, n, 1, generator=g)
    tint = 0.5 * torch.randn(bands, n, 3, generator=g)
    return torch.cat([torch.zeros(n, 3), (brightness + tint).reshape(bands * n, 3)])


def _best_starts(history: list[torch.Tensor], starts: int, n: int) -> torch.Tensor:
    """Row of each channel's best start: the highest mean objective over the last 4 steps (the same
    random transforms for every start at a step, so the comparison is fair)."""
    recent = torch.stack(history[-4:]).mean(0).view(starts, n)
    return recent.argmax(0) * n + torch.arange(n)


class _Runner:
    """Optimiser steps under one step count, time budget and progress bar, run in parts."""

    def __init__(self, steps: int, time_budget: float | None, progress: Progress | bool | None):
        self.steps, self.done, self.time_budget = steps, 0, time_budget
        self.bar, self.callback = _progress(progress, steps)
        self.start = time.perf_counter()

    def __call__(self, step: Callable[[], torch.Tensor], opt: torch.optim.Optimizer, count: int) -> list[torch.Tensor]:
        """Up to ``count`` steps (none once the time budget is spent); each step's objective."""
        history: list[torch.Tensor] = []
        for _ in range(count):
            if self.done and self.time_budget is not None and time.perf_counter() - self.start > self.time_budget:
                break
            history.append(step())
            opt.step()
            self.done += 1
            self.callback(self.done, self.steps)
        return history

    def __enter__(self) -> "_Runner":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress(progress: Progress | bool | None, steps: int):
    """(a tqdm bar to close, or None; the callback to call each step)."""
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="optimising", leave=False)
        return bar, lambda done, total: bar.update(1)
    if callable(progress):
        return None, progress
    return None, lambda done, total: None


def channel_maxima(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    layer: str,
    channels: Sequence[int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """Each image's own channel's spatial maximum (N,), for images in [0, 1] (N x 3 x H x W), with
    no transforms: the measure dataset examples rank by, so the two can be compared."""
    device, dtype = model_device_dtype(model)
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    x = (x - torch.tensor(mean or (0.0,) * 3).view(1, 3, 1, 1)) / torch.tensor(std or (1.0,) * 3).view(1, 3, 1, 1)
    with using(model) as m, torch.inference_mode(False), torch.no_grad():
        out = _layer_output(m, x.to(device=device, dtype=dtype), layer)
    own = out[torch.arange(len(x)), torch.as_tensor(list(channels))].float().cpu().numpy()
    return own.reshape(len(x), -1).max(axis=1)
