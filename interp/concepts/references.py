"""Relevance maximisation (Achtibat et al., Nature Machine Intelligence 2023): a channel's reference
images are those where it carried the most relevance for a class, not those where it fired most.

A channel can fire strongly on images where the class's logit does not use it (a texture detector on
the background); relevance maximisation shows what the channel contributes to *this* class. Each
image's relevance arriving at the layer comes from one LRP pass (:func:`interp.concepts.crp`'s
unmasked pass, batched); the ranking and the receptive-field crops are those of activation
maximisation (:func:`interp.methods.introspect.dataset_examples`), so that the two sit side by side:
``top`` holds the images where the channel's relevance peaks highest, ``bottom`` those where it is
most negative (the channel spoke against the class), or None where no relevance was negative.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import ParameterError
from ..methods.attribution.lrp import LRPOptions
from ..methods.core import as_batch, get_module, logits_of, using
from ..methods.introspect.examples import LayerExamples, _cache_path, _load, _Running, _save
from ..methods.introspect.receptive import receptive_field
from .crp import _conditional


def relevance_examples(
    model: nn.Module,
    images: torch.Tensor,
    layer: str,
    target: int,
    k: int = 9,
    *,
    composite: str = "epsilon_plus_flat",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 16,
    cache: bool | str | Path = False,
    progress: Callable[[int, int], None] | bool | None = None,
) -> LayerExamples:
    """Every channel's top-k (and bottom-k) images of ``images`` by its relevance for class ``target``
    (the spatial maximum (minimum) of the relevance arriving at ``layer``), with the receptive field
    of the unit where it is reached.

    Args:
        images: N x 3 x H x W, preprocessed for the model. target: the class whose logit is explained
            on every image. k: images per channel (at most N).
        composite: LRP's composite. mean: the model's normalisation mean (the box rule's bounds).
        std: its standard deviation.
        cache: True (under interp.data.cache_dir()) or a folder: keep the result on disk, keyed by the
            model's weights, the images, the layer, the class, the composite and k.
        progress: a callback(batch, batches), or True for a tqdm bar.

    Raises:
        LayerError: unknown layer, or one without channels. ParameterError: a class out of range.
        MethodError: as LRP's.
    """
    get_module(model, layer)
    options = LRPOptions(composite=composite, mean=mean, std=std)
    k = max(1, min(int(k), len(images)))
    hw = (images.shape[-2], images.shape[-1])
    field = receptive_field(model, layer, hw)
    key = [f"relevance|{layer}|{int(target)}|{composite}|{mean}|{std}"]
    path = _cache_path(model, images, key, k, cache) if cache else None
    if path is not None and path.exists():
        return _load(path, [layer], {layer: field})[layer]
    running = _Running(layer, k)
    batches = range(0, len(images), batch_size)
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(images), desc="relevance examples", leave=False)
    try:
        with using(model) as m, torch.inference_mode(False):
            for done, start in enumerate(batches, 1):
                xb = as_batch(m, images[start : start + batch_size])[0]
                if done == 1:
                    with torch.no_grad():
                        classes = logits_of(m, xb[:1]).shape[1]
                    if not 0 <= int(target) < classes:
                        raise ParameterError(f"class {target!r} is out of range: the model has {classes} classes")
                classes_of = torch.full((len(xb),), int(target), dtype=torch.int64)
                _, arriving = _conditional(m, xb, layer, classes_of, None, options)
                running(get_module(m, layer), (), arriving)  # ranked as activations are, by each channel's peak
                if bar is not None:
                    bar.update(len(xb))
                elif callable(progress):
                    progress(done, len(batches))
    finally:
        if bar is not None:
            bar.close()
    found = running.examples(field, hw)
    if path is not None:
        _save(path, {layer: found})
    return found
