"""The basics under the methods: convolution by hand and as a matrix, output sizes and receptive
fields, and the piecewise-linear view of a ReLU network (its local affine model)."""

from .convolution import (
    BOUNDARIES,
    BOUNDARY_LABELS,
    EXAMPLE_IMAGE,
    SOBEL_X,
    ConvolutionStep,
    convolution_step,
    convolve,
    pad_image,
    step_formula,
)
from .local import bias_contributions, local_linear, output_of
from .matrix import conv_matrix, conv_matrix_symbolic, conv_output_shape, matrix_vs_layer
from .piecewise import EXAMPLE_NETWORK, Piece, breakpoints, example_module, linear_pieces, mlp_forward, mlp_local_affine
from .sizes import (
    Layer,
    conv_output_size,
    kernel_size_for,
    model_size_table,
    padding_for,
    receptive_fields,
    same_padding,
)

__all__ = [
    "BOUNDARIES",
    "BOUNDARY_LABELS",
    "EXAMPLE_IMAGE",
    "EXAMPLE_NETWORK",
    "SOBEL_X",
    "ConvolutionStep",
    "Layer",
    "Piece",
    "bias_contributions",
    "breakpoints",
    "conv_matrix",
    "conv_matrix_symbolic",
    "conv_output_shape",
    "conv_output_size",
    "convolution_step",
    "convolve",
    "example_module",
    "kernel_size_for",
    "linear_pieces",
    "local_linear",
    "matrix_vs_layer",
    "mlp_forward",
    "mlp_local_affine",
    "model_size_table",
    "output_of",
    "pad_image",
    "padding_for",
    "receptive_fields",
    "same_padding",
    "step_formula",
]
