"""Concepts: what a prediction is made of, beyond where the model looked.

- :func:`crp`: Concept Relevance Propagation (Achtibat et al., Nature Machine Intelligence 2023):
  LRP conditioned on one channel of a layer, for the channels that carried the most relevance.
- :func:`layer_relevance`: every channel's relevance for each image's class, what relevance
  maximisation ranks a channel's reference images by.
"""

from __future__ import annotations

from .crp import ConceptRelevance, crp, layer_relevance

__all__ = ["ConceptRelevance", "crp", "layer_relevance"]
