"""The course's "Enhancing AlexNet" report: AlexNet and its two variants, each trained for both PACS
tasks, side by side from their model cards; each variant's effect stated from those numbers."""

from __future__ import annotations

from typing import Any, Sequence

from ..models.registry import get_spec
from ..models.tables import meta_model, parameter_count
from ..models.weights import read_card, weights_command

VARIANTS = ("alexnet", "alexnet_large_kernel", "alexnet_avgpool")
TASKS = ("pacs_domain", "pacs_class")
# What each variant changes, as the course's Figures 2-4 draw them.
CHANGES = {
    "alexnet": "the original (Figure 2): 11x11 conv1 at stride 4, three max-pools",
    "alexnet_large_kernel": "larger kernels and strides (21x21 conv1 at stride 8, 7x7 conv2 at stride 2, "
    "conv5 at stride 2) in place of the three pooling layers (Figure 3)",
    "alexnet_avgpool": "average pooling in place of each max-pool (Figure 4)",
}
TASK_LABELS = {"pacs_domain": "domain", "pacs_class": "class"}


def variant_rows(variants: Sequence[str] = VARIANTS, tasks: Sequence[str] = TASKS) -> list[dict[str, Any]]:
    """One row per (variant, task) registry entry: its parameter count and, where it is trained, the
    accuracy of its weights as shipped and in float32, its conv1 autocorrelation, epochs and time per
    epoch, and the command that trained it (or the one that would)."""
    rows = []
    for task in tasks:
        for arch in variants:
            spec = get_spec(f"{arch}_{task}")
            card = read_card(spec.card_path) if spec.checkpoint else None
            row: dict[str, Any] = {
                "name": spec.name,
                "variant": arch,
                "task": task,
                "parameters": parameter_count(spec),
                "trained": card is not None,
            }
            if card:
                epochs = card["history"]["epochs"]
                row.update(
                    accuracy=card["metrics"]["accuracy"],
                    float32_accuracy=card["metrics"].get("float32_accuracy"),
                    conv1_autocorrelation=card.get("conv1_autocorrelation"),
                    epochs=len(epochs),
                    kept_epoch=card.get("kept_epoch", card["best_epoch"]),
                    minutes_per_epoch=card["wall_time_s"] / 60 / max(len(epochs), 1),
                    command=card["command"],
                )
            else:
                row["command"] = weights_command(spec)
            rows.append(row)
    return rows


def architecture_text(name: str) -> str:
    """``print(model)`` of an entry, as the course asks for each variant (built on the meta device:
    no memory for its weights)."""
    return str(meta_model(get_spec(name)))


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f} M"


def variant_effects(rows: Sequence[dict[str, Any]], reference: str = "alexnet") -> dict[str, str]:
    """One sentence per variant and task on what the change did, from the rows' numbers, against
    ``reference`` on the same task; a variant or reference not trained yet says so."""
    by_key = {(r["variant"], r["task"]): r for r in rows}
    effects = {}
    for r in rows:
        base = by_key.get((reference, r["task"]))
        task = TASK_LABELS.get(r["task"], r["task"])
        if not r["trained"]:
            effects[r["name"]] = f"Not trained yet: `{r['command']}`."
            continue
        own = (
            f"{r['accuracy']:.1%} {task} accuracy, conv1 autocorrelation "
            f"{r['conv1_autocorrelation']:.2f}, {r['minutes_per_epoch']:.1f} min per epoch"
        )
        if r["variant"] == reference or base is None or not base["trained"]:
            effects[r["name"]] = (
                own[0].upper()
                + own[1:]
                + ("." if r["variant"] == reference else f"; {reference} on this task is not trained yet.")
            )
            continue
        gain = 100 * (r["accuracy"] - base["accuracy"])
        effects[r["name"]] = (
            f"{gain:+.1f} points of {task} accuracy against {reference} ({r['accuracy']:.1%} vs "
            f"{base['accuracy']:.1%}), with {_millions(r['parameters'])} parameters against "
            f"{_millions(base['parameters'])}; conv1 autocorrelation {r['conv1_autocorrelation']:.2f} vs "
            f"{base['conv1_autocorrelation']:.2f}; {r['minutes_per_epoch']:.1f} vs "
            f"{base['minutes_per_epoch']:.1f} min per epoch."
        )
    return effects
