"""Losses for imbalanced training: softmax focal loss and the class-balanced weighting of Cui et al.,
"Class-Balanced Loss Based on Effective Number of Samples" (CVPR 2019), and their combination.

For a sample of class y with softmax probability p_t of that class, the class-balanced focal loss is

    CB_focal = w_y * (1 - p_t)^gamma * (-log p_t),    w_y = (1 - beta) / (1 - beta^n_y),

where n_y is the number of training samples of class y and the weights are rescaled to sum to the
number of classes (the paper's normalisation). beta = 0 gives every class weight 1 (no balancing),
gamma = 0 removes the focal term, so ``ClassBalancedFocalLoss(counts, 0, 0)`` is cross-entropy.

The batch's loss is the plain mean of the per-sample losses (as in the paper's code), not
``F.cross_entropy(weight=...)``'s weighted mean, which divides by the sum of the weights instead.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ParameterError


def effective_number(samples_per_class: Sequence[int] | torch.Tensor, beta: float) -> torch.Tensor:
    """E_n = (1 - beta^n) / (1 - beta) per class: the expected volume of n samples (E_n -> n as
    beta -> 1; E_n = 1 at beta = 0)."""
    n = torch.as_tensor(samples_per_class, dtype=torch.float64)
    if beta == 0:
        return torch.ones_like(n)
    return (1 - torch.pow(torch.tensor(beta, dtype=torch.float64), n)) / (1 - beta)


def class_balanced_weights(samples_per_class: Sequence[int] | torch.Tensor, beta: float) -> torch.Tensor:
    """Class weights proportional to 1 / E_n, summing to the number of classes (float32).

    Raises:
        ValueError: beta outside [0, 1), or a class without samples.
    """
    if not 0 <= beta < 1:
        raise ParameterError(f"beta must be in [0, 1), got {beta}")
    n = torch.as_tensor(samples_per_class)
    if (n <= 0).any():
        raise ParameterError(f"every class needs at least one training sample; counts: {n.tolist()}")
    inverse = 1 / effective_number(n, beta)
    return (inverse * len(n) / inverse.sum()).float()


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float = 0.0, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample softmax focal loss w_y (1 - p_t)^gamma (-log p_t), shape (N,), in float32."""
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
    loss = -log_p
    if gamma:
        loss = loss * (1 - log_p.exp()).clamp(min=0).pow(gamma)
    if class_weights is not None:
        loss = loss * class_weights.to(loss.device)[targets]
    return loss


class ClassBalancedFocalLoss(nn.Module):
    """The class-balanced softmax focal loss; forward(logits N x C, integer targets N) -> mean loss.

    Args:
        samples_per_class: training samples of each class, in class order.
        beta: in [0, 1); 0 switches the class balancing off (the paper tunes 0.9 ... 0.9999).
        gamma: >= 0; 0 switches the focal term off (the paper tunes 0.5, 1, 2).

    Raises:
        ValueError: beta outside [0, 1), a negative gamma, or a class without samples.
    """

    class_weights: torch.Tensor  # a buffer (moves with the module's device)

    def __init__(
        self, samples_per_class: Sequence[int] | torch.Tensor, beta: float = 0.9999, gamma: float = 1.0
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ParameterError(f"gamma must be >= 0, got {gamma}")
        self.beta, self.gamma = float(beta), float(gamma)
        self.register_buffer("class_weights", class_balanced_weights(samples_per_class, beta))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] != len(self.class_weights):
            raise ParameterError(
                f"logits have {logits.shape[1]} classes, the loss was built for {len(self.class_weights)}"
            )
        return focal_loss(logits, targets, self.gamma, self.class_weights).mean()

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}"


def loss_name(beta: float, gamma: float) -> str:
    """What (beta, gamma) make of the loss, for people: 'cross-entropy', 'focal (gamma 1)', ..."""
    if beta == 0 and gamma == 0:
        return "cross-entropy"
    if beta == 0:
        return f"focal (gamma {gamma:g})"
    if gamma == 0:
        return f"class-balanced cross-entropy (beta {beta:g})"
    return f"class-balanced focal (beta {beta:g}, gamma {gamma:g})"


def focal_term(p_t: np.ndarray | Sequence[float], gamma: float) -> np.ndarray:
    """(1 - p_t)^gamma (-log p_t) of probabilities of the true class : the loss
    of one sample, before its class weight, as a function of how well it is already classified."""
    p_t = np.asarray(p_t, dtype=float)
    return (1 - p_t) ** gamma * -np.log(p_t)
