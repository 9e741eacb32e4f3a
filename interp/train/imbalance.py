"""What a model trained on a long tail does per class group: the head (most training images) and
the tail (fewest), read from its model card."""

from __future__ import annotations

from typing import Any, Sequence


def tail_classes(train_counts: Sequence[int], class_names: Sequence[str], k: int = 5) -> list[str]:
    """The ``k`` classes with the fewest training images, rarest first (ties: the later class first)."""
    order = sorted(range(len(train_counts)), key=lambda i: (train_counts[i], -i))
    return [class_names[i] for i in order[:k]]


def imbalance_summary(card: dict[str, Any], k: int = 5) -> dict[str, Any]:
    """Balanced accuracy and the mean accuracy of the ``k`` rarest and ``k`` commonest classes.

    The held-out split is balanced, so the balanced accuracy (the mean of the per-class
    accuracies) is also the plain accuracy there.

    Raises:
        KeyError: a card without training counts (trained before they were recorded).
    """
    per_class = card["metrics"]["per_class_accuracy"]
    names, counts = list(per_class), card["train_counts"]
    tail = tail_classes(counts, names, k)
    head = tail_classes([-c for c in counts], names, k)
    return {
        "balanced_accuracy": sum(per_class.values()) / len(per_class),
        "tail_classes": tail,
        "tail_accuracy": sum(per_class[c] for c in tail) / len(tail),
        "head_classes": head,
        "head_accuracy": sum(per_class[c] for c in head) / len(head),
        "loss": card.get("loss", "cross-entropy"),
    }
