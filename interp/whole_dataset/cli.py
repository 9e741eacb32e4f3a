"""``python -m interp explain-dataset``: the command line of :func:`interp.whole_dataset.explain_dataset`."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from ..cli_options import options_of
from ..errors import InterpError


def _pair(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--resolution is H,W (two integers), not {text!r}") from None
    return h, w


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_parser(sub) -> None:
    """The explain-dataset sub-command."""
    p = sub.add_parser(
        "explain-dataset",
        help="predictions, maps and per-image metrics of a whole split or folder, "
        "as Parquet shards (resumable; in-process or on Ray)",
    )
    p.add_argument("model", help="registry name (python -m interp models), or a model of a models file")
    p.add_argument("--methods", type=_names, default=["grad_cam"], help="comma-separated, e.g. grad_cam,saliency")
    p.add_argument("--split", help="train, test (= val) or sample (the shipped held-out images); default test")
    p.add_argument("--images", help="a folder of images instead of a split (labels from class-named sub-folders)")
    p.add_argument("--out", required=True, help="results folder; rerun the same command to continue a stopped run")
    p.add_argument("--limit", type=int, help="the first N images only")
    p.add_argument(
        "--resolution",
        type=_pair,
        help="H,W of the stored maps (default: the layer's map size for CAMs only, else 56,56 at most the input)",
    )
    p.add_argument(
        "--metrics",
        type=_names,
        default=[],
        help="per image and method, e.g. deletion,insertion (interp report-card runs all)",
    )
    p.add_argument("--layer", help="layer of the CAM methods (default: the model's last conv stage)")
    p.add_argument("--checkpoint", help="weights file (default: the entry's checkpoint)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--shard-size", type=int, default=256, help="images per Parquet file")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument(
        "--ray-address",
        help="join a running Ray cluster (auto, or ray://HOST:10001); default: start Ray on this machine",
    )
    p.add_argument("--actors", type=int, help="Ray actors (default: one per GPU, else one per CPU)")
    p.add_argument("--gpus-per-actor", type=float, help="default 1 where the cluster has GPUs, else 0")
    p.add_argument("--data-dir", help="data root (default: $INTERP_DATA_DIR, else ./data)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    from ..hardware import DEVICE_HELP

    p.add_argument("--device", help=DEVICE_HELP + " (the in-process engine)")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> None:
    from .run import explain_dataset

    if args.limit is not None and args.limit < 1:
        raise InterpError(f"--limit must be at least 1, not {args.limit}")
    command = "python -m interp " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    what = "split images out limit resolution metrics layer checkpoint batch_size shard_size data_dir device"
    how = "engine ray_address actors gpus_per_actor progress"
    table = explain_dataset(
        args.model,
        args.methods,
        **options_of(args, f"{what} {how}"),
        command=command,
        models_files=args.models,
        columns=["index", "path", "label", "prediction", "error"],
    )  # the summary's; maps stay on disk
    from .results import as_frame, summary
    from .store import read_manifest

    found = summary(as_frame(table), read_manifest(args.out)["class_names"])
    print(
        json.dumps(
            {
                "out": args.out,
                "images": found["images"],
                "unreadable": found["unreadable"],
                "accuracy": None if found["accuracy"] is None else round(found["accuracy"], 4),
            },
            indent=1,
        )
    )
