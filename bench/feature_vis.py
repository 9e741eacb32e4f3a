"""Feature-visualisation rows: optimising many channels in one batch against one channel at a
time, and the dataset-examples index against one plain forward pass over the same images.

Batching can only save the part of a step that does not grow with the batch (Python, the
parameterisation, kernel launches, a device left idle at batch 1). How much that is on this
machine is measured too: the same model's bare forward+backward pass to the layer per image at
batch 1 against batch ``channels``. On a CPU whose cores a batch of one already keeps busy, that
ratio, not a fixed number, bounds what any implementation's batching gives.
"""

from __future__ import annotations

from typing import Any

import torch

from .timing import Impl, measure, median_ms_per_image, ratio

BATCH_SPEEDUP_TARGET = 8.0  # one channel at a time over all channels in one batch, per channel
INDEX_RATIO_TARGET = 1.2  # the dataset-examples index over one forward pass, per image


def batching_row(
    name: str,
    layer: str,
    channels: int,
    single: int,
    steps: int,
    size: int,
    warmup: int,
    repeats: int,
    budget_s: float,
    device: torch.device,
) -> dict[str, Any]:
    """Per channel: ``channels`` optimised together against ``single`` optimised one by one, and
    the bare pass's own batching gain at the same batch sizes."""
    from interp.methods.introspect import feature_visualization
    from interp.models import get_spec, load_model

    from .cases import bare_forward_backward_to_layer

    spec, model = get_spec(name), load_model(name, device=device)
    opts: dict[str, Any] = dict(steps=steps, size=size, seed=0, mean=spec.mean, std=spec.std)
    together = Impl("ours", lambda: feature_visualization(model, layer, range(channels), **opts), model)
    alone = Impl(
        "one at a time", lambda: [feature_visualization(model, layer, [c], **opts) for c in range(single)], model
    )
    x = torch.randn(channels, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    t = torch.zeros(channels, dtype=torch.int64, device=device)
    bare_batch = Impl("bare batch", bare_forward_backward_to_layer(model, layer, x, t), model)
    bare_one = Impl("bare one", bare_forward_backward_to_layer(model, layer, x[:1], t[:1]), model)
    measure([together, alone, bare_batch, bare_one], warmup, repeats, budget_s, 1, device=device)
    batched_ms, alone_ms = median_ms_per_image(together, channels), median_ms_per_image(alone, single)
    bare_gain = ratio(median_ms_per_image(bare_one, 1), median_ms_per_image(bare_batch, channels))
    return {
        "kind": "feature_vis",
        "model": name,
        "method": "batched_channels",
        "batch": channels,
        "layer": layer,
        "ours_ms": batched_ms,
        "floor_ms": None,
        "ratio_to_floor": None,
        "peers": [],
        "one_at_a_time_ms": alone_ms,
        "speedup": ratio(alone_ms, batched_ms),
        "target_speedup": BATCH_SPEEDUP_TARGET,
        "bare_pass_speedup": bare_gain,
        "steps": steps,
        "size": size,
        "repeats": len(together.seconds),
        "note": f"feature_visualization: ms per channel for {steps} steps at {size} px, {channels} channels in "
        f"one batch; one at a time: {single} channels, one call each; bare_pass_speedup: the bare "
        "forward+backward to the layer per image, batch 1 over batch "
        f"{channels}, what batching can give on this device",
    }


def index_row(
    name: str, images: int, warmup: int, repeats: int, device: torch.device, batch_size: int = 64
) -> dict[str, Any]:
    """dataset_examples for every conv layer at once against a forward pass without autograd,
    both over the same held-out images in batches of ``batch_size``, each timed ``repeats`` times
    (no time budget: the ratio sought is within a few percent of 1)."""
    from interp.data import held_out_batch
    from interp.methods import conv_layers
    from interp.methods.introspect import dataset_examples
    from interp.models import get_spec, load_model

    from .cases import bare_forward

    spec, model = get_spec(name), load_model(name, device=device)
    held = held_out_batch(spec, images)
    x = held.x.to(device)
    layers = conv_layers(model)
    index = Impl("ours", lambda: dataset_examples(model, x, layers, k=16, batch_size=batch_size), model)
    forwards = [bare_forward(model, x[s : s + batch_size]) for s in range(0, len(x), batch_size)]
    floor = Impl("floor", lambda: [f() for f in forwards], model)
    measure([index, floor], warmup, repeats, device=device)
    ours_ms, floor_ms = median_ms_per_image(index, len(x)), median_ms_per_image(floor, len(x))
    return {
        "kind": "feature_vis",
        "model": name,
        "method": "dataset_index",
        "batch": batch_size,
        "layer": ",".join(layers),
        "ours_ms": ours_ms,
        "floor_ms": floor_ms,
        "ratio_to_floor": ratio(ours_ms, floor_ms),
        "target_ratio_to_floor": INDEX_RATIO_TARGET,
        "peers": [],
        "images": len(x),
        "repeats": len(index.seconds),
        "note": f"dataset_examples over {len(x)} held-out images, all {len(layers)} conv layers, top and bottom "
        f"16, no cache; floor: a forward pass without autograd in the same batches"
        + (f" ({held.note})" if held.note else ""),
    }
