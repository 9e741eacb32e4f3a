"""Whether to trust a map: faithfulness (deletion and insertion, Petsiuk et al.), the metrics of
Quantus's families (``metrics``, one image; ``batched``, many images at once, in agreement with
Quantus), the sanity checks of Adebayo et al. (``sanity``) and the images a model gets right and
wrong (``gallery``)."""

from . import batched
from .batched.road import ROAD_PERCENTAGES, linear_imputation
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
    Road,
    average_drop,
    complexity,
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
    "batched",
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
