"""Figures: numpy scaling and colour (``scaling``, no Plotly) apart from the Plotly builders
(``maps``: maps and filters; ``cards``: training records and architectures; ``trust``: sanity
checks and faithfulness; ``imbalance``: training on a long tail; ``dataset``: a whole dataset's
maps; ``look``: optimised images and dataset crops; ``basics``: convolution, linear pieces, the
from-scratch network; ``explanation``: an Explanation as HTML for Jupyter and as a figure), all in
one visual style (``style``)."""

from .basics import bias_bars, conv_matrix_figure, convolution_step_figure, piecewise_figure, scratch_curves
from .cards import confusion_matrix, parameters_per_layer, per_class_accuracy, training_curves
from .concepts import style_tcav_figure
from .dataset import map_overlay, mean_map_grid
from .explanation import explanation_figure, explanation_html
from .imbalance import class_counts, class_weight_curves, focal_curves, per_class_comparison
from .look import as_tile, objective_curves, picture_grid_figure
from .maps import compact, feature_grid_figure, filter_grid_figure, heatmap_figure, kernel_figure
from .report import family_figure, rank_table_figure
from .scaling import (
    COLORMAPS,
    apply_colormap,
    as_rgb_uint8,
    denormalize,
    filter_mosaic,
    gradient_image,
    normalize,
    overlay,
    shrink,
)
from .style import METHOD_TITLES, method_title
from .trust import deletion_insertion_curves, randomization_strip, similarity_curves, step_labels

__all__ = [
    "family_figure",
    "rank_table_figure",
    "style_tcav_figure",
    "COLORMAPS",
    "METHOD_TITLES",
    "apply_colormap",
    "as_rgb_uint8",
    "bias_bars",
    "class_counts",
    "class_weight_curves",
    "compact",
    "confusion_matrix",
    "conv_matrix_figure",
    "convolution_step_figure",
    "focal_curves",
    "per_class_comparison",
    "piecewise_figure",
    "scratch_curves",
    "deletion_insertion_curves",
    "denormalize",
    "explanation_figure",
    "explanation_html",
    "feature_grid_figure",
    "filter_grid_figure",
    "filter_mosaic",
    "gradient_image",
    "heatmap_figure",
    "map_overlay",
    "mean_map_grid",
    "kernel_figure",
    "method_title",
    "normalize",
    "overlay",
    "parameters_per_layer",
    "per_class_accuracy",
    "randomization_strip",
    "shrink",
    "similarity_curves",
    "step_labels",
    "training_curves",
    # what a filter looks for
    "as_tile",
    "objective_curves",
    "picture_grid_figure",
]
