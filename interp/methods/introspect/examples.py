"""Dataset examples: for every channel of chosen layers, the held-out images that excite it most
(and least), each with the receptive field around its strongest unit. One pass over the images
serves every layer; the result can be cached on disk per model weights and image set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import ImageError, LayerError
from ..core import as_batch, forward_hooks, get_module, using
from .receptive import ReceptiveField, receptive_field

_CACHE_VERSION = "1"
_Ranked = tuple[np.ndarray, np.ndarray, np.ndarray]  # (values, images, flat positions), each (<= k, C)


@dataclass(frozen=True)
class LayerExamples:
    """One layer's dataset examples; arrays are (C, k), boxes (C, k, 4) as (top, left, bottom, right).

    ``top`` holds image indices by each channel's spatial maximum, strongest first; ``bottom``
    by the spatial minimum, most negative first, or None where the layer has no negative values.
    """

    layer: str
    top: np.ndarray
    top_values: np.ndarray
    top_boxes: np.ndarray
    bottom: np.ndarray | None
    bottom_values: np.ndarray | None
    bottom_boxes: np.ndarray | None
    field: ReceptiveField

    @property
    def channels(self) -> int:
        return self.top.shape[0]


def crop(picture: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """The part of an H x W (x 3) picture inside a box (top, left, bottom, right)."""
    t, left, b, r = (int(v) for v in box)
    return picture[t:b, left:r]


class _Running:
    """One layer's top-k and bottom-k images per channel over the batches seen so far, by each
    channel's spatial max (min), with the position of that max (min).

    Per batch, the plain spatial max and min of every map (no positions: that pass costs half
    of one with positions) are merged with the kept k by a stable sort, ties going to the earlier
    image as in one sort of everything; positions are then found only for the batch's maps that
    entered the kept k."""

    def __init__(self, name: str, k: int):
        self.name, self.k, self.seen, self.width, self.negative = name, k, 0, 1, False
        self.top: _Ranked | None = None
        self.bottom: _Ranked | None = None

    def __call__(self, module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        """A forward hook: taken before any in-place activation after the layer changes its output."""
        if not isinstance(out, torch.Tensor) or out.ndim not in (2, 4):
            raise LayerError(
                f"layer {self.name!r} gives {getattr(out, 'shape', type(out).__name__)}: dataset "
                "examples need N x C x H x W maps or N x F features"
            )
        flat = out.detach().flatten(2) if out.ndim == 4 else out.detach()[:, :, None]
        self.width = out.shape[-1] if out.ndim == 4 else 1
        hi, lo = flat.amax(2), flat.amin(2)
        # NaN or infinity anywhere in the input reaches every layer's maxima or minima: checked
        # here on N x C values, not with a pass over the images.
        if not bool(torch.isfinite(hi).all() and torch.isfinite(lo).all()):
            raise ImageError(
                f"layer {self.name!r} has NaN or infinite values: the input (or the model) has NaN or infinite values"
            )
        self.negative = self.negative or bool((lo < 0).any())
        self.top = self._merge(self.top, hi, flat, descending=True)
        self.bottom = self._merge(self.bottom, lo, flat, descending=False)
        self.seen += len(flat)

    def _merge(self, kept: _Ranked | None, values: torch.Tensor, flat: torch.Tensor, descending: bool) -> _Ranked:
        vals = values.float().cpu().numpy()
        n, c = vals.shape
        images = np.broadcast_to(self.seen + np.arange(n)[:, None], (n, c))
        at = np.full((n, c), -1, dtype=np.int64)  # -1: position not yet found
        if kept is not None:
            vals, images, at = (np.concatenate([a, b]) for a, b in zip(kept, (vals, images, at)))
        order = np.argsort(-vals if descending else vals, axis=0, kind="stable")[: self.k]
        vals, images, at = (np.take_along_axis(a, order, axis=0) for a in (vals, images, at))
        rows, chans = np.nonzero(at < 0)
        if len(rows):
            maps = flat[torch.as_tensor(images[rows, chans] - self.seen), torch.as_tensor(chans)]
            found = maps.argmax(1) if descending else maps.argmin(1)
            at[rows, chans] = found.cpu().numpy()
        return vals, images, at

    def examples(self, field: ReceptiveField, hw: tuple[int, int]) -> LayerExamples:
        """The ranking so far, each channel's images along the second axis, with their boxes."""
        assert self.top is not None and self.bottom is not None  # _scan refuses a layer that never ran
        top = self._by_channel(self.top, field, hw)
        bottom: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] = (None, None, None)
        if self.negative:
            bottom = self._by_channel(self.bottom, field, hw)
        return LayerExamples(self.name, *top, *bottom, field)

    def _by_channel(
        self, ranked: _Ranked, field: ReceptiveField, hw: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images, values, boxes) of one ranking, each channel's along the second axis."""
        vals, images, at = ranked
        boxes = field.boxes(at.T // self.width, at.T % self.width, hw)
        return images.T.astype(np.int64), vals.T.astype(np.float32), boxes


def _ran_once(running: dict[str, _Running], images: int) -> None:
    """Refuse a layer whose module runs more than once per forward pass (a ReLU module reused
    within a block): its maps could not be told apart, so no image index would be right."""
    for r in running.values():
        if r.seen > images:
            raise LayerError(
                f"layer {r.name!r} runs more than once in each forward pass (its module is reused); "
                "pick a layer that runs once, such as the convolution before it"
            )


def _scan(
    model: nn.Module,
    images: torch.Tensor,
    layers: list[str],
    k: int,
    batch_size: int,
    progress: Callable[[int, int], None] | bool | None,
) -> dict[str, _Running]:
    """One forward per batch with a hook on every layer."""
    running = {n: _Running(n, k) for n in layers}
    batches = range(0, len(images), batch_size)
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(images), desc="dataset examples", leave=False)
    try:
        with using(model) as m, torch.inference_mode(False), torch.no_grad():
            with forward_hooks([(get_module(m, n), running[n]) for n in layers]):
                for done, s in enumerate(batches, 1):
                    xb = as_batch(m, images[s : s + batch_size], check_finite=False)[0]
                    m(xb)
                    _ran_once(running, s + len(xb))
                    if bar is not None:
                        bar.update(len(xb))
                    elif callable(progress):
                        progress(done, len(batches))
    finally:
        if bar is not None:
            bar.close()
    missing = [n for n in layers if running[n].top is None]
    if missing:
        raise LayerError(f"layer(s) {', '.join(map(repr, missing))} did not run in the model's forward pass")
    return running


def dataset_examples(
    model: nn.Module,
    images: torch.Tensor,
    layers: str | Sequence[str],
    k: int = 9,
    *,
    batch_size: int = 64,
    cache: bool | str | Path = False,
    progress: Callable[[int, int], None] | bool | None = None,
) -> dict[str, LayerExamples]:
    """The top-k (and bottom-k) images of every channel of each layer, by the channel's spatial
    max (min), with the receptive field of the unit where it is reached.

    Args:
        images: N x 3 x H x W, preprocessed for the model (interp.preprocess, or a HeldOutBatch's x).
        k: images per channel (at most N). cache: True (under interp.data.cache_dir()) or a folder:
            keep the result on disk, keyed by the model's weights, the images, the layers and k.
        progress: a callback(batch, batches), or True for a tqdm bar.

    Returns:
        {layer: LayerExamples}; a dense layer's features count as channels of one unit.

    Raises:
        LayerError: unknown layer, one that does not run or does not give maps or features.
    """
    names = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
    if not names:
        raise LayerError("no layers given; name at least one (e.g. 'features.conv1')")
    for n in names:
        get_module(model, n)
    k = max(1, min(int(k), len(images)))
    hw = (images.shape[-2], images.shape[-1])
    fields = {n: receptive_field(model, n, hw) for n in names}
    path = _cache_path(model, images, names, k, cache) if cache else None
    if path is not None and path.exists():
        return _load(path, names, fields)
    running = _scan(model, images, names, k, batch_size, progress)
    found = {n: running[n].examples(fields[n], hw) for n in names}
    if path is not None:
        _save(path, found)
    return found


def _cache_path(model: nn.Module, images: torch.Tensor, names: list[str], k: int, cache) -> Path:
    """A file named by the hash of everything the result depends on (weights by content, so a
    retrained checkpoint never reads a stale index)."""
    from ...data import cache_dir

    h = hashlib.sha1(f"{_CACHE_VERSION}|{type(model).__name__}|{names}|{k}".encode())
    for key, t in model.state_dict().items():
        h.update(key.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(images.detach().cpu().contiguous().numpy().tobytes())
    folder = Path(cache_dir()) / "examples" if cache is True else Path(cache)
    return folder / f"{h.hexdigest()}.npz"


_FIELDS = ("top", "top_values", "top_boxes", "bottom", "bottom_values", "bottom_boxes")


def _save(path: Path, found: dict[str, LayerExamples]) -> None:
    arrays = {
        f"{i}:{f}": getattr(e, f) for i, e in enumerate(found.values()) for f in _FIELDS if getattr(e, f) is not None
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # whole or not at all: a reader never sees half a file


def _load(path: Path, names: list[str], fields: dict[str, ReceptiveField]) -> dict[str, LayerExamples]:
    found: dict[str, LayerExamples] = {}
    with np.load(path) as z:
        for i, n in enumerate(names):
            # A bottom ranking is saved only where the layer has negative values: None otherwise.
            top, top_values, top_boxes, bottom, bottom_values, bottom_boxes = (z.get(f"{i}:{f}") for f in _FIELDS)
            found[n] = LayerExamples(n, top, top_values, top_boxes, bottom, bottom_values, bottom_boxes, fields[n])
    return found
