"""python -m bench.report_card: a whole report card's throughput on this machine (images/s).

For each model, ``interp.report_card`` over held-out images spread over its classes, with a fixed
set of five methods (two gradients, Grad-CAM, LRP and integrated gradients in their quick options)
and every metric but the localisation ones (the held-out images have no masks): the wall time of the
whole card (maps, every metric, the summary), fresh in a temporary folder, once per model, after a
warm-up card of two images that pays the first-call costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

import interp
from interp.whole_dataset.metrics import METRIC_TABLE

METHODS = ("saliency", "input_x_gradient", "grad_cam", "lrp", "integrated_gradients")
METRICS = tuple(name for name, m in METRIC_TABLE.items() if not m.needs_mask)


def card_seconds(model: str, images: int) -> float:
    """Seconds for one report card of ``images`` held-out images, in a fresh folder."""
    with tempfile.TemporaryDirectory() as warm:
        interp.report_card(model, METHODS, METRICS, split="test", limit=2, out=warm, progress=False)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        interp.report_card(model, METHODS, METRICS, split="test", limit=images, out=out, progress=False)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_card", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["nin_cifar10", "alexnet_pacs_domain", "alexnet_pacs_class"])
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args(argv)
    print(f"torch threads: {torch.get_num_threads()}; methods: {', '.join(METHODS)}; {len(METRICS)} metrics")
    print("\n| model | images | report card (s) | images/s |\n|---|---|---|---|")
    for name in args.models:
        seconds = card_seconds(name, args.images)
        print(f"| {name} | {args.images} | {seconds:.0f} | {args.images / seconds:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
