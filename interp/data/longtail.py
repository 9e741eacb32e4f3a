"""Long-tailed subsets of a balanced training split (Cui et al., CVPR 2019, section 6.1).

Class i of C keeps n_i = floor(n_max * r^(i / (C - 1))) images, with r = 1 / imbalance ratio, so
class 0 keeps all n_max and class C-1 keeps n_max / ratio: an exponential profile. Which images a
class keeps is drawn per seed; the held-out split stays balanced.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ParameterError


def long_tail_counts(n_max: int, imbalance_ratio: float, num_classes: int) -> list[int]:
    """Images per class of the long-tailed profile, class 0 first.

    Raises:
        ValueError: a ratio below 1 or fewer than two classes.
    """
    if imbalance_ratio < 1:
        raise ParameterError(f"the imbalance ratio n_max / n_min must be >= 1, got {imbalance_ratio}")
    if num_classes < 2:
        raise ParameterError("a long tail needs at least two classes")
    r = 1 / imbalance_ratio
    # The small epsilon keeps exact powers (ratio 1, the last class) from rounding down to n - 1.
    return [int(n_max * r ** (i / (num_classes - 1)) + 1e-9) for i in range(num_classes)]


def long_tail_indices(labels: Sequence[int] | np.ndarray, imbalance_ratio: float, seed: int = 0) -> np.ndarray:
    """Indices of a long-tailed subset of a balanced split, sorted (so still ordered by class).

    Args:
        labels: integer label of every image of the split.
        imbalance_ratio: n_max / n_min (the paper uses 10, 50, 100, 200).
        seed: which images each class keeps.

    Raises:
        ValueError: a ratio below 1, or a split that is not balanced.
    """
    labels = np.asarray(labels)
    classes, per_class = np.unique(labels, return_counts=True)
    if len(set(per_class.tolist())) != 1:
        raise ParameterError(f"a long tail is cut from a balanced split; this one has {per_class.tolist()} per class")
    counts = long_tail_counts(int(per_class[0]), imbalance_ratio, len(classes))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in zip(classes, counts)]
    return np.sort(np.concatenate(keep))
