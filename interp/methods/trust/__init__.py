"""Whether to trust a map: faithfulness (deletion and insertion, Petsiuk et al.), the metrics of
Quantus's families (``metrics``), the sanity checks of Adebayo et al. (``sanity``) and the images a
model gets right and wrong (``gallery``)."""

from .faithfulness import (
    BASELINES,
    DeletionInsertion,
    baseline_image,
    deletion_insertion,
    mean_aucs,
    method_scores,
    pixel_order,
    summarize,
)
from .gallery import Gallery, right_and_wrong
from .metrics import (
    ROAD_PERCENTAGES,
    Road,
    average_drop,
    complexity,
    linear_imputation,
    max_sensitivity,
    metric_scores,
    random_logit,
    road,
    sparseness,
    summarize_metrics,
)
from .sanity import (
    Randomization,
    cascading_randomization,
    independent_randomization,
    randomization,
    randomization_steps,
    randomized_copy,
    spearman_abs,
    ssim,
)

__all__ = [
    "BASELINES",
    "DeletionInsertion",
    "Gallery",
    "ROAD_PERCENTAGES",
    "Randomization",
    "Road",
    "average_drop",
    "baseline_image",
    "cascading_randomization",
    "complexity",
    "deletion_insertion",
    "independent_randomization",
    "randomization",
    "linear_imputation",
    "max_sensitivity",
    "mean_aucs",
    "method_scores",
    "metric_scores",
    "pixel_order",
    "random_logit",
    "randomization_steps",
    "randomized_copy",
    "right_and_wrong",
    "road",
    "sparseness",
    "spearman_abs",
    "ssim",
    "summarize",
    "summarize_metrics",
]
