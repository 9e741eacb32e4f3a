"""TCAV of the PACS styles for every output of a PACS model: does each class's (or domain's) logit
grow along art painting, cartoon, photo or sketch, more often than along random directions?

Run on a domain model and a class model of one architecture with the same settings, the two
tables compare: the sets are the same images for both (chosen from the validation split by
position and seed, never by model), and so are the seeds of the CAVs' classifiers. One set of
CAVs serves every output of a model (:func:`~interp.concepts.tcav_classes`).

What is chosen, from the validation split of PACS under the data root (else the shipped sample):

- concepts: :func:`~interp.concepts.pacs_style_sets`, the images of each domain spread over its classes;
- random sets: :func:`~interp.concepts.random_images` (seeded) less every concept image, cut into
  ``n_random`` disjoint sets as large as a concept set. Where the split has too few such images
  they are drawn with repeats, and where it has fewer than one set's worth (the shipped sample with
  sets of 14) from all of it, concept images included. Random PACS images mix the four styles, so a
  style's CAV tells that style from the mix;
- inputs of output k: images labelled k (a class, or a domain), spread over them, less the concept
  images where at least two others are left.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..data import ImageList, held_out_images, load_image, preprocess, spread_indices
from ..errors import LayerError, ParameterError
from ..methods.layers import conv_layers
from ..models.registry import ModelSpec, get_spec
from .cavs import Progress
from .sets import pacs_style_sets, random_images
from .tcav import MIN_SET, tcav_classes

if TYPE_CHECKING:
    import pandas as pd

PACS_TASKS = ("pacs_domain", "pacs_class")


def style_tcav(
    model: nn.Module,
    spec: ModelSpec | str,
    layer: str | None = None,
    *,
    n_concepts_images: int = 20,
    inputs_per_output: int = 20,
    n_random: int = 8,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    cache: bool = True,
    progress: Progress | bool | None = None,
) -> "pd.DataFrame":
    """TCAV scores of the four PACS styles for each output of a PACS model: :func:`~interp.concepts.tcav`
    of each output on its own images, the CAVs shared (significance as there: Bonferroni over the
    four styles of an output).

    Args:
        spec: the model's ModelSpec or registry name (a pacs_domain or pacs_class task).
        layer: where the CAVs live; default the last conv layer.
        n_concepts_images: images per style (and per random set). inputs_per_output: images of
            each output whose logits are scored. n_random: random sets (>= 3). seed: the random
            sets' draw and the classifiers' training.
        cache: passed to tcav (True: kept on disk, keyed by the weights and every image).
        progress: a callback(done, total) over the CAVs trained then the batches of inputs scored
            (none where every output's result is in the cache), or True for a tqdm bar.

    Returns:
        One row per (output, style): output, output_name, concept, score, std, p_value,
        significant, cav_accuracy; ``attrs``: layer, inputs (images per output) and note (set
        where the shipped sample stood in for the full split).

    Raises:
        ParameterError: not a PACS model, or a count out of range. LayerError: no conv layer.
    """
    import pandas as pd

    spec = get_spec(spec) if isinstance(spec, str) else spec
    if spec.task not in PACS_TASKS:
        raise ParameterError(
            f"style_tcav explains a PACS model (task {' or '.join(PACS_TASKS)}); {spec.name} is a {spec.task} "
            "model: for other concepts call interp.concepts.tcav with sets of your own"
        )
    for what, n, least in (("inputs_per_output", inputs_per_output, 1), ("n_random", n_random, 3)):
        if isinstance(n, bool) or not isinstance(n, int) or n < least:
            raise ParameterError(f"{what} must be a whole number >= {least}, not {n!r}")
    if layer is None:
        convs = conv_layers(model)
        if not convs:
            raise LayerError("the model has no conv layer: give the layer for the CAVs")
        layer = convs[-1]
    concepts, randoms = style_sets(spec, n_concepts_images, n_random, seed, data_dir)
    taken = {_digest(x) for images in concepts.values() for x in images}
    size = max(len(images) for images in concepts.values())
    split, note = held_out_images(spec, data_dir)
    inputs = {k: _inputs(spec, split, k, inputs_per_output, size, taken) for k in range(spec.num_classes)}
    found = tcav_classes(model, layer, concepts, inputs, random_sets=randoms, seed=seed, cache=cache, progress=progress)
    columns = ["output", "output_name", "concept", "score", "std", "p_value", "significant", "cav_accuracy"]
    tables = [found[k].table().assign(output=k, output_name=name) for k, name in enumerate(spec.class_names)]
    table = pd.concat(tables, ignore_index=True)[columns]
    table.attrs.update(layer=layer, inputs=[len(x) for x in inputs.values()], note=note)
    return table


def style_sets(
    spec: ModelSpec | str,
    n_images: int = 20,
    n_random: int = 8,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """The concept sets (the four styles) and the ``n_random`` random sets :func:`style_tcav` uses.

    Returns:
        ({domain: N x 3 x H x W}, [N x 3 x H x W] * n_random), preprocessed for ``spec``.
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    concepts = pacs_style_sets(spec, n_images, data_dir)
    taken = {_digest(x) for images in concepts.values() for x in images}
    size = max(len(s) for s in concepts.values())
    pool = random_images(spec, n_random * size + len(taken), seed, data_dir)
    free = pool[torch.tensor([_digest(x) not in taken for x in pool])]
    if len(free) < size:  # every held-out image here is a concept's (the shipped sample, large sets)
        free = pool
    g = torch.Generator().manual_seed(int(seed))
    # random_images returns its draw in the split's order (by domain and class): shuffle before cutting
    order = torch.randperm(len(free), generator=g)
    if len(free) >= n_random * size:
        return concepts, [free[order[i * size : (i + 1) * size]] for i in range(n_random)]
    return concepts, [free[torch.randperm(len(free), generator=g)[:size]] for _ in range(n_random)]


def _inputs(spec: ModelSpec, split: ImageList, k: int, n: int, extra: int, taken: set[str]) -> torch.Tensor:
    """Up to n images of the split labelled k, spread over them, less the concept images where at
    least MIN_SET others are left; ``extra`` more candidates are read to make up for those left out
    (a concept set of a domain model's own domain takes at most a set's worth)."""
    of_k = [i for i, y in enumerate(split.labels) if y == k]
    candidates = [of_k[i] for i in spread_indices(len(of_k), n + extra)]
    x = torch.cat([preprocess(load_image(split.paths[i]), spec) for i in candidates])
    free = x[torch.tensor([_digest(image) not in taken for image in x])]
    x = free if len(free) >= MIN_SET else x
    return x[torch.as_tensor(spread_indices(len(x), n))]


def _digest(image: torch.Tensor) -> str:
    """An image's identity by its exact values (sets are compared as preprocessed tensors)."""
    return hashlib.sha1(image.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def read_style_tcav(tables: dict[str, pd.DataFrame], tasks: dict[str, str]) -> str:
    """What the numbers say: per model, its significant (output, style) pairs, and for a domain model
    its domains that score significantly above 0.5 on their own style; then the two models' shares.

    Args:
        tables: :func:`style_tcav`'s tables of two models, by name. tasks: each model's task.
    """
    said = []
    for tag, (name, table) in zip("AB", tables.items()):
        sig, n = table[table["significant"]], table["output"].nunique()
        up = int((sig["score"] > 0.5).sum())
        what, whats = ("domain", "domains") if tasks[name] == "pacs_domain" else ("class", "classes")
        line = (
            f"{tag}, **{name}**: {len(sig)} of its {len(table)} ({what}, style) pairs are significant ({up} with "
            f"a score above 0.5, {len(sig) - up} at or below), in {sig['output'].nunique()} of its {n} {whats}"
        )
        if what == "domain":
            own = sig[(sig["output_name"] == sig["concept"]) & (sig["score"] > 0.5)]
            line += f"; its own style scores significantly above 0.5 for {len(own)} of its {n} {whats}"
        said.append(line + ".")
    share = {name: float(table["significant"].mean()) for name, table in tables.items()}
    a, b = share
    said.append(f"The styles move {a}'s outputs significantly in {share[a]:.0%} of the pairs, {b}'s in {share[b]:.0%}.")
    return " ".join(said)
