"""The class-balanced focal loss against the paper's formulas computed by hand, and the long tail
against its defining profile."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interp.data import long_tail_counts, long_tail_indices
from interp.losses import ClassBalancedFocalLoss, class_balanced_weights

LOGITS = [[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [-2.0, 1.5, 1.0], [0.0, 0.0, 0.0]]
TARGETS = [0, 2, 1, 2]
COUNTS = [100, 10, 1]


def _by_hand(logits, targets, counts, beta, gamma):
    """Cui et al. (2019), eq. 4 with the softmax focal loss, one sample at a time in plain floats."""
    effective = [(1 - beta**n) / (1 - beta) if beta else 1.0 for n in counts]
    inverse = [1 / e for e in effective]
    weights = [w * len(counts) / sum(inverse) for w in inverse]
    total = 0.0
    for row, y in zip(logits, targets):
        p = math.exp(row[y]) / sum(math.exp(v) for v in row)
        total += weights[y] * (1 - p) ** gamma * -math.log(p)
    return total / len(targets)


@pytest.mark.parametrize("beta, gamma", [(0.0, 0.0), (0.0, 2.0), (0.9, 0.0), (0.9, 1.0), (0.999, 0.5), (0.9999, 2.0)])
def test_loss_equals_the_papers_formula(beta, gamma):
    loss = ClassBalancedFocalLoss(COUNTS, beta, gamma)(torch.tensor(LOGITS), torch.tensor(TARGETS))
    assert loss.item() == pytest.approx(_by_hand(LOGITS, TARGETS, COUNTS, beta, gamma), rel=1e-6)


def test_beta_and_gamma_zero_is_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(64, 10, generator=g) * 3, torch.randint(0, 10, (64,), generator=g)
    loss = ClassBalancedFocalLoss(long_tail_counts(5000, 100, 10), beta=0.0, gamma=0.0)(logits, targets)
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets))


def test_class_balanced_cross_entropy_weights_each_sample():
    """gamma = 0: per-sample cross-entropy times its class's weight, then the plain mean."""
    logits, targets = torch.tensor(LOGITS), torch.tensor(TARGETS)
    w = class_balanced_weights(COUNTS, 0.99)
    expected = (F.cross_entropy(logits, targets, reduction="none") * w[targets]).mean()
    torch.testing.assert_close(ClassBalancedFocalLoss(COUNTS, 0.99, 0.0)(logits, targets), expected)


def test_weights_sum_to_the_number_of_classes_and_favour_the_rare():
    w = class_balanced_weights(long_tail_counts(5000, 100, 10), 0.9999)
    assert w.sum().item() == pytest.approx(10, rel=1e-6)
    assert torch.all(w[1:] > w[:-1])
    # beta -> 1 approaches inverse class frequency: E_n -> n.
    w = class_balanced_weights([1000, 10], 1 - 1e-9)
    assert (w[1] / w[0]).item() == pytest.approx(100, rel=1e-3)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="beta"):
        ClassBalancedFocalLoss(COUNTS, beta=1.0)
    with pytest.raises(ValueError, match="gamma"):
        ClassBalancedFocalLoss(COUNTS, gamma=-1)
    with pytest.raises(ValueError, match="at least one"):
        ClassBalancedFocalLoss([5, 0, 3])
    with pytest.raises(ValueError, match="classes"):
        ClassBalancedFocalLoss(COUNTS)(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("ratio", [10, 50, 100])
def test_long_tail_counts_follow_the_exponential_profile(ratio):
    expected = [math.floor(5000 * (1 / ratio) ** (i / 9) + 1e-9) for i in range(10)]
    assert long_tail_counts(5000, ratio, 10) == expected
    assert expected[0] == 5000 and expected[-1] == 5000 // ratio


def test_long_tail_of_cifar10_at_ratio_100_has_12406_images():
    """The size every long-tailed CIFAR-10 paper reports for ratio 100."""
    assert sum(long_tail_counts(5000, 100, 10)) == 12406


def test_long_tail_indices_keep_the_counts_and_depend_on_the_seed():
    labels = np.repeat(np.arange(10), 500)
    idx = long_tail_indices(labels, 50, seed=3)
    assert np.bincount(labels[idx], minlength=10).tolist() == long_tail_counts(500, 50, 10)
    assert np.array_equal(idx, long_tail_indices(labels, 50, seed=3))
    assert not np.array_equal(idx, long_tail_indices(labels, 50, seed=4))
    with pytest.raises(ValueError, match="balanced"):
        long_tail_indices(labels[:-1], 50)


def test_focal_term_is_the_loss_of_one_sample():
    """The loss explorer's curve: focal_loss of a two-class sample whose true class has probability p."""
    from interp.losses import focal_loss, focal_term

    p = torch.tensor([0.05, 0.3, 0.5, 0.9, 0.999], dtype=torch.float64)
    logits = torch.stack([p.log(), (1 - p).log()], dim=1)
    for gamma in (0.0, 0.5, 2.0):
        expected = focal_loss(logits, torch.zeros(5, dtype=torch.long), gamma).double().numpy()
        np.testing.assert_allclose(focal_term(p.numpy(), gamma), expected, rtol=1e-5, atol=1e-8)  # float32 loss


def test_tail_classes_and_summary_from_a_card():
    from interp.train import imbalance_summary, tail_classes

    names = [f"c{i}" for i in range(10)]
    counts = long_tail_counts(5000, 100, 10)
    assert tail_classes(counts, names, 3) == ["c9", "c8", "c7"]
    per_class = {n: i / 10 for i, n in enumerate(names)}
    s = imbalance_summary({"metrics": {"per_class_accuracy": per_class}, "train_counts": counts})
    assert s["balanced_accuracy"] == pytest.approx(0.45)
    assert s["tail_accuracy"] == pytest.approx((0.5 + 0.6 + 0.7 + 0.8 + 0.9) / 5)
    assert s["head_accuracy"] == pytest.approx((0.0 + 0.1 + 0.2 + 0.3 + 0.4) / 5)


def test_deferred_reweighting_switches_to_the_class_weights_at_its_epoch():
    """Cao et al.'s schedule: plain cross-entropy up to epoch reweight_from - 1, then the weighted loss;
    checked on logits against F.cross_entropy with and without the class weights."""
    from types import SimpleNamespace

    from interp.train.config import TrainConfig
    from interp.train.loop import _Run

    counts = [500, 50, 5]
    cfg = TrainConfig(beta=0.999, gamma=0.0, reweight_from=3)
    run = SimpleNamespace(
        cfg=cfg,
        unweighted=ClassBalancedFocalLoss(counts, 0.0, 0.0),
        criterion=ClassBalancedFocalLoss(counts, 0.999, 0.0),
    )
    torch.manual_seed(0)
    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    w = torch.as_tensor(class_balanced_weights(counts, 0.999), dtype=torch.float32)
    weighted = (F.cross_entropy(logits, y, reduction="none") * w[y]).mean()
    for epoch, expected in (
        (0, F.cross_entropy(logits, y)),
        (1, F.cross_entropy(logits, y)),
        (2, weighted),
        (5, weighted),
    ):
        torch.testing.assert_close(_Run.criterion_of(run, epoch)(logits, y), expected)
    run.cfg = TrainConfig(beta=0.999, reweight_from=None)
    torch.testing.assert_close(_Run.criterion_of(run, 0)(logits, y), weighted)
