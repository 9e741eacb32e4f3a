"""Interpretability methods: each takes a model (and an input) and returns raw numpy arrays."""

from .filters import conv1_autocorrelation, conv_layers, filters

__all__ = ["conv1_autocorrelation", "conv_layers", "filters"]
