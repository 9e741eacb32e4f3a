"""python -m interp visualize: optimised images for channels of a layer, written as PNGs, with a JSON
summary that sets each one's activation beside the best held-out image's."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from .cli_options import options_of
from .errors import ParameterError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's options (the device option is the command line's shared one)."""
    p.add_argument("model", help="registry name (see: python -m interp models)")
    p.add_argument("--layer", required=True, help="dotted layer name (see: python -m interp summary MODEL)")
    p.add_argument("--channels", default="0-7", help="indices and ranges, e.g. 0-31 or 0,3,8-11 (default 0-7)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=128)
    p.add_argument("--size", type=int, help="image side in pixels (default: the model's input size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--objective",
        choices=("channel", "neuron"),
        default="channel",
        help="maximise each channel's mean, or its centre unit",
    )
    p.add_argument(
        "--starts",
        type=int,
        default=1,
        help="starting images per channel, the best kept after an eighth of the steps (default 1: "
        "grey; more add dark to light colours, for channels that want a bright or dark image)",
    )
    p.add_argument("--held-out", type=int, default=1000, help="held-out images to rank (default 1000)")
    p.add_argument("--data-dir")


def command(args: argparse.Namespace) -> None:
    """python -m interp visualize, after parsing."""
    options = options_of(args, "steps size seed objective starts held_out device data_dir")
    summary = visualize(args.model, args.layer, parse_channels(args.channels), args.out, **options)
    n = len(summary["channels"])
    beats = sum(r["beats"] for r in summary["channels"])
    print(
        f"{args.out}: {n} images, {summary['seconds']} s; the optimised image beats the best of "
        f"{summary['held_out_images']} held-out images for {beats} of {n} channels "
        f"({100 * summary['beats_best_held_out']:.1f}%)"
    )


def parse_channels(text: str) -> list[int]:
    """'0-31' or '0,3,8-11' -> channel indices, in order, without repeats.

    Raises:
        ParameterError: not of that form.
    """
    found: list[int] = []
    try:
        for part in text.replace(" ", "").split(","):
            lo, _, hi = part.partition("-")
            found.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ParameterError(f"channels are indices and ranges such as '0-31' or '0,3,8-11', not {text!r}") from None
    if not found:
        raise ParameterError(f"no channels in {text!r}")
    return list(dict.fromkeys(found))


def visualize(
    name: str,
    layer: str,
    channels: Sequence[int],
    out: str | os.PathLike,
    *,
    steps: int = 128,
    size: int | None = None,
    seed: int = 0,
    objective: str = "channel",
    starts: int = 1,
    held_out: int = 1000,
    device: str | None = None,
    data_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Optimise one image per channel of a registry model's layer, rank held-out images, write
    ``out``/channel_<c>.png and ``out``/summary.json; return the summary.

    Both activations are the channel's spatial maximum (what dataset examples rank by).
    ``objective``: "channel" (the channel's mean, Lucid's default) or "neuron" (its centre unit).
    ``starts``: starting images per channel (see feature_visualization).

    Raises:
        ParameterError: an unknown objective. LayerError, ModelError: see the methods.
    """
    from .data import held_out_batch
    from .hardware import resolve_device
    from .methods.introspect import channel_maxima, dataset_examples, feature_visualization
    from .models import get_spec, load_model

    if objective not in ("channel", "neuron"):
        raise ParameterError(f"objective is 'channel' or 'neuron', not {objective!r}")
    spec = get_spec(name)
    model = load_model(name, device=resolve_device(device))
    side = size or spec.input_hw[0]
    start = time.perf_counter()
    vis = feature_visualization(
        model,
        layer,
        channels,
        steps=steps,
        size=side,
        seed=seed,
        mean=spec.mean,
        std=spec.std,
        position="centre" if objective == "neuron" else None,
        starts=starts,
        progress=True,
    )
    seconds = time.perf_counter() - start
    reached = channel_maxima(model, vis.images, layer, channels, spec.mean, spec.std)
    batch = held_out_batch(spec, held_out, data_dir)
    examples = dataset_examples(model, batch.x, [layer], k=1, cache=True, progress=True)[layer]
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, c in enumerate(vis.channels):
        path = folder / f"channel_{c:04d}.png"
        Image.fromarray((vis.images[i].transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(path)
        best = float(examples.top_values[c, 0])
        rows.append(
            {
                "channel": c,
                "image": path.name,
                "optimised": float(reached[i]),
                "best_held_out": best,
                "best_held_out_image": int(examples.top[c, 0]),
                "beats": bool(reached[i] > best),
                "objective_first": float(vis.objective[i, 0]),
                "objective_last": float(vis.objective[i, -1]),
            }
        )
    summary = {
        "model": name,
        "layer": layer,
        "objective": objective,
        "steps": int(vis.objective.shape[1]),
        "size": side,
        "seed": seed,
        "starts": starts,
        "seconds": round(seconds, 2),
        "held_out_images": len(batch),
        "held_out_note": batch.note,
        "beats_best_held_out": float(np.mean([r["beats"] for r in rows])),
        "channels": rows,
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
