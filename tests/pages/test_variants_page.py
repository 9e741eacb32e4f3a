"""The Enhancing AlexNet page and its report: every variant on both tasks, numbers from the cards."""

from __future__ import annotations

import json

import torch

from interp import get_spec
from interp.train.variants import architecture_text, variant_effects, variant_rows
from tests.apptest import no_errors, open_page


def _row(variant, task, accuracy, autocorrelation, minutes, parameters):
    return {
        "name": f"{variant}_{task}",
        "variant": variant,
        "task": task,
        "parameters": parameters,
        "trained": True,
        "accuracy": accuracy,
        "conv1_autocorrelation": autocorrelation,
        "minutes_per_epoch": minutes,
        "command": "...",
    }


def test_effects_are_stated_against_the_original_by_hand():
    rows = [
        _row("alexnet", "pacs_domain", 0.90, 0.70, 4.0, 58_297_732),
        _row("alexnet_avgpool", "pacs_domain", 0.875, 0.61, 3.5, 58_297_732),
        {
            "name": "alexnet_large_kernel_pacs_domain",
            "variant": "alexnet_large_kernel",
            "task": "pacs_domain",
            "parameters": 1,
            "trained": False,
            "command": "python -m interp train alexnet_large_kernel_pacs_domain",
        },
    ]
    effects = variant_effects(rows)
    assert effects["alexnet_avgpool_pacs_domain"] == (
        "-2.5 points of domain accuracy against alexnet (87.5% vs 90.0%), with 58.3 M parameters against "
        "58.3 M; conv1 autocorrelation 0.61 vs 0.70; 3.5 vs 4.0 min per epoch."
    )
    assert effects["alexnet_pacs_domain"] == ("90.0% domain accuracy, conv1 autocorrelation 0.70, 4.0 min per epoch.")
    assert effects["alexnet_large_kernel_pacs_domain"] == (
        "Not trained yet: `python -m interp train alexnet_large_kernel_pacs_domain`."
    )


def test_rows_cover_three_variants_on_two_tasks_with_true_parameter_counts():
    rows = variant_rows()
    assert [(r["variant"], r["task"]) for r in rows] == [
        (v, t) for t in ("pacs_domain", "pacs_class") for v in ("alexnet", "alexnet_large_kernel", "alexnet_avgpool")
    ]
    for r in rows:
        built = get_spec(r["name"]).build()
        assert r["parameters"] == sum(p.numel() for p in built.parameters())
        if r["trained"]:
            card = json.loads(get_spec(r["name"]).card_path.read_text())
            assert r["accuracy"] == card["metrics"]["accuracy"]


def test_architecture_is_print_model():
    name = "alexnet_large_kernel_pacs_class"
    torch.manual_seed(0)
    assert architecture_text(name) == str(get_spec(name).build())
    assert "kernel_size=(21, 21), stride=(8, 8)" in architecture_text(name)


def test_page_shows_every_variant_on_both_tasks():
    at = open_page("variants.py")
    table = at.dataframe[0].value
    assert len(table) == 6
    for task in ("pacs_domain", "pacs_class"):
        at.radio(key="variants_task").set_value(task).run()
        no_errors(at)
        assert [h.value for h in at.subheader] == ["alexnet", "alexnet_large_kernel", "alexnet_avgpool"]
        shown = [r for r in variant_rows() if r["task"] == task]
        accuracies = [m.value for m in at.metric if m.label == "Validation accuracy"]
        assert accuracies == [f"{r['accuracy']:.1%}" for r in shown if r["trained"]]
        untrained = [r["name"] for r in shown if not r["trained"]]
        assert len([i for i in at.info if "No weights yet" in i.value]) == len(untrained)
        assert [m.label for m in at.metric].count("Parameters") == 3
