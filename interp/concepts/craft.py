"""CRAFT (Fel et al., CVPR 2023): the concepts a model uses for one class, found as a non-negative
factorisation of a layer's activations on crops of the class's images, and ranked by how much of
the class's logit each one drives (total Sobol indices).

Each image gives a grid of crops, each resized back to the input size as CRAFT does; a crop's
activation at the layer, averaged over positions, is a row of A (crops x channels). scikit-learn's
NMF (seeded) factorises A ~ U W: the k rows of W are the concepts (channel vectors), U the crops'
coefficients. Activations are clipped at 0 first, as NMF needs: after a ReLU that changes nothing,
and for a convolution that a ReLU follows the next layer sees relu(output) anyway.

A concept's importance is CRAFT's: an image's activation at every position is written in the
concept basis (W fixed, NMF's transform), the coefficients are multiplied by quasi-Monte-Carlo masks
(one factor per concept, the same at every position), and the rest of the model turns (U * M) W
into the class's logit; each concept's total Sobol index (:mod:`.sobol`) is averaged over images.
Where the model runs its children in sequence (checked on the images) the rest of the model is the
modules after the layer alone; elsewhere a forward hook puts (U * M) W in place of the layer's output
in the whole forward pass.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import LayerError, MethodError, ParameterError, TargetError
from ..methods.core import as_batch, get_module, upsample, using
from .craft_passes import Passes, Progress, check_count, crop_grid, crop_pictures, is_int
from .sobol import sobol_masks

__all__ = ["ConceptSet", "crop_grid", "crop_pictures", "extract", "in_basis", "reconstruction_errors"]

_CACHE_VERSION = "1"
_MAX_ITER = 1000  # NMF's iterations: more than scikit-learn's 200, as the crops' matrix is small


@dataclass(frozen=True)
class ConceptSet:
    """The concepts of one class at one layer, most important first."""

    layer: str
    target: int  # the explained class
    bank: np.ndarray  # (k, C) the concepts: non-negative channel vectors
    importance: np.ndarray  # (k,) each concept's total Sobol index for the target's logit, mean over images
    coefficients: np.ndarray  # (n_crops, k) each crop's concept coefficients: its activation ~ coefficients @ bank
    crop_boxes: np.ndarray  # (n_crops, 5) int: image index, top, left, bottom, right (input pixels)
    reconstruction_error: float  # ||A - U W||_F / ||A||_F over the crops' activations A
    n_images: int
    # The model the concepts came from, so that maps(x) needs no model right after extract; not
    # pickled (st.cache_data pickles results; a model is large and shared).
    _model: nn.Module | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def top_crops(self, concept: int, m: int = 6) -> np.ndarray:
        """Indices of the ``m`` crops with the highest coefficient of ``concept``, highest first
        (rows of ``crop_boxes``; :func:`crop_pictures` cuts them out)."""
        if not 0 <= concept < len(self.bank):
            raise ParameterError(f"concept must be in 0..{len(self.bank) - 1}, not {concept!r}")
        return np.argsort(-self.coefficients[:, concept], kind="stable")[: max(0, int(m))]

    def maps(self, x: torch.Tensor, model: nn.Module | None = None) -> np.ndarray:
        """Each concept's presence on one image, (k, H, W): the layer's activation at each position
        (clipped at 0) in the concept basis, bilinearly upsampled to the input; non-negative.

        Args:
            x: one preprocessed image. model: the model the concepts came from (default: the one
                ``extract`` ran, which unpickled concepts do not keep).

        Raises:
            ParameterError: no model, or not one image. LayerError: the model's layer does not fit.
        """
        model = self._model if model is None else model
        if model is None:
            raise ParameterError("these concepts were unpickled without their model: pass it, concepts.maps(x, model)")
        xb, single = as_batch(model, x)
        if not single:
            raise ParameterError(f"maps takes one image; got a batch of {xb.shape[0]}")
        with using(model) as m:
            act = Passes(m, self.layer, 1, Progress(None, 0)).to_layer(xb)
        _, c, h, w = act.shape
        if c != self.bank.shape[1]:
            raise LayerError(
                f"layer {self.layer!r} has {c} channels here and {self.bank.shape[1]} in the concepts: "
                "pass the model they were extracted from"
            )
        u = in_basis(_positions(act), self.bank).T.reshape(len(self.bank), h, w)
        return upsample(torch.from_numpy(u).float(), xb.shape[-2:]).clamp(min=0).numpy()


def extract(
    model: nn.Module,
    layer: str,
    images: torch.Tensor,
    n_concepts: int = 10,
    *,
    target: int | None = None,
    crop_fraction: float = 0.5,
    crops_per_side: int = 3,
    importance_images: int = 32,
    n_masks: int = 32,
    batch_size: int = 32,
    seed: int = 0,
    cache: bool | str | Path = False,
    progress: Callable[[int, int], None] | bool | None = None,
) -> ConceptSet:
    """CRAFT's concepts of one class at ``layer``, most important first.

    Args:
        images: preprocessed images of one class, N x 3 x H x W.
        layer: a layer with maps (N x C x h x w), whose activations are non-negative (clipped at 0).
        n_concepts: k, at most the number of crops (N x crops_per_side^2).
        target: the class explained (default: the most common prediction over ``images``).
        crop_fraction: each crop's side as a fraction of the image's, resized back to H x W.
        crops_per_side: each image gives a crops_per_side^2 grid of crops.
        importance_images: how many of the images (spread over them) estimate the importance;
            n_masks: the Sobol design's points (n_masks * (k + 2) forward passes per image).
        seed: NMF's initialisation and the Sobol sequence's scrambling.
        cache: True (under interp.data.cache_dir()/"craft") or a folder: keep the result on disk,
            keyed by the weights, the images, the layer and every option.
        progress: a callback(done, total) over the batches, or True for a tqdm bar.

    Raises:
        ImageError: no images, or not images. LayerError: no such layer, one without maps, one
        that runs more than once, or all zero. ParameterError: an option out of range.
        TargetError: no such class. MethodError: scikit-learn is not installed.
    """
    xb, _ = as_batch(model, images)
    get_module(model, layer)
    grid = crop_grid(xb.shape[-2:], crop_fraction, crops_per_side)
    n_crops = len(xb) * len(grid)
    for name, value, least in (("importance_images", importance_images, 1), ("n_masks", n_masks, 2)):
        check_count(name, value, least)
    check_count("batch_size", batch_size, 1)
    check_count("seed", seed, 0)
    if not is_int(n_concepts) or not 1 <= n_concepts <= n_crops:
        raise ParameterError(
            f"n_concepts must be in 1..{n_crops} (the number of crops: images x crops_per_side^2), not "
            f"{n_concepts!r}; give more images or ask for fewer concepts"
        )
    if target is not None and not is_int(target):
        raise TargetError(f"target is one class index (an integer), not {target!r}")
    ints = (n_concepts, crops_per_side, importance_images, n_masks, batch_size, seed)
    options = (*map(int, ints), None if target is None else int(target), float(crop_fraction))
    path = _cache_path(model, xb, layer, options, cache) if cache else None
    if path is not None and path.exists():
        return _load(path, model)

    from ..data import spread_indices

    chosen = spread_indices(len(xb), importance_images)
    k = int(n_concepts)
    runs = len(xb) if target is None else len(chosen)
    rows = n_masks * (k + 2)
    total = -(-runs // batch_size) + Passes.crop_batches(len(xb), len(grid), batch_size)
    tick = Progress(progress, total + len(chosen) * -(-rows // batch_size))
    try:
        with using(model) as m:
            passes = Passes(m, layer, batch_size, tick)
            logits, acts = passes.images(xb if target is None else xb[chosen], chosen if target is None else None)
            cls = _target(logits, target)
            a = passes.crops(xb, grid)
            u, bank, error = _factorize(a, k, seed)
            coefficients = [in_basis(_positions(act[None]), bank) for act in acts]
            importance = passes.importance(xb[chosen], acts, coefficients, bank, cls, sobol_masks(k, n_masks, seed))
    finally:
        tick.close()
    order = np.argsort(-importance, kind="stable")
    boxes = np.array([(i, *box) for i in range(len(xb)) for box in grid], dtype=np.int64)
    result = ConceptSet(layer, cls, bank[order], importance[order], u[:, order], boxes, error, len(xb), _model=model)
    if path is not None:
        _save(path, result)
    return result


def reconstruction_errors(
    model: nn.Module,
    layer: str,
    images: torch.Tensor,
    ks: Sequence[int] = (1, 2, 4, 8, 16),
    *,
    crop_fraction: float = 0.5,
    crops_per_side: int = 3,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[int, float]:
    """{k: ||A - U W||_F / ||A||_F} for NMFs of k concepts of the crops' activations A, one crop pass
    for all: what choosing ``n_concepts`` weighs (the error falls as k grows).

    Raises:
        as :func:`extract`; ParameterError: a k outside 1..the number of crops.
    """
    xb, _ = as_batch(model, images)
    get_module(model, layer)
    grid = crop_grid(xb.shape[-2:], crop_fraction, crops_per_side)
    bad = [k for k in ks if not is_int(k) or not 1 <= k <= len(xb) * len(grid)]
    if bad or not ks:
        raise ParameterError(f"each k must be in 1..{len(xb) * len(grid)} (the number of crops), not {list(ks)}")
    with using(model) as m:
        a = Passes(m, layer, batch_size, Progress(None, 0)).crops(xb, grid)
    return {int(k): _factorize(a, int(k), seed)[2] for k in ks}


def in_basis(positions: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Coefficients (P, k) of non-negative activations (P, C) in the concept basis ``bank`` (k, C),
    held fixed: NMF's transform (non-negative least squares by coordinate descent), as CRAFT's."""
    from sklearn.decomposition import non_negative_factorization

    u, _, _ = non_negative_factorization(
        positions.astype(np.float64),
        H=bank.astype(np.float64),
        n_components=len(bank),
        update_H=False,
        max_iter=_MAX_ITER,
    )
    return np.asarray(u)


def _positions(act: torch.Tensor) -> np.ndarray:
    """Maps N x C x h x w as rows of positions (N * h * w, C), clipped at 0."""
    return act.clamp(min=0).permute(0, 2, 3, 1).reshape(-1, act.shape[1]).double().cpu().numpy()


def _factorize(a: torch.Tensor, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """NMF of the crops' activations A (n x C): U (n x k), W (k x C), ||A - U W||_F / ||A||_F."""
    try:
        from sklearn.decomposition import NMF
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:
        raise MethodError("CRAFT factorises with scikit-learn's NMF: pip install scikit-learn") from None
    x = a.double().cpu().numpy()
    norm = float(np.linalg.norm(x))
    if norm == 0:
        raise LayerError("the layer's activations are zero on every crop (after clipping at 0): pick another layer")
    # nndsvda (scikit-learn's default) where it applies; a seeded random start beyond min(n, C)
    init = "nndsvda" if k <= min(x.shape) else "random"
    nmf = NMF(n_components=k, init=init, random_state=seed, max_iter=_MAX_ITER)
    with warnings.catch_warnings():
        # An NMF that stops short of scikit-learn's tolerance is still a factorisation; its error is reported.
        warnings.simplefilter("ignore", ConvergenceWarning)
        u = nmf.fit_transform(x)
    w = np.asarray(nmf.components_)
    return u.astype(np.float32), w.astype(np.float32), float(np.linalg.norm(x - u @ w) / norm)


def _target(logits: torch.Tensor, target: int | None) -> int:
    """The class explained: ``target``, checked, or the most common prediction (the lowest on a tie)."""
    classes = logits.shape[1]
    if target is None:
        return int(np.bincount(logits.argmax(1).cpu().numpy(), minlength=classes).argmax())
    if not is_int(target) or not 0 <= target < classes:
        raise TargetError(f"target must be a class of the model, 0 to {classes - 1}; not {target!r}")
    return int(target)


# ---------------------------------------------------------------------------------------------
# The on-disk cache


def _cache_path(model: nn.Module, xb: torch.Tensor, layer: str, options: tuple, cache: bool | str | Path) -> Path:
    """A file named by the hash of everything the result depends on (the weights by content)."""
    from ..data import cache_dir

    h = hashlib.sha1(f"{_CACHE_VERSION}|{type(model).__name__}|{layer}|{options}".encode())
    for key, t in model.state_dict().items():
        h.update(key.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(str(tuple(xb.shape)).encode())
    h.update(xb.detach().cpu().contiguous().numpy().tobytes())
    folder = Path(cache_dir()) / "craft" if isinstance(cache, bool) else Path(cache)
    return folder / f"{h.hexdigest()}.npz"


_ARRAYS = ("bank", "importance", "coefficients", "crop_boxes")


def _save(path: Path, result: ConceptSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
    arrays: dict[str, Any] = {f: np.asarray(getattr(result, f)) for f in _ARRAYS}
    arrays.update(
        layer=np.array(result.layer),
        target=np.array(result.target),
        n_images=np.array(result.n_images),
        error=np.array(result.reconstruction_error),
    )
    np.savez(tmp, **arrays)
    tmp.replace(path)  # whole or not at all: a reader never sees half a file


def _load(path: Path, model: nn.Module) -> ConceptSet:
    with np.load(path) as z:
        arrays = {f: z[f] for f in _ARRAYS}
        return ConceptSet(
            layer=str(z["layer"]),
            target=int(z["target"]),
            reconstruction_error=float(z["error"]),
            n_images=int(z["n_images"]),
            _model=model,
            **arrays,
        )
