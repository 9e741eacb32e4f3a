"""The report card: which attribution method to trust for *this* model, measured over its images.

Every applicable method x every per-image metric (:mod:`interp.whole_dataset.metrics`: faithfulness,
robustness, randomisation, complexity and, where masks are given, localisation) over a split, a
folder or the shipped sample. The images go through the explain-dataset engine
(:func:`interp.explain_dataset`: batched, resumable shard by shard, in-process or on Ray, with a
progress bar); each map is made once and every metric of its method reads it. The results:

- ``report.parquet``: long format, one row per image x method x metric;
- ``summary.parquet`` / ``summary.csv``: per method and metric, the mean over images, its 95 %
  bootstrap interval and the method's rank, where methods whose intervals overlap share a rank
  (a rank is 1 + the number of methods that are better beyond doubt).

Published comparisons (Quantus; Hedström et al. 2023) agree that the ranking depends on the model
and the data, hence a card per model.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InterpError, MethodError

if TYPE_CHECKING:
    from .data import ImageList

REPORT = "report.parquet"
SUMMARY = "summary.parquet"
SKIPPED = "skipped.json"  # the methods that did not apply, and why
DEFAULT_LIMIT = 64  # images, spread over the classes: a card in minutes on two cores for a CIFAR model
MAX_DEFAULT_COST = 150  # methods up to this relative cost (forward-pass equivalents) are in by default
BOOTSTRAP = 1000


@dataclass(frozen=True)
class ReportCard:
    """A finished report card: the long table, the summary and where they are."""

    folder: Path
    long: pd.DataFrame  # image, path, label, prediction, method, metric, family, value
    summary: pd.DataFrame  # method, metric, family, higher_is_better, n, mean, low, high, rank
    skipped: Mapping[str, str] = field(default_factory=dict)  # method -> why it does not apply

    def ranks(self) -> pd.DataFrame:
        """Methods x metrics, each cell the method's rank for that metric (1: best)."""
        return self.summary.pivot(index="method", columns="metric", values="rank")


def default_methods() -> list[str]:
    """The methods a card runs unless told: all whose cost, in their quick options, is modest."""
    from .methods.records import REGISTRY

    return [name for name, record in REGISTRY.items() if record.relative_cost <= MAX_DEFAULT_COST]


def applicable(model, spec, methods: Sequence[str], options: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The methods of ``methods`` that fail on this model, each with why (one probe image each)."""
    from .methods import explain, probe_input
    from .whole_dataset.compute import method_options
    from .whole_dataset.job import Settings

    settings = Settings(model=spec.name, methods=tuple(methods), resolution=(1, 1), options=options)
    probe = probe_input(spec.input_size)
    failing = {}
    for m in methods:
        try:
            explain(model, probe, m, **method_options(spec, settings, m))
        except InterpError as exc:  # a method's refusal (CAM's is a LayerError), not a bug of ours
            failing[m] = str(exc)
    return failing


def report_card(
    model: str,
    methods: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    *,
    split: str | None = None,
    images: str | os.PathLike | ImageList | None = None,
    out: str | os.PathLike,
    limit: int | None = DEFAULT_LIMIT,
    engine: str = "local",
    batch_size: int = 16,
    data_dir: str | os.PathLike | None = None,
    device: str | None = None,
    seed: int = 0,
    progress: bool | Callable[[int, int], None] = True,
    command: str | None = None,
    models_files: Sequence[str] = (),
    **engine_options: Any,
) -> ReportCard:
    """Score methods with every metric over a model's images and rank them.

    Args:
        model: a registry name (interp's, torchvision's, or one you registered).
        methods: default :func:`default_methods`, less those that do not apply to the model (said
            in ``skipped``). Each runs with its quick options (``MethodSpec.quick``).
        metrics: default every one of :data:`interp.whole_dataset.metrics.METRICS`; the
            localisation ones score only images with a mask (``NAME.mask.png`` beside them).
        split: train, test (val) or sample (the shipped held-out images); default test.
        images: a folder instead (labels from class-named folders; masks beside the images), or
            an ``interp.data.ImageList`` (paths and labels).
        out: the results folder; the same call continues a stopped card where it stopped.
        limit: at most this many images, spread evenly over the order (so over the classes);
            None: every image.
        seed: the bootstrap's.
        engine_options: explain_dataset's other options (ray_address, actors, shard_size, ...).

    Raises:
        InterpError (and its kinds): a bad model, method, metric, split, folder or option; no
            method that applies.
    """
    from .data.samples import spread_indices
    from .hardware import resolve_device
    from .methods.records import get_method
    from .models import get_spec, load_model, load_models_files
    from .whole_dataset.job import Images
    from .whole_dataset.metrics import METRICS
    from .whole_dataset.run import _images, explain_dataset

    load_models_files(list(models_files))
    spec = get_spec(model)
    chosen_metrics = tuple(metrics) if metrics is not None else METRICS
    unknown = [m for m in chosen_metrics if m not in METRICS]
    if unknown or not chosen_metrics:
        raise InterpError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}")
    if limit is not None and limit < 1:
        raise InterpError(f"--limit must be at least 1, not {limit}")
    wanted = list(methods) if methods is not None else default_methods()
    for m in wanted:
        get_method(m)  # a clear error for an unknown name, before any work
    net = load_model(model, device=resolve_device(device) if engine == "local" else "cpu")
    options = {m: dict(get_method(m).quick) for m in wanted}
    skipped = applicable(net, spec, wanted, options)
    kept = [m for m in wanted if m not in skipped]
    if not kept:
        raise MethodError(f"no method applies to {model}: " + "; ".join(f"{m}: {why}" for m, why in skipped.items()))
    found = _images(spec, split, images, data_dir)
    if limit is not None and limit < len(found):
        pick = spread_indices(len(found), limit)
        found = Images(
            tuple(found.paths[i] for i in pick),
            tuple(found.labels[i] for i in pick),
            found.class_names,
            f"{limit} of the {len(found)} images of {found.source}, spread evenly",
        )
    command = command or f"interp.report_card({model!r}, ...)"
    explain_dataset(
        model,
        kept,
        images=found,
        out=out,
        metrics=chosen_metrics,
        options={m: options[m] for m in kept},
        batch_size=batch_size,
        engine=engine,
        device=device,
        progress=progress,
        command=command,
        loaded_model=net if engine == "local" else None,
        columns=["index"],
        **engine_options,
    )
    long = long_table(out)
    summary = summarise(long, seed=seed)
    folder = Path(out)
    long.to_parquet(folder / REPORT, index=False)
    summary.to_parquet(folder / SUMMARY, index=False)
    summary.to_csv(folder / "summary.csv", index=False)
    (folder / SKIPPED).write_text(json.dumps(skipped, indent=1) + "\n")
    return ReportCard(folder, long, summary, skipped)


def long_table(folder: str | os.PathLike) -> pd.DataFrame:
    """A run's metric columns as one row per image x method x metric (rows without a value, such as
    localisation where an image has no mask, are left out)."""
    from .whole_dataset.metrics import METRIC_TABLE, metric_column
    from .whole_dataset.store import read_manifest, read_results

    settings = read_manifest(folder)["settings"]
    methods, metrics = settings["methods"], settings["metrics"]
    columns = [metric_column(k, m) for k in metrics for m in methods]
    frame = read_results(folder, ["index", "path", "label", "prediction", *columns]).to_pandas()
    parts = []
    for k in metrics:
        for m in methods:
            part = frame[["index", "path", "label", "prediction"]].copy()
            part["method"], part["metric"], part["family"] = m, k, METRIC_TABLE[k].family
            part["value"] = frame[metric_column(k, m)].astype("float64")
            parts.append(part[part["value"].notna()])
    long = pd.concat(parts, ignore_index=True).rename(columns={"index": "image"})
    return long


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator, n: int = BOOTSTRAP) -> tuple[float, float]:
    """The 95 % percentile bootstrap interval of the mean of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 1:
        return float(values[0]), float(values[0])
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def tied_ranks(means: np.ndarray, low: np.ndarray, high: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Each method's rank: 1 + the number of methods whose interval lies wholly on the better side of
    its own; methods whose intervals overlap therefore share a rank."""
    if higher_is_better:
        better = low[None, :] > high[:, None]  # [i, j]: j beats i beyond doubt
    else:
        better = high[None, :] < low[:, None]
    return 1 + better.sum(1)


def summarise(long: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per method and metric: n, the mean, its 95 % bootstrap interval (low, high) and the tied rank."""
    from .whole_dataset.metrics import METRIC_TABLE

    rng = np.random.default_rng(seed)
    rows = []
    for (metric, method), group in long.groupby(["metric", "method"], sort=False):
        low, high = bootstrap_interval(group["value"].to_numpy(), rng)
        rows.append(
            {
                "method": method,
                "metric": metric,
                "family": METRIC_TABLE[metric].family,
                "higher_is_better": METRIC_TABLE[metric].higher_is_better,
                "n": len(group),
                "mean": float(group["value"].mean()),
                "low": low,
                "high": high,
            }
        )
    summary = pd.DataFrame(rows)
    summary["rank"] = 0
    for metric, group in summary.groupby("metric", sort=False):
        better = METRIC_TABLE[metric].higher_is_better
        summary.loc[group.index, "rank"] = tied_ranks(
            group["mean"].to_numpy(), group["low"].to_numpy(), group["high"].to_numpy(), better
        )
    return summary


def read_report_card(folder: str | os.PathLike) -> ReportCard:
    """A finished card from its folder.

    Raises:
        InterpError: the folder holds no finished card.
    """
    folder = Path(folder)
    if not (folder / SUMMARY).is_file():
        raise InterpError(f"{folder} holds no report card (no {SUMMARY}); run interp report-card first")
    skipped = json.loads((folder / SKIPPED).read_text()) if (folder / SKIPPED).is_file() else {}
    return ReportCard(folder, pd.read_parquet(folder / REPORT), pd.read_parquet(folder / SUMMARY), skipped)


def cli_command() -> str:
    return "python -m interp " + " ".join(shlex.quote(a) for a in sys.argv[1:])
