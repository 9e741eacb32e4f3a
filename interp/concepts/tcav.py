"""TCAV, testing with concept activation vectors (Kim et al., ICML 2018), through Captum's
``captum.concept``: a linear classifier (Captum's default, scikit-learn's SGDClassifier) separates a
layer's activations on a concept's images from those on random images; the normal of its boundary
is the concept's activation vector (CAV), and the TCAV score of a class is the fraction of the
class's images whose logit grows along it (the sign of the directional derivative).

Significance as Kim et al.: each concept is tested against ``n_random`` random sets (experimental
sets [concept, random_i]); the null distribution is the score of random_0 against each other
random set ([random_0, random_i], i >= 1); a two-sided t-test compares the two. A concept is
significant where its p-value is below 0.05 / the number of concepts tested (Bonferroni).

The computation is Captum's (:mod:`interp.concepts.cavs`: its quirks, and how they are met); here
are the checks, the significance and the cache of results.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import LayerError, ParameterError, TargetError
from ..methods.core import as_batch, forward_hooks, get_module, logits_of, resolve_targets, using
from .cavs import Progress, score_concepts

if TYPE_CHECKING:  # pandas is imported only when a table is asked for
    import pandas as pd

_CACHE_VERSION = "2"
ALPHA = 0.05  # the family-wise significance level, split over the concepts (Bonferroni)
MIN_SET = 2  # images per set: below this Captum's classifier has no held-out image of one set


@dataclass(frozen=True)
class TcavResult:
    """TCAV scores of concepts for one class at one layer, with their significance."""

    layer: str
    target: int  # the explained class
    concepts: tuple[str, ...]
    score: np.ndarray  # (C,) mean TCAV score over the random runs
    std: np.ndarray  # (C,) its standard deviation over the runs
    scores: np.ndarray  # (C, R) the score against each random set
    null_scores: np.ndarray  # (R - 1,) random_0's score against each other random set
    p_values: np.ndarray  # (C,) two-sided t-test of scores against null_scores (uncorrected)
    significant: np.ndarray  # (C,) p < ALPHA / C (Bonferroni over the concepts)
    cav_accuracy: np.ndarray  # (C, R) each CAV's classifier accuracy on its held-out third

    def table(self) -> "pd.DataFrame":
        """One row per concept: concept, score, std, p_value, significant, cav_accuracy (mean)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "concept": list(self.concepts),
                "score": self.score,
                "std": self.std,
                "p_value": self.p_values,
                "significant": self.significant,
                "cav_accuracy": self.cav_accuracy.mean(1),
            }
        )


def tcav(
    model: nn.Module,
    layer: str,
    concepts: Mapping[str, torch.Tensor],
    target: int,
    inputs: torch.Tensor,
    *,
    random_sets: Sequence[torch.Tensor] | None = None,
    n_random: int = 8,
    random_pool: torch.Tensor | None = None,
    batch_size: int = 32,
    seed: int = 0,
    cache: bool | str | Path = False,
    progress: Progress | bool | None = None,
) -> TcavResult:
    """TCAV scores of human-named concepts for class ``target`` at ``layer``, and their significance.

    Args:
        concepts: {name: N x 3 x H x W images of the concept}, preprocessed for the model
            (interp.concepts.pacs_style_sets, zebra_stripes, ... build some).
        target: the class explained. inputs: preprocessed images of that class.
        random_sets: the random sets (at least 3); else ``n_random`` sets drawn (with ``seed``) from
            ``random_pool``, each as large as the largest concept set (interp.concepts.random_images).
        batch_size: images per forward pass. seed: seeds the draw and the classifiers' training.
        cache: True (under interp.data.cache_dir()/"tcav") or a folder: keep the result on disk,
            keyed by the model's weights, the layer, the class, every image, n_random and seed.
        progress: a callback(done, total) over the CAVs trained then the batches scored, or True
            for a tqdm bar.

    Raises:
        ParameterError: no concept, a set of fewer than 2 images, images of another size than the
            inputs, fewer than 3 random sets, a pool too small, batch_size < 1.
        LayerError: no such layer, or one that does not run. TargetError: no such class.
        ImageError: inputs that are not images. MethodError: a CAV's classifier cannot be trained.
    """
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise TargetError(f"TCAV explains one class: target is a class index (an int), not {target!r}")
    found = tcav_classes(
        model,
        layer,
        concepts,
        {int(target): inputs},
        random_sets=random_sets,
        n_random=n_random,
        random_pool=random_pool,
        batch_size=batch_size,
        seed=seed,
        cache=cache,
        progress=progress,
    )
    return found[int(target)]


def tcav_classes(
    model: nn.Module,
    layer: str,
    concepts: Mapping[str, torch.Tensor],
    inputs: Mapping[int, torch.Tensor],
    *,
    random_sets: Sequence[torch.Tensor] | None = None,
    n_random: int = 8,
    random_pool: torch.Tensor | None = None,
    batch_size: int = 32,
    seed: int = 0,
    cache: bool | str | Path = False,
    progress: Progress | bool | None = None,
) -> dict[int, TcavResult]:
    """:func:`tcav` of several classes, each with its own inputs ({class: its images}), with one set
    of CAVs for them all: their training, the costly part, runs once. Each result equals tcav's for
    that class, and each is cached on its own (tcav reads it back, and the other way round).

    Raises:
        As :func:`tcav`; ParameterError also for no class, or classes' inputs of different sizes.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
    if not isinstance(inputs, Mapping) or not inputs:
        raise ParameterError("inputs is a mapping {class: its images}; give at least one class")
    xs: dict[int, torch.Tensor] = {}
    for target, images in inputs.items():
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
            raise TargetError(f"TCAV explains classes: each is a class index (an int), not {target!r}")
        xs[int(target)] = as_batch(model, images)[0]
    first = next(iter(xs.values()))
    if any(xb.shape[1:] != first.shape[1:] for xb in xs.values()):
        raise ParameterError("the classes' inputs hold images of different sizes: preprocess all for the model")
    names, sets = _concept_sets(model, concepts, first)
    randoms = _random_sets(model, random_sets, random_pool, n_random, max(len(s) for s in sets), seed, first)
    get_module(model, layer)
    weights = _weights_digest(model) if cache else b""
    results, todo = {}, {}
    for target, xb in xs.items():
        path = _cache_path(weights, layer, target, xb, names, sets, randoms, seed, cache) if cache else None
        if path is not None and path.exists():
            try:
                results[target] = _load(path, layer, target)
                continue
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                pass  # a damaged file is computed again and replaced below
        todo[target] = (xb, path)
    if todo:
        with using(model) as m, torch.inference_mode(False):
            for target, (xb, _) in todo.items():
                _check_layer_and_target(m, xb[:1], layer, target)
            jobs = [(target, xb) for target, (xb, _) in todo.items()]
            found, accuracy = score_concepts(m, layer, jobs, sets, randoms, batch_size, seed, progress)
        for (target, (_, path)), (scores, null) in zip(todo.items(), found):
            if path is not None:
                _save(path, names, scores, null, accuracy)
            results[target] = _result(layer, target, names, scores, null, accuracy)
    return {target: results[target] for target in xs}


def _concept_sets(
    model: nn.Module, concepts: Mapping[str, torch.Tensor], xb: torch.Tensor
) -> tuple[tuple[str, ...], list[torch.Tensor]]:
    if not isinstance(concepts, Mapping) or not concepts:
        raise ParameterError("concepts is a mapping {name: images}; give at least one concept set")
    sets = []
    for name, images in concepts.items():
        sets.append(_image_set(model, images, f"concept {name!r}", xb))
    return tuple(str(n) for n in concepts), sets


def _image_set(model: nn.Module, images: Any, what: str, xb: torch.Tensor) -> torch.Tensor:
    """A set on the model's device, checked: at least MIN_SET images of the inputs' size."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) < MIN_SET:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ParameterError(f"{what} must be N x 3 x H x W images with N >= {MIN_SET}, not {shape}")
    if images.shape[1:] != xb.shape[1:]:
        raise ParameterError(
            f"{what} holds {tuple(images.shape[1:])} images, the inputs {tuple(xb.shape[1:])}: "
            "preprocess both for the same model (interp.preprocess(image, spec))"
        )
    return as_batch(model, images)[0]


def _random_sets(
    model: nn.Module,
    given: Sequence[torch.Tensor] | None,
    pool: torch.Tensor | None,
    n_random: int,
    size: int,
    seed: int,
    xb: torch.Tensor,
) -> list[torch.Tensor]:
    """The random sets: the given ones, or ``n_random`` sets of ``size`` drawn from ``pool``."""
    if given is not None:
        if len(given) < 3:
            raise ParameterError(f"give at least 3 random sets (the null distribution needs 2), not {len(given)}")
        return [_image_set(model, s, f"random set {i}", xb) for i, s in enumerate(given)]
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 3:
        raise ParameterError(f"n_random must be a whole number >= 3 (the null distribution needs 2), not {n_random!r}")
    if pool is None:
        raise ParameterError(
            "give random_sets, or a random_pool to draw them from "
            "(e.g. interp.concepts.random_images(spec, 100): held-out images of the model's dataset)"
        )
    pool = _image_set(model, pool, "random_pool", xb)
    if len(pool) < size:
        raise ParameterError(
            f"random_pool has {len(pool)} images, fewer than the largest concept set ({size}): "
            "give a larger pool or smaller concept sets"
        )
    g = torch.Generator().manual_seed(int(seed))
    return [pool[torch.randperm(len(pool), generator=g)[:size].to(pool.device)] for _ in range(n_random)]


def _check_layer_and_target(model: nn.Module, x1: torch.Tensor, layer: str, target: int) -> None:
    """One forward pass of one image: the layer runs and gives a tensor; the class exists."""
    seen: list[Any] = []
    with forward_hooks([(get_module(model, layer), lambda m, i, o: seen.append(o))]), torch.no_grad():
        logits = logits_of(model, x1)
    if not seen:
        raise LayerError(f"layer {layer!r} did not run in the model's forward pass; choose one that does")
    if not isinstance(seen[0], torch.Tensor):
        raise LayerError(f"layer {layer!r} returns a {type(seen[0]).__name__}, not a tensor; choose another layer")
    resolve_targets(logits, target)


def _result(
    layer: str, target: int, names: tuple[str, ...], scores: np.ndarray, null: np.ndarray, accuracy: np.ndarray
) -> TcavResult:
    from scipy.stats import ttest_ind

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's, for runs of identical scores
        p = np.array([float(ttest_ind(row, null).pvalue) for row in scores])
    p = np.where(np.isnan(p), 1.0, p)  # every score equal to every null score: no evidence either way
    return TcavResult(
        layer=layer,
        target=target,
        concepts=names,
        score=scores.mean(1),
        std=scores.std(1),
        scores=scores,
        null_scores=null,
        p_values=p,
        significant=p < ALPHA / len(names),
        cav_accuracy=accuracy,
    )


def _tensor_bytes(t: torch.Tensor) -> bytes:
    # through uint8 so that any dtype (bfloat16 included) hashes by its exact bits
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _weights_digest(model: nn.Module) -> bytes:
    """The model's weights by content, so a retrained checkpoint never reads a stale result."""
    h = hashlib.sha1(type(model).__name__.encode())
    for key, t in model.state_dict().items():
        h.update(key.encode())
        h.update(_tensor_bytes(t))
    return h.digest()


def _cache_path(
    weights: bytes,
    layer: str,
    target: int,
    xb: torch.Tensor,
    names: tuple[str, ...],
    sets: list[torch.Tensor],
    randoms: list[torch.Tensor],
    seed: int,
    cache: bool | str | Path,
) -> Path:
    """A file named by the hash of everything the result depends on (the weights' digest first)."""
    from ..data import cache_dir

    h = hashlib.sha1(weights + f"{_CACHE_VERSION}|{layer}|{target}|{len(randoms)}|{seed}".encode())
    for name, t in [("inputs", xb), *zip(names, sets), *((f"random {i}", s) for i, s in enumerate(randoms))]:
        h.update(f"|{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(_tensor_bytes(t))
    folder = Path(cache_dir()) / "tcav" if isinstance(cache, bool) else Path(cache)
    return folder / f"{h.hexdigest()}.npz"


def _save(path: Path, names: tuple[str, ...], scores: np.ndarray, null: np.ndarray, accuracy: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, names=np.array(names, dtype=str), scores=scores, null=null, accuracy=accuracy)
    tmp.replace(path)  # whole or not at all: a reader never sees half a file


def _load(path: Path, layer: str, target: int) -> TcavResult:
    with np.load(path) as z:
        names = tuple(str(n) for n in z["names"])
        return _result(layer, target, names, z["scores"], z["null"], z["accuracy"])
