"""Command line of the benchmark: ``python -m bench`` (``python -m interp bench`` hands over to it).

The options are defined here once; ``interp``'s ``bench`` sub-command adds them to its own
sub-parser with :func:`add_arguments` and runs :func:`run_command`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from interp.hardware import DEVICE_HELP

DESCRIPTION = (
    "Time interp's methods against their floor and the peer libraries (pytorch-grad-cam, "
    "torch-cam, Captum, Zennit), the dashboard and training (see BENCHMARKS.md)."
)


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _batch_sizes(value: str) -> list[int]:
    try:
        return [int(v) for v in _names(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated whole numbers expected, not {value!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options, on ``parser``."""
    p = parser
    p.add_argument("--quick", action="store_true", help="tiny batches and repeats: checks that every row runs")
    p.add_argument("--json", action="store_true", help="print one JSON object (machine, settings, rows)")
    p.add_argument("--out", help="also write the JSON object to this file")
    p.add_argument(
        "--markdown",
        help="write the results as Markdown to this file; in a file with the "
        "bench:results markers (BENCHMARKS.md) only the part between them is replaced",
    )
    p.add_argument("--threads", type=int, help="torch threads (default: $OMP_NUM_THREADS, else every core)")
    p.add_argument("--device", help=DEVICE_HELP.replace("(default:", "(models, inputs and peers; default:"))
    p.add_argument(
        "--models",
        type=_names,
        help="comma-separated registry names (default: alexnet_gap_pacs_class, nin_cifar10, resnet18_imagenet)",
    )
    p.add_argument(
        "--methods",
        type=_names,
        help="comma-separated methods (default: cam, grad_cam, guided_backprop, "
        "guided_grad_cam, saliency, integrated_gradients); also grad_cam_pp, xgrad_cam, hires_cam, "
        "layer_cam, score_cam, ablation_cam, eigen_cam, eigen_grad_cam, or cam_family for all eight; "
        "input_x_gradient, deeplift, gradient_shap, deconvolution, vargrad, occlusion, lime, kernel_shap; "
        "lrp, lrp_epsilon_gamma_box, lrp_alpha2_beta1, lrp_epsilon, or lrp_family for all four; "
        "fullgrad, dff, rise (RISE at its default 3000 masks; fewer with --quick, as its row says)",
    )
    p.add_argument("--batches", type=_batch_sizes, help="comma-separated batch sizes (default: 1,32; quick: 1,2)")
    p.add_argument("--repeats", type=int, help="timed repeats per case (median reported)")
    p.add_argument("--warmup", type=int, help="untimed calls before the repeats")
    p.add_argument("--dashboard", action=argparse.BooleanOptionalAction, default=True, help="dashboard rows")
    p.add_argument("--training", action=argparse.BooleanOptionalAction, default=True, help="training rows")
    p.add_argument(
        "--feature-vis",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="feature visualisation rows (batching, dataset-examples index)",
    )
    p.add_argument(
        "--datasets",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="whole-dataset rows (in-process and Ray engines, memory)",
    )
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar on stderr (default on)"
    )


def build_parser(prog: str = "python -m bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return parser


def run_command(args: argparse.Namespace, command: str) -> None:
    """Run the benchmark as ``args`` (from :func:`add_arguments`) asks; ``command`` is recorded in
    the results as the command line that produced them."""
    from . import markdown_report, run_benchmark, text_report, write_markdown

    chosen = {k: v for k, v in dict(models=args.models, methods=args.methods, batches=args.batches).items() if v}
    result = run_benchmark(
        quick=args.quick,
        repeats=args.repeats,
        warmup=args.warmup,
        threads=args.threads,
        dashboard=args.dashboard,
        training=args.training,
        feature_vis=args.feature_vis,
        datasets=args.datasets,
        progress=args.progress,
        device=args.device,
        **chosen,
    )
    result["command"] = command
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        write_markdown(args.markdown, markdown_report(result, command))
    print(json.dumps(result, indent=1) if args.json else text_report(result))


def main(argv: list[str] | None = None) -> int:
    """``python -m bench [options]``; 2 (with the message on stderr) on a bad model or method name,
    or a device this machine lacks."""
    from interp.errors import InterpError

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        run_command(args, "python -m bench " + shlex.join(argv))
    except InterpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
