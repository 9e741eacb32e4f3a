"""TCAV's computation through Captum's ``captum.concept``: the experimental sets, CAVs trained by
Captum's default classifier under a seed, and the inputs scored one batch at a time.

Quirks of Captum met here:

- ``TCAV.interpret`` attributes all its inputs in one pass; calling it per batch bounds the memory,
  and each call reads the CAVs trained once before back from its ``save_path`` (checked: a second
  training would draw other random numbers).
- Its default classifier's reported accuracy is wrong for two sets (the fitted model has one output
  column, whose argmax is always the first class); the subclass here reports the held-out accuracy.
- It keeps activations and CAVs as files named after the concepts' ids and names, in ``save_path``:
  plain names and a fresh temporary folder per call, so no file of another model is ever read back.
- Its classifier draws from Python's and NumPy's global generators (the train/test shuffle, the SGD),
  so they are seeded for the training and restored after.
"""

from __future__ import annotations

import random
import tempfile
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..errors import InternalError, MethodError

Progress = Callable[[int, int], None]


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's (CPU) global generators for a block; restore them after."""
    states = random.getstate(), np.random.get_state(), torch.random.default_generator.get_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.random.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.default_generator.set_state(states[2])


def _classifier(step: Callable[[], None]) -> Any:
    """Captum's default classifier (SGDClassifier) trained exactly as Captum trains it, reporting
    each CAV to ``step`` and its true held-out accuracy."""
    from captum.concept import DefaultClassifier
    from captum.concept._utils.classifier import _train_test_split
    from torch.utils.data import DataLoader, TensorDataset

    class Classifier(DefaultClassifier):
        trained = 0

        def train_and_eval(self, dataloader: Any, test_split_ratio: float = 0.33, **kwargs: Any) -> dict:
            # DefaultClassifier.train_and_eval, step by step (the same draws), but for the accuracy
            inputs, labels = zip(*dataloader)
            x, y = torch.cat(inputs), torch.cat(labels)
            x_train, x_test, y_train, y_test = _train_test_split(x, y, test_split=test_split_ratio)
            self.lm.device = x.device
            self.lm.fit(DataLoader(TensorDataset(x_train, y_train)))
            # two sets: one decision column, positive for the second class
            predicted = torch.as_tensor(self.classes())[(self.lm(x_test)[:, 0] > 0).long().cpu()]
            Classifier.trained += 1
            step()
            return {"accs": (predicted == y_test.cpu()).float().mean()}

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using default classifier")  # our choice, for small sets
        return Classifier()


def score_concepts(
    model: nn.Module,
    layer: str,
    target: int,
    xb: torch.Tensor,
    sets: list[torch.Tensor],
    randoms: list[torch.Tensor],
    batch_size: int,
    seed: int,
    progress: Progress | bool | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Captum's TCAV sign-count scores for every experimental set.

    Returns:
        scores (C, R) of each concept against each random set; null scores (R - 1,) of random_0
        against each other random set; the CAVs' held-out accuracies (C, R).

    Raises:
        MethodError: a CAV's classifier cannot be trained (scikit-learn refuses its sets).
    """
    from captum.concept import TCAV, Concept

    c, r = len(sets), len(randoms)
    # a concept's images in batches (Captum only iterates over them, one activation file per batch)
    found = [Concept(i, f"concept{i}", s.split(batch_size)) for i, s in enumerate(sets)]
    rand = [Concept(c + j, f"random{j}", s.split(batch_size)) for j, s in enumerate(randoms)]
    experiments = [[k, q] for k in found for q in rand] + [[rand[0], q] for q in rand[1:]]
    keys = [f"{a.id}-{b.id}" for a, b in experiments]  # Captum's key of an experimental set
    chunks = xb.split(batch_size)
    step, close = _stepper(progress, len(experiments) + len(chunks))
    sign = np.zeros(len(experiments))
    try:
        with tempfile.TemporaryDirectory(prefix="interp-tcav-") as folder, warnings.catch_warnings():
            # Captum's own, on every CAV it reads back and every classifier it fits
            warnings.filterwarnings("ignore", message="numpy.core is deprecated", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="Creating a tensor from a list of numpy")
            with seeded(seed):
                classifier = _classifier(step)
                captum = TCAV(model, [layer], classifier=classifier, save_path=folder)
                try:
                    captum.compute_cavs(experiments)
                except ValueError as exc:  # e.g. a training split that holds one set only
                    raise MethodError(
                        f"a CAV's classifier could not be trained ({exc}); give each set more images (10 or more)"
                    ) from exc
            for chunk in chunks:
                out = captum.interpret(chunk, experiments, target=target)
                sign += [float(out[k][layer]["sign_count"][0]) * len(chunk) for k in keys]
                step()
            if type(classifier).trained != len(experiments):
                raise InternalError(f"Captum trained {type(classifier).trained} CAVs for {len(experiments)} sets")
            accuracy = np.array([float(captum.cavs[k][layer].stats["accs"]) for k in keys[: c * r]])
    finally:
        close()
    sign /= len(xb)
    return sign[: c * r].reshape(c, r), sign[c * r :], accuracy.reshape(c, r)


def _stepper(progress: Progress | bool | None, total: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """step() after each unit of work, and close() at the end (for a tqdm bar)."""
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="TCAV", leave=False)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if bar is not None:
            bar.update(1)
        elif callable(progress):
            progress(done, total)

    def close() -> None:
        if bar is not None:
            bar.close()

    return step, close
