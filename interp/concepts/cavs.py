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
- Its check for a concept's activations already saved passes the layer and the concept in each
  other's places, so never finds them: every experimental set computed its two concepts' activations
  again (a concept against 8 random sets, 8 times). The subclass here computes each once per call.
"""

from __future__ import annotations

import random
import tempfile
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

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
    from torch.utils.data import DataLoader, TensorDataset

    class Classifier(DefaultClassifier):
        trained = 0

        def train_and_eval(self, dataloader: Any, test_split_ratio: float = 0.33, **kwargs: Any) -> dict:
            # DefaultClassifier.train_and_eval, step by step (the same draws), but for the accuracy
            inputs, labels = zip(*dataloader)
            x, y = torch.cat(inputs), torch.cat(labels)
            # Captum's _train_test_split shuffles the list of rows once: the same draw on their
            # indices (it stacks the rows back one by one, slow for a conv layer's activations)
            order = list(range(len(x)))
            random.shuffle(order)
            n_test = int(test_split_ratio * len(x))
            test, train = torch.as_tensor(order[:n_test]), torch.as_tensor(order[n_test:])
            x_train, x_test, y_train, y_test = x[train], x[test], y[train], y[test]
            self.lm.device = x.device
            # one batch: Captum's training joins the batches anyway, and one per row is slow
            self.lm.fit(DataLoader(TensorDataset(x_train, y_train), batch_size=len(x_train)))
            # two sets: one decision column, positive for the second class
            predicted = torch.as_tensor(self.classes())[(self.lm(x_test)[:, 0] > 0).long().cpu()]
            Classifier.trained += 1
            step()
            return {"accs": (predicted == y_test.cpu()).float().mean()}

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using default classifier")  # our choice, for small sets
        return Classifier()


def _captum_tcav(model: nn.Module, layer: str, classifier: Any, folder: str) -> Any:
    """Captum's TCAV, computing each concept's activations once (its results unchanged: the
    activations are the same and draw no random number)."""
    from captum.concept import TCAV

    computed: set[tuple[int, str]] = set()  # (concept id, layer) of this call

    class OnceTCAV(TCAV):
        def generate_activation(self, layers: str | list[str], concept: Any) -> None:
            todo = [n for n in ([layers] if isinstance(layers, str) else layers) if (concept.id, n) not in computed]
            if todo:
                super().generate_activation(todo, concept)
                computed.update((concept.id, n) for n in todo)

    return OnceTCAV(model, [layer], classifier=classifier, save_path=folder)


def score_concepts(
    model: nn.Module,
    layer: str,
    jobs: Sequence[tuple[int, torch.Tensor]],
    sets: list[torch.Tensor],
    randoms: list[torch.Tensor],
    batch_size: int,
    seed: int,
    progress: Progress | bool | None,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Captum's TCAV sign-count scores for every experimental set, for each (target, inputs) job:
    the CAVs are trained once and serve every job.

    Returns:
        Per job: scores (C, R) of each concept against each random set and null scores (R - 1,) of
        random_0 against each other random set; the CAVs' held-out accuracies (C, R).

    Raises:
        MethodError: a CAV's classifier cannot be trained (scikit-learn refuses its sets).
    """
    from captum.concept import Concept

    c, r = len(sets), len(randoms)
    # a concept's images in batches (Captum only iterates over them, one activation file per batch)
    found = [Concept(i, f"concept{i}", s.split(batch_size)) for i, s in enumerate(sets)]
    rand = [Concept(c + j, f"random{j}", s.split(batch_size)) for j, s in enumerate(randoms)]
    experiments = [[k, q] for k in found for q in rand] + [[rand[0], q] for q in rand[1:]]
    keys = [f"{a.id}-{b.id}" for a, b in experiments]  # Captum's key of an experimental set
    chunks = [(j, target, chunk) for j, (target, xb) in enumerate(jobs) for chunk in xb.split(batch_size)]
    step, close = _stepper(progress, len(experiments) + len(chunks))
    sign = np.zeros((len(jobs), len(experiments)))
    try:
        with tempfile.TemporaryDirectory(prefix="interp-tcav-") as folder, warnings.catch_warnings():
            # Captum's own, on every CAV it reads back and every classifier it fits
            warnings.filterwarnings("ignore", message="numpy.core is deprecated", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="Creating a tensor from a list of numpy")
            # Captum fits scikit-learn's SGDClassifier with its default iterations; a CAV short of full
            # convergence is still a direction, and its held-out accuracy is reported (cav_accuracy)
            warnings.filterwarnings("ignore", message="Maximum number of iteration reached")
            with seeded(seed):
                classifier = _classifier(step)
                captum = _captum_tcav(model, layer, classifier, folder)
                try:
                    captum.compute_cavs(experiments)
                except ValueError as exc:  # e.g. a training split that holds one set only
                    raise MethodError(
                        f"a CAV's classifier could not be trained ({exc}); give each set more images (10 or more)"
                    ) from exc
            for j, target, chunk in chunks:
                out = captum.interpret(chunk, experiments, target=target)
                sign[j] += [float(out[k][layer]["sign_count"][0]) * len(chunk) for k in keys]
                step()
            if type(classifier).trained != len(experiments):
                raise InternalError(f"Captum trained {type(classifier).trained} CAVs for {len(experiments)} sets")
            accuracy = np.array([float(captum.cavs[k][layer].stats["accs"]) for k in keys[: c * r]])
    finally:
        close()
    sign /= np.array([len(xb) for _, xb in jobs])[:, None]
    return [(row[: c * r].reshape(c, r), row[c * r :]) for row in sign], accuracy.reshape(c, r)


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
