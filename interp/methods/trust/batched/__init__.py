"""The metrics of Quantus's families, batched: every function scores N images (and their maps) at
once and returns one value per image, as a (N,) array, for a table of methods x metrics over many
images. Each follows its paper and agrees with Quantus 0.6.0 given the options its docstring names
(tests/methods/test_quantus_agreement.py shows it); where the two differ on purpose, the docstring
says how.

Maps are (N, H, W), one value per pixel at the input's resolution (numpy or torch); images are
preprocessed N x C x H x W tensors; masks are (N, H, W) bool. The metrics that explain again (the
robustness and randomisation ones) take an ``explain_fn(model, x, targets) -> maps``, so any method
can be scored: :func:`explainer` makes one of interp's methods.

- complexity: :func:`sparseness`, :func:`complexity`, :func:`effective_complexity`;
- robustness: :func:`max_sensitivity`, :func:`local_lipschitz`;
- localisation: :func:`pointing_game`, :func:`energy_pointing_game`, :func:`relevance_mass_accuracy`;
- randomisation: :func:`random_logit`, :func:`model_parameter_randomisation`;
- faithfulness: :func:`average_drop`, :func:`road` (ROAD, with :func:`linear_imputation`).
"""

from .base import ExplainFn, explainer
from .complexity import complexity, effective_complexity, sparseness
from .confidence import average_drop
from .localisation import energy_pointing_game, pointing_game, relevance_mass_accuracy
from .randomisation import ParameterRandomisation, model_parameter_randomisation, other_classes, random_logit
from .road import RoadScores, linear_imputation, road
from .robustness import gaussian_noise, local_lipschitz, max_sensitivity, uniform_noise
from .similarity import spearman_abs, ssim

__all__ = [
    "ExplainFn",
    "ParameterRandomisation",
    "RoadScores",
    "average_drop",
    "complexity",
    "effective_complexity",
    "energy_pointing_game",
    "explainer",
    "gaussian_noise",
    "linear_imputation",
    "local_lipschitz",
    "max_sensitivity",
    "model_parameter_randomisation",
    "other_classes",
    "pointing_game",
    "random_logit",
    "relevance_mass_accuracy",
    "road",
    "sparseness",
    "spearman_abs",
    "ssim",
    "uniform_noise",
]
