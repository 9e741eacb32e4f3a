"""Dataset examples: for every channel of chosen layers, the held-out images that excite it most
(and least), each with the receptive field around its strongest unit. One pass over the images
serves every layer; the result can be cached on disk per model weights and image set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import LayerError
from .core import as_batch, forward_hooks, get_module, using
from .receptive import ReceptiveField, receptive_field

_CACHE_VERSION = "1"


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


def _extremes(store: dict, name: str, module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
    """A forward hook (with ``store`` and ``name`` bound): per image and channel, the spatial max
    and min and where they are (flat index), taken before any in-place activation changes them."""
    if not isinstance(out, torch.Tensor) or out.ndim not in (2, 4):
        raise LayerError(f"layer {name!r} gives {getattr(out, 'shape', type(out).__name__)}: dataset examples "
                         "need N x C x H x W maps or N x F features")
    a = out.detach().float()
    if a.ndim == 2:
        a = a[:, :, None, None]
    flat = a.flatten(2)
    hi, hi_at = flat.max(2)
    lo, lo_at = flat.min(2)
    store.setdefault(name, []).append([t.cpu().numpy() for t in (hi, hi_at, lo, lo_at)] + [a.shape[-1]])


def _scan(model: nn.Module, images: torch.Tensor, layers: list[str], batch_size: int,
          progress: Callable[[int, int], None] | bool | None) -> dict[str, list]:
    """One forward per batch with hooks on every layer (stopping after the last one needed)."""
    store: dict[str, list] = {}
    batches = range(0, len(images), batch_size)
    bar = None
    if progress is True:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(images), desc="dataset examples", leave=False)
    try:
        with using(model) as m, torch.inference_mode(False), torch.no_grad():
            hooks = [(get_module(m, n), partial(_extremes, store, n)) for n in layers]
            with forward_hooks(hooks):
                for done, s in enumerate(batches, 1):
                    xb = as_batch(m, images[s:s + batch_size])[0]
                    m(xb)
                    if bar is not None:
                        bar.update(len(xb))
                    elif callable(progress):
                        progress(done, len(batches))
    finally:
        if bar is not None:
            bar.close()
    missing = [n for n in layers if n not in store]
    if missing:
        raise LayerError(f"layer(s) {', '.join(map(repr, missing))} did not run in the model's forward pass")
    return store


def _rank(values: np.ndarray, where: np.ndarray, width: int, k: int, field: ReceptiveField, hw,
          descending: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top (or bottom) k images per channel from (N, C) extremes: indices, values, boxes."""
    order = np.argsort(-values if descending else values, axis=0, kind="stable")[:k].T  # (C, k)
    vals = np.take_along_axis(values.T, order, axis=1)
    flat = np.take_along_axis(where.T, order, axis=1)
    boxes = np.array([[field.box(int(f) // width, int(f) % width, hw) for f in row] for row in flat],
                     dtype=np.int64).reshape(order.shape + (4,))
    return order.astype(np.int64), vals.astype(np.float32), boxes


def _examples(store: dict, layers: list[str], k: int, fields: dict, hw) -> dict[str, LayerExamples]:
    found = {}
    for name in layers:
        hi, hi_at, lo, lo_at = (np.concatenate([b[i] for b in store[name]]) for i in range(4))
        width = store[name][0][4]
        f = fields[name]
        top = _rank(hi, hi_at, width, k, f, hw, True)
        bottom = _rank(lo, lo_at, width, k, f, hw, False) if float(lo.min()) < 0 else (None, None, None)
        found[name] = LayerExamples(name, *top, *bottom, f)
    return found


def dataset_examples(model: nn.Module, images: torch.Tensor, layers: str | Sequence[str], k: int = 9, *,
                     batch_size: int = 64, cache: bool | str | Path = False,
                     progress: Callable[[int, int], None] | bool | None = None) -> dict[str, LayerExamples]:
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
    hw = tuple(images.shape[-2:])
    fields = {n: receptive_field(model, n, hw) for n in names}
    path = _cache_path(model, images, names, k, cache) if cache else None
    if path is not None and path.exists():
        return _load(path, names, fields)
    found = _examples(_scan(model, images, names, batch_size, progress), names, k, fields, hw)
    if path is not None:
        _save(path, found)
    return found


def _cache_path(model: nn.Module, images: torch.Tensor, names: list[str], k: int, cache) -> Path:
    """A file named by the hash of everything the result depends on (weights by content, so a
    retrained checkpoint never reads a stale index)."""
    from ..data import cache_dir

    h = hashlib.sha1(f"{_CACHE_VERSION}|{type(model).__name__}|{names}|{k}".encode())
    for key, t in model.state_dict().items():
        h.update(key.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(images.detach().cpu().contiguous().numpy().tobytes())
    folder = Path(cache_dir()) / "examples" if cache is True else Path(cache)
    return folder / f"{h.hexdigest()}.npz"


_FIELDS = ("top", "top_values", "top_boxes", "bottom", "bottom_values", "bottom_boxes")


def _save(path: Path, found: dict[str, LayerExamples]) -> None:
    arrays = {f"{i}:{f}": getattr(e, f) for i, e in enumerate(found.values()) for f in _FIELDS
              if getattr(e, f) is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # whole or not at all: a reader never sees half a file


def _load(path: Path, names: list[str], fields: dict) -> dict[str, LayerExamples]:
    with np.load(path) as z:
        return {n: LayerExamples(n, *(z[f"{i}:{f}"] if f"{i}:{f}" in z else None for f in _FIELDS), fields[n])
                for i, n in enumerate(names)}
