"""python -m bench.concepts: what the concept methods cost on two CPU cores.

- CRP: the conditional maps of the top 8 channels against one plain LRP pass of the same image
  (the conditions run as one batch, so the ratio says what batching them buys).
- CRAFT (``interp.concepts.extract``) on 200 validation images of one class at the last conv layer
  of the course's AlexNet pair: its crop pass, factorisation and importance pass, in all.
- TCAV (``interp.concepts.tcav``) of the four PACS styles for one class, 8 random sets.
- Relevance maximisation (``interp.concepts.relevance_examples``) over 200 held-out images.

Each figure is the median of ``--repeats`` runs (CRP, LRP) or one run (the rest: minutes each).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import torch

import interp
from interp import concepts
from interp.data import held_out_batch, pacs_split, preprocess
from interp.methods import conv_layers


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: first-call imports and allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _once(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def crp_cost(name: str, repeats: int) -> dict[str, Any]:
    """Seconds of one LRP pass and of CRP's top 8 channels on zebra.jpg, and their ratio."""
    spec = interp.get_spec(name)
    model = interp.load_model(name, device="cpu")
    x = preprocess(interp.data.zebra_path(), spec)
    layer = conv_layers(model)[-1]
    lrp = _median_seconds(lambda: interp.explain(model, x, "lrp"), repeats)
    crp = _median_seconds(lambda: concepts.crp(model, x, layer, top=8, mean=spec.mean, std=spec.std), repeats)
    return {"model": name, "layer": layer, "lrp_s": lrp, "crp_top8_s": crp, "lrp_passes": crp / lrp}


def class_images(name: str, class_name: str, n: int) -> torch.Tensor:
    """``n`` PACS validation images of one class (all four domains), preprocessed for the model."""
    spec = interp.get_spec(name)
    val = pacs_split("val", "class")
    paths = [p for p, label in zip(val.paths, val.labels) if val.class_names[label] == class_name][:n]
    return torch.cat([preprocess(p, spec) for p in paths])


def craft_cost(name: str, class_name: str, n: int) -> dict[str, Any]:
    spec = interp.get_spec(name)
    model = interp.load_model(name, device="cpu")
    x = class_images(name, class_name, n)
    layer = conv_layers(model)[-1]
    target = spec.class_names.index(class_name) if class_name in spec.class_names else None
    seconds, found = _once(lambda: concepts.extract(model, layer, x, 10, target=target))
    return {
        "model": name,
        "layer": layer,
        "images": len(x),
        "craft_s": seconds,
        "reconstruction_error": found.reconstruction_error,
        "top_importance": float(found.importance[0]),
    }


def tcav_cost(name: str, class_name: str, n_random: int) -> dict[str, Any]:
    spec = interp.get_spec(name)
    model = interp.load_model(name, device="cpu")
    inputs = class_images(name, class_name, 50)
    target = spec.class_names.index(class_name) if class_name in spec.class_names else 0
    sets = concepts.pacs_style_sets(spec, 20)
    pool = concepts.random_images(spec, 100, seed=1)
    layer = conv_layers(model)[-1]
    seconds, found = _once(
        lambda: concepts.tcav(model, layer, sets, target, inputs, n_random=n_random, random_pool=pool)
    )
    return {"model": name, "layer": layer, "inputs": len(inputs), "tcav_s": seconds, "scores": found.table()}


def relmax_cost(name: str, n: int) -> dict[str, Any]:
    spec = interp.get_spec(name)
    model = interp.load_model(name, device="cpu")
    x = held_out_batch(spec, n).x
    layer = conv_layers(model)[-1]
    seconds, _ = _once(lambda: concepts.relevance_examples(model, x, layer, 0, mean=spec.mean, std=spec.std))
    return {"model": name, "layer": layer, "images": len(x), "relmax_s": seconds, "per_image_ms": 1000 * seconds / n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.concepts", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["alexnet_pacs_domain", "alexnet_pacs_class"])
    parser.add_argument("--crp-models", nargs="+", default=["nin_cifar10", "alexnet_pacs_class"])
    parser.add_argument("--class-name", default="dog", help="the PACS class CRAFT and TCAV explain")
    parser.add_argument("--images", type=int, default=200, help="CRAFT's and relevance maximisation's images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=["crp", "craft", "tcav", "relmax"])
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch threads: {torch.get_num_threads()}")
    if "crp" not in args.skip:
        print("\n| model | layer | one LRP pass (s) | CRP, top 8 channels (s) | in LRP passes |\n|---|---|---|---|---|")
        for name in args.crp_models:
            r = crp_cost(name, args.repeats)
            print(f"| {name} | {r['layer']} | {r['lrp_s']:.3f} | {r['crp_top8_s']:.3f} | {r['lrp_passes']:.2f} |")
    if "relmax" not in args.skip:
        print("\n| model | layer | images | relevance maximisation (s) | per image (ms) |\n|---|---|---|---|---|")
        for name in args.crp_models:
            r = relmax_cost(name, args.images)
            print(f"| {name} | {r['layer']} | {r['images']} | {r['relmax_s']:.1f} | {r['per_image_ms']:.0f} |")
    if "craft" not in args.skip:
        print("\n| model | layer | images | CRAFT, 10 concepts (s) | reconstruction error |\n|---|---|---|---|---|")
        for name in args.models:
            r = craft_cost(name, args.class_name, args.images)
            print(f"| {name} | {r['layer']} | {r['images']} | {r['craft_s']:.0f} | {r['reconstruction_error']:.3f} |")
    if "tcav" not in args.skip:
        print("\n| model | layer | inputs | TCAV, 4 styles x 8 random sets (s) |\n|---|---|---|---|")
        for name in args.models:
            r = tcav_cost(name, args.class_name, 8)
            print(f"| {name} | {r['layer']} | {r['inputs']} | {r['tcav_s']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
