"""What the Concepts page computes, kept for every visitor: reference images of channels by
relevance, CRAFT's concepts of a class and TCAV scores of named concept sets. Each reports progress
to a bar the page made, so they are kept by hand (:class:`~dashboard.loaders.Kept`), and on disk by
interp (``cache=True``) so that a restarted server reopens them at once."""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np
import streamlit as st
import torch

import interp
from interp import concepts
from interp.concepts.sets import TEXTURES
from interp.data import HeldOutBatch
from interp.models.registry import PACS_DOMAINS

from .loaders import Kept, cached_model, held_out

Progress = Callable[[int, int], None] | None

COLOURS = ("red", "green", "blue", "yellow")
SET_SIZE = 20  # images per concept set (the shipped sample has 14 per PACS domain)
YOURS = "your images"

_CRAFT = Kept()
_TCAV = Kept()


def class_images(name: str, n: int, target: int) -> tuple[HeldOutBatch, np.ndarray]:
    """The held-out batch ``held_out(name, n)`` and the indices of its images labelled ``target``."""
    batch = held_out(name, n)
    return batch, np.flatnonzero(batch.labels == target)


def craft(
    name: str, layer: str, n: int, target: int, n_concepts: int, progress: Progress = None, run: bool = True
) -> concepts.ConceptSet | None:
    """CRAFT's concepts of class ``target`` at ``layer`` over the held-out images of that class
    (with ``run`` False: None unless they are kept)."""
    batch, idx = class_images(name, n, target)
    return _CRAFT.get(
        (name, layer, n, target, n_concepts),
        lambda: concepts.extract(
            cached_model(name),
            layer,
            batch.x[torch.as_tensor(idx)],
            n_concepts,
            target=target,
            cache=True,
            progress=progress,
        ),
        run,
    )


def set_names(name: str) -> tuple[list[str], list[str]]:
    """The concept sets offered for a model, and those chosen by default (the PACS styles for a
    PACS model: the course's question; else the zebra's stripes and two textures)."""
    styles = [f"style: {d}" for d in PACS_DOMAINS] if interp.get_spec(name).dataset == "pacs" else []
    others = ["zebra stripes", *(f"texture: {t}" for t in TEXTURES), *(f"colour: {c}" for c in COLOURS)]
    return styles + others, styles or ["zebra stripes", "texture: stripes", "texture: dots"]


@st.cache_resource(show_spinner="Building the concept sets...", max_entries=16)
def concept_set(name: str, set_name: str) -> torch.Tensor:
    """One named concept set (see :func:`set_names`), preprocessed for the model (read-only)."""
    spec = interp.get_spec(name)
    kind, _, what = set_name.partition(": ")
    if kind == "style":
        return concepts.pacs_style_sets(spec, SET_SIZE)[what]
    if kind == "texture":
        return concepts.texture_patches(spec, what, SET_SIZE)
    if kind == "colour":
        return concepts.colour_patches(spec, what, SET_SIZE)
    return concepts.zebra_stripes(spec, SET_SIZE)


def uploaded_set(name: str, files: Sequence[bytes]) -> torch.Tensor:
    """A concept set of the user's own images, preprocessed for the model.

    Raises:
        ImageError: a file that is not an image.
    """
    spec = interp.get_spec(name)
    return torch.cat([interp.preprocess(interp.load_image(b), spec) for b in files])


def run_tcav(
    name: str,
    layer: str,
    n: int,
    target: int,
    chosen: Sequence[str],
    n_random: int,
    uploads: Sequence[bytes] = (),
    progress: Progress = None,
    run: bool = True,
) -> concepts.TcavResult | None:
    """TCAV of the chosen concept sets (and the user's images, if any) for class ``target`` at
    ``layer``, over the held-out images of the class, against ``n_random`` random held-out sets
    (with ``run`` False: None unless it is kept)."""
    digest = hashlib.sha1(b"".join(hashlib.sha1(u).digest() for u in uploads)).hexdigest()

    def compute() -> concepts.TcavResult:
        batch, idx = class_images(name, n, target)
        sets = {s: concept_set(name, s) for s in chosen}
        if uploads:
            sets[YOURS] = uploaded_set(name, uploads)
        largest = max(len(s) for s in sets.values())
        pool = concepts.random_images(name, max(4 * largest, 64), seed=1)
        return concepts.tcav(
            cached_model(name),
            layer,
            sets,
            target,
            batch.x[torch.as_tensor(idx)],
            n_random=n_random,
            random_pool=pool,
            cache=True,
            progress=progress,
        )

    return _TCAV.get((name, layer, n, target, tuple(chosen), n_random, digest), compute, run)
