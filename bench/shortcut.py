"""python -m bench.shortcut: which methods would have shown you the planted shortcut.

The report card of ``table2_cnn_cifar10_shortcut`` (trained with a magenta square on half of its
horse images) on CIFAR-10 test images of the other nine classes with the square planted, each
explained for the model's prediction, scored by the pointing game and relevance mass against the
square's mask; and, as the control, the same for ``table2_cnn_cifar10`` (the same architecture and
recipe on clean data), which does not use the square. A method that shows the shortcut points at
the square for the first model and not for the second.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

import interp
from interp.data import Shortcut, patched_test_set, write_patched_folder
from interp.report import report_card

SHORTCUT_MODEL, CLEAN_MODEL = "table2_cnn_cifar10_shortcut", "table2_cnn_cifar10"
METRICS = ["pointing_game", "relevance_mass"]


def shortcut_table(n_images: int = 300, out: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Per method, the mean pointing game and relevance mass of both models on ``n_images``
    patched test images, and counts: images, those the shortcut model calls the planted class,
    those the clean model does, and the square's share of the image."""
    spec = interp.get_spec(SHORTCUT_MODEL)
    shortcut = Shortcut(**spec.recipe["shortcut"])  # __post_init__ turns the JSON list colour into a tuple
    patched = patched_test_set(spec, shortcut, limit=n_images, progress=False)
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(out or scratch)
        folder = write_patched_folder(patched, where / "images").parent
        cards = {
            name: report_card(name, None, METRICS, images=folder, out=where / name, limit=None, progress=False)
            for name in (SHORTCUT_MODEL, CLEAN_MODEL)
        }
    table = pd.concat(
        {name: card.long.groupby(["method", "metric"])["value"].mean().unstack() for name, card in cards.items()},
        axis=1,
    ).sort_values((SHORTCUT_MODEL, "pointing_game"), ascending=False)
    first = {name: card.long.drop_duplicates("image") for name, card in cards.items()}
    counts = {
        "images": len(patched),
        "planted_class": spec.class_names[shortcut.planted_class],
        "called_planted": {n: int((f["prediction"] == shortcut.planted_class).sum()) for n, f in first.items()},
        "square_share": float(patched.masks.mean()),
        "skipped": {n: sorted(c.skipped) for n, c in cards.items()},
    }
    return table, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shortcut", description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300)
    args = parser.parse_args(argv)
    table, counts = shortcut_table(args.images)
    print(counts)
    print(table.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
