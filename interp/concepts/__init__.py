"""Concepts: what a prediction is made of, beyond where the model looked.

- :func:`crp`: Concept Relevance Propagation (Achtibat et al., Nature Machine Intelligence 2023):
  LRP conditioned on one channel of a layer, for the channels that carried the most relevance.
- :func:`layer_relevance`: every channel's relevance for each image's class, what relevance
  maximisation ranks a channel's reference images by.
- :func:`relevance_examples`: relevance maximisation, each channel's held-out images where it
  carried the most relevance for a class, with the crops its strongest unit sees.
- :func:`tcav`: TCAV (Kim et al., ICML 2018) through Captum: how much a class's logit grows along
  human-named concepts (image sets) at a layer, and whether that differs from random sets;
  :func:`tcav_classes`: the same for several classes at once, on one set of CAVs.
- Concept sets for it: :func:`pacs_style_sets` (the PACS domains as styles), :func:`zebra_stripes`,
  :func:`colour_patches`, :func:`texture_patches`, :func:`random_images` (random sets' pool) and
  :func:`folder_set` (a folder of your own images).
- :func:`style_tcav`: TCAV of the four PACS styles for every output of a PACS model, a domain
  model's and a class model's comparable (:func:`style_sets`: the concept and random sets it uses).
- :func:`extract`: CRAFT (Fel et al., CVPR 2023): a class's concepts at a layer, an NMF of the
  activations of its images' crops, ranked by total Sobol indices for the class's logit
  (:class:`ConceptSet`, with each concept's crops and maps).
"""

from __future__ import annotations

from .craft import ConceptSet, extract
from .crp import ConceptRelevance, crp, layer_relevance
from .references import relevance_examples
from .sets import colour_patches, folder_set, pacs_style_sets, random_images, texture_patches, zebra_stripes
from .styles import style_sets, style_tcav
from .tcav import TcavResult, tcav, tcav_classes

__all__ = [
    "ConceptRelevance",
    "ConceptSet",
    "TcavResult",
    "colour_patches",
    "crp",
    "extract",
    "folder_set",
    "layer_relevance",
    "pacs_style_sets",
    "random_images",
    "relevance_examples",
    "style_sets",
    "style_tcav",
    "tcav",
    "tcav_classes",
    "texture_patches",
    "zebra_stripes",
]
