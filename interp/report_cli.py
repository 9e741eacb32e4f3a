"""``python -m interp report-card``: the command line of :func:`interp.report_card` (:mod:`interp.report`)."""

from __future__ import annotations

import argparse

from .errors import InterpError
from .whole_dataset.cli import _names


def add_parser(sub) -> None:
    """The report-card sub-command."""
    from .report import DEFAULT_LIMIT

    p = sub.add_parser(
        "report-card",
        help="which attribution method to trust for a model: every method x every metric over its images, "
        "ranked with bootstrap intervals (Parquet; resumable)",
    )
    p.add_argument("model", help="registry name (python -m interp models), or a model of a models file")
    p.add_argument("--out", required=True, help="results folder; rerun the same command to continue a stopped card")
    p.add_argument("--methods", type=_names, help="comma-separated (default: every method of modest cost that applies)")
    p.add_argument("--metrics", type=_names, help="comma-separated (default: all; localisation needs masks)")
    p.add_argument("--split", help="train, test (= val) or sample (the shipped held-out images); default test")
    p.add_argument("--images", help="a folder instead (labels from class-named folders, NAME.mask.png masks beside)")
    p.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"at most N images, spread over the classes (default {DEFAULT_LIMIT}; 0: every image)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--data-dir", help="data root (default: $INTERP_DATA_DIR, else ./data)")
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    from .hardware import DEVICE_HELP

    p.add_argument("--device", help=DEVICE_HELP + " (the in-process engine)")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> None:
    from .report import cli_command, report_card

    if args.limit < 0:
        raise InterpError(f"--limit must be at least 1 (or 0: every image), not {args.limit}")
    card = report_card(
        args.model,
        args.methods,
        args.metrics,
        split=args.split,
        images=args.images,
        out=args.out,
        limit=args.limit or None,
        engine=args.engine,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        device=args.device,
        seed=args.seed,
        progress=args.progress,
        command=cli_command(),
        models_files=args.models,
    )
    for method, why in card.skipped.items():
        print(f"skipped {method}: {why}")
    ranks = card.ranks()
    print(f"Ranks (1: best; methods whose 95% intervals overlap share a rank), {card.long['image'].nunique()} images:")
    print(ranks.to_string())
    print(f"\nlong table: {args.out}/report.parquet; summary: {args.out}/summary.csv")
