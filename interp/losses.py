"""Losses for imbalanced training, under their public name (the code lives in interp.train.losses)."""

from .train.losses import (ClassBalancedFocalLoss, class_balanced_weights, effective_number, focal_loss, focal_term,
                           loss_name)

__all__ = ["ClassBalancedFocalLoss", "class_balanced_weights", "effective_number", "focal_loss", "focal_term",
           "loss_name"]
