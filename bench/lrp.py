"""python -m bench.lrp: how far each LRP composite departs from conservation on the shipped models,
and the picture of the composites in docs/methods.md.

Conservation: LRP starts with the explained logit as the output's relevance; the ε rule without biases
hands all of it down to the pixels, so the input relevance sums to the logit. Biases, the flat and box
rules at the input, z⁺ and α2β1 all break that on purpose. The table reports, per shipped model and
composite, the mean over held-out images of |sum of the input relevance − logit| / |logit|.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import interp
from interp.data import held_out_batch
from interp.methods.attribution import lrp
from interp.methods.core import Targets
from interp.models import has_weights

COMPOSITE_METHODS = {
    "epsilon_plus_flat": "lrp",
    "epsilon_gamma_box": "lrp_epsilon_gamma_box",
    "epsilon_alpha2_beta1": "lrp_alpha2_beta1",
    "epsilon": "lrp_epsilon",
}
FIGURE_MODEL = "alexnet_pacs_class"
# What LRP's rows on the sanity and faithfulness pages are compared with.
TRUST_METHODS = (*COMPOSITE_METHODS.values(), "saliency", "input_x_gradient", "integrated_gradients", "grad_cam")


def conservation(name: str, n_images: int) -> dict[str, float]:
    """Mean |sum R − logit| / |logit| of each composite over ``n_images`` held-out images of ``name``."""
    spec = interp.get_spec(name)
    model = interp.load_model(name, device="cpu")
    x = held_out_batch(spec, n_images).x
    with torch.no_grad():
        logits = model(x).max(1).values.double()
    out = {}
    for composite in lrp.COMPOSITES:
        options = lrp.LRPOptions(composite=composite, mean=spec.mean, std=spec.std)
        rel = lrp.relevance(model, x.clone(), Targets(None), options).double().flatten(1).sum(1)
        out[composite] = float(((rel - logits).abs() / logits.abs()).mean())
    return out


def trust(name: str, n_images: int) -> list[dict[str, float | str]]:
    """The sanity and faithfulness pages' numbers for LRP and gradient methods, as means over
    ``n_images`` held-out images of ``name``: the SSIM of each map with the original once every
    layer is randomised (cascading; near 0: the map depends on the weights, as it should), and the
    deletion and insertion AUCs (lower and higher are better) against random orders."""
    from interp import methods

    spec = interp.get_spec(name)
    model = interp.load_model(name, device="cpu")
    batch = held_out_batch(spec, n_images)
    options: dict[str, dict[str, Any]] = {
        m: {"mean": spec.mean, "std": spec.std} for m in TRUST_METHODS if methods.get_method(m).needs_stats
    }
    options["integrated_gradients"] = {"steps": 16}
    final_ssim: dict[str, list[float]] = {m: [] for m in TRUST_METHODS}
    for x in batch.x:
        run = methods.trust.cascading_randomization(model, x[None], TRUST_METHODS, options=options)
        for m in TRUST_METHODS:
            final_ssim[m].append(float(run.ssim[m][-1]))
    aucs = methods.trust.mean_aucs(model, [x[None] for x in batch.x], TRUST_METHODS, options=options)
    return [
        {
            "method": row["method"],
            "ssim_randomized": float(np.mean(final_ssim[row["method"]])),
            **{k: row[k] for k in ("deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc")},
        }
        for row in aucs
    ]


def figure(path: Path) -> None:
    """zebra.jpg under the course's PACS class model, one panel per composite."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from interp.data import load_image, resize_center_crop
    from interp.data.samples import zebra_path

    spec = interp.get_spec(FIGURE_MODEL)
    model = interp.load_model(FIGURE_MODEL, device="cpu")
    image = load_image(zebra_path())
    x = interp.preprocess(image, spec)
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.8))
    picture = np.asarray(resize_center_crop(image, spec.input_size))
    axes[0].imshow(picture)
    for ax, (composite, method) in zip(axes[1:], COMPOSITE_METHODS.items()):
        e = interp.explain(model, x, method, mean=spec.mean, std=spec.std)
        heat = e.spatial("sum")
        top = float(np.percentile(np.abs(heat), 99.5)) or 1.0
        ax.imshow(picture.mean(2), cmap="gray", alpha=0.35)
        ax.imshow(heat, cmap="bwr", vmin=-top, vmax=top, alpha=0.8)
        ax.set_title(f"{composite}\n{spec.class_names[e.target]} ({e.probability:.0%})", fontsize=10)
    axes[0].set_title(f"zebra.jpg, {FIGURE_MODEL}", fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=72)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lrp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16, help="held-out images per model")
    parser.add_argument("--figure", help="write the composites' picture here (PNG)")
    parser.add_argument("--figure-only", action="store_true", help="skip the conservation table")
    parser.add_argument("--trust", help="a model whose sanity and faithfulness numbers to print (LRP and gradients)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    # the models with weights here, without a download (resnet18_imagenet's come from torchvision)
    names = [
        n for n in interp.list_models() if has_weights(interp.get_spec(n)) and interp.get_spec(n).checkpoint is not None
    ]
    if args.figure_only:
        names = []
    print("| model | " + " | ".join(lrp.COMPOSITES) + " | seconds |")
    print("|---|" + "---|" * (len(lrp.COMPOSITES) + 1))
    for name in names:
        start = time.perf_counter()
        try:
            row = conservation(name, args.images)
        except interp.InterpError as e:
            print(f"| `{name}` | {e} |")
            continue
        cells = " | ".join(f"{row[c]:.3f}" for c in lrp.COMPOSITES)
        print(f"| `{name}` | {cells} | {time.perf_counter() - start:.0f} |")
    if args.trust:
        print(f"\n{args.trust}, {args.images} held-out images")
        print("| method | SSIM after randomising every layer | deletion AUC (random) | insertion AUC (random) |")
        print("|---|---|---|---|")
        for r in trust(args.trust, args.images):
            print(
                f"| {r['method']} | {r['ssim_randomized']:.2f} | {r['deletion_auc']:.3f} "
                f"({r['random_deletion_auc']:.3f}) | {r['insertion_auc']:.3f} ({r['random_insertion_auc']:.3f}) |"
            )
    if args.figure:
        figure(Path(args.figure))
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
