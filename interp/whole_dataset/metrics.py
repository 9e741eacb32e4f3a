"""The per-image metrics a dataset run can store beside each map: one value per image, method and
metric, each computed once per batch from the map the run already made (the robustness and
randomisation metrics explain again, on noisy inputs or a randomised copy of the model).

The families follow Quantus's (Hedström et al., JMLR 2023); every function comes from
:mod:`interp.methods.trust` (deletion/insertion) or :mod:`interp.methods.trust.batched` (the rest,
each tested equal to Quantus 0.6.0). The localisation metrics need the object's mask: a run reads
``NAME.mask.png`` beside an image ``NAME.EXT`` (white on the object), resized and cropped as the
image is; an image without one gets no localisation score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from ..methods.trust import batched
from ..methods.trust.faithfulness import deletion_insertion
from ..models.registry import ModelSpec

MASK_SUFFIX = ".mask.png"
ROAD_PERCENTAGES = (10, 30, 50, 70, 90)  # fewer steps than ROAD's nine: each costs an imputation per image
NOISY_COPIES = 5  # per image, for max-sensitivity and the local Lipschitz estimate


@dataclass(frozen=True)
class Metric:
    """One per-image metric: what it measures and which way is better."""

    name: str
    family: str
    title: str
    higher_is_better: bool
    reference: str
    needs_mask: bool = False


METRIC_TABLE: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("deletion", "faithfulness", "Deletion AUC", False, "Petsiuk et al. 2018"),
        Metric("insertion", "faithfulness", "Insertion AUC", True, "Petsiuk et al. 2018"),
        Metric("road_morf", "faithfulness", "ROAD, most relevant first", False, "Rong et al. 2022"),
        Metric("road_lerf", "faithfulness", "ROAD, least relevant first", True, "Rong et al. 2022"),
        Metric("average_drop", "faithfulness", "Average drop", False, "Chattopadhyay et al. 2018"),
        Metric("average_increase", "faithfulness", "Increase in confidence", True, "Chattopadhyay et al. 2018"),
        Metric("max_sensitivity", "robustness", "Max-sensitivity", False, "Yeh et al. 2019"),
        Metric("local_lipschitz", "robustness", "Local Lipschitz estimate", False, "Alvarez-Melis & Jaakkola 2018"),
        Metric("parameter_randomisation", "randomisation", "Parameter randomisation", False, "Adebayo et al. 2018"),
        Metric("random_logit", "randomisation", "Random logit", False, "Sixt et al. 2020"),
        Metric("sparseness", "complexity", "Sparseness", True, "Chalasani et al. 2020"),
        Metric("effective_complexity", "complexity", "Effective complexity", False, "Nguyen & Martinez 2020"),
        Metric("pointing_game", "localisation", "Pointing game", True, "Zhang et al. 2018", True),
        Metric("energy_pointing_game", "localisation", "Energy pointing game", True, "Wang et al. 2020", True),
        Metric("relevance_mass", "localisation", "Relevance mass accuracy", True, "Arras et al. 2022", True),
    )
}
METRICS = tuple(METRIC_TABLE)
FAMILIES = tuple(dict.fromkeys(m.family for m in METRIC_TABLE.values()))


def metric_column(metric: str, method: str) -> str:
    """The run table's column of one metric of one method (deletion/insertion keep their `_auc_`)."""
    return f"{metric}_auc_{method}" if metric in ("deletion", "insertion") else f"{metric}_{method}"


def needs_masks(metrics: tuple[str, ...]) -> bool:
    return any(METRIC_TABLE[m].needs_mask for m in metrics)


def mask_path(image: str | Path) -> Path:
    """Where an image's object mask lives: ``NAME.mask.png`` beside ``NAME.EXT``."""
    p = Path(image)
    return p.with_name(p.stem + MASK_SUFFIX)


def is_mask(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(MASK_SUFFIX)


def score_maps(
    model: nn.Module,
    spec: ModelSpec,
    x: torch.Tensor,
    maps: np.ndarray,
    targets: np.ndarray,
    metrics: tuple[str, ...],
    explain_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], Any],
    masks: np.ndarray | None = None,
    steps: int = 20,
    batch_size: int = 32,
) -> Mapping[str, np.ndarray]:
    """Each metric's (N,) values for one method's input-resolution ``maps`` (N, H, W) of images ``x``.

    Args:
        targets: the explained classes, (N,).
        explain_fn: the method again, for the metrics that re-explain (``batched.explainer``).
        masks: (N, H, W) bool object masks, all False where an image has none (its localisation
            scores are NaN).
        steps: points on each deletion/insertion curve.
    """
    t = torch.as_tensor(targets, dtype=torch.int64)
    out: dict[str, np.ndarray] = {}
    wanted = set(metrics)
    if wanted & {"deletion", "insertion"}:
        found = [
            deletion_insertion(model, x[i : i + 1], maps[i], target=int(targets[i]), steps=steps, n_random=1)
            for i in range(len(x))
        ]
        for kind in wanted & {"deletion", "insertion"}:
            out[kind] = np.array([getattr(s, f"{kind}_auc") for s in found])
    for order in ("morf", "lerf"):
        if f"road_{order}" in wanted:
            road = batched.road(model, x, maps, t, ROAD_PERCENTAGES, order, batch_size=batch_size)
            out[f"road_{order}"] = road.auc
    if wanted & {"average_drop", "average_increase"}:
        confidence = batched.average_drop(model, x, maps, t, spec.mean, spec.std, batch_size=batch_size)
        out["average_drop"], out["average_increase"] = confidence["drop"], confidence["increase"]
    if "max_sensitivity" in wanted:
        out["max_sensitivity"] = batched.max_sensitivity(
            model, x, explain_fn, t, n_samples=NOISY_COPIES, batch_size=batch_size
        )
    if "local_lipschitz" in wanted:
        out["local_lipschitz"] = batched.local_lipschitz(
            model, x, explain_fn, t, n_samples=NOISY_COPIES, batch_size=batch_size
        )
    if "parameter_randomisation" in wanted:  # the fully randomised model's map against the trained one's
        out["parameter_randomisation"] = batched.model_parameter_randomisation(
            model, x, explain_fn, t, batch_size=batch_size
        ).last
    if "random_logit" in wanted:
        out["random_logit"] = batched.random_logit(model, x, explain_fn, t, batch_size=batch_size)
    if "sparseness" in wanted:
        out["sparseness"] = batched.sparseness(maps)
    if "effective_complexity" in wanted:  # as a share of the pixels, so that input sizes compare
        out["effective_complexity"] = batched.effective_complexity(maps) / float(maps[0].size)
    if needs_masks(metrics):
        m = np.zeros(maps.shape, dtype=bool) if masks is None else masks
        for name, fn in (
            ("pointing_game", batched.pointing_game),
            ("energy_pointing_game", batched.energy_pointing_game),
            ("relevance_mass", batched.relevance_mass_accuracy),
        ):
            if name in wanted:
                with np.errstate(invalid="ignore", divide="ignore"):
                    values = np.asarray(fn(maps, m), dtype=np.float64)
                values[~m.reshape(len(m), -1).any(1)] = np.nan  # no mask, no score
                out[name] = values
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
