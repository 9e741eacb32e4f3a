"""Command line: interp <command>, or python -m interp <command> (models, summary, fetch, train, evaluate,
explain, explain-dataset, visualize, scratch, bench, dashboard)."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from .cli_options import options_of
from .errors import InterpError
from .methods.records import REGISTRY


def _cmd_models(args: argparse.Namespace) -> None:
    from .models.tables import registry_rows

    rows = [
        (
            r["model"],
            r["task"],
            f"{r['parameters']:,}",
            "-" if r["held-out accuracy"] is None else f"{r['held-out accuracy']:.1%}",
            r["weights"],
            r["get weights"],
        )
        for r in registry_rows()
    ]
    _print_table(("model", "task", "parameters", "accuracy", "weights", "get weights"), rows)


def _cmd_summary(args: argparse.Namespace) -> None:
    from .models import get_spec, spec_layer_table

    spec = get_spec(args.name)
    rows, total = spec_layer_table(spec)
    print(f"{spec.name}: input {spec.input_label}")
    _print_table(
        ("layer", "type", "kernel", "padding", "stride", "output", "parameters"),
        [
            (
                r["layer"],
                r["type"],
                r["kernel"],
                r["padding"],
                r["stride"],
                "x".join(map(str, r["output"])),
                f"{r['parameters']:,}",
            )
            for r in rows
        ],
    )
    print(f"total parameters: {total:,}")


def _cmd_train(args: argparse.Namespace) -> None:
    from .hardware import resolve_device
    from .train import RunSettings, config_for, train

    arch_kwargs = {}
    if args.batch_norm is not None:
        arch_kwargs["batch_norm"] = args.batch_norm
    if args.dropout is not None:
        arch_kwargs["dropout"] = args.dropout
    if args.conv1_init_std is not None:
        arch_kwargs["conv1_init_std"] = args.conv1_init_std
    recipe = "epochs batch_size lr optimizer weight_decay schedule augment patience seed bf16 input_size init_weights"
    data = "limit_train limit_val imbalance beta gamma reweight_from"
    cfg = config_for(args.name, **options_of(args, f"{recipe} {data}"), arch_kwargs=arch_kwargs or None)
    settings = RunSettings.given(
        **options_of(args, "data_dir out threads progress"), device=str(resolve_device(args.device))
    )
    command = "python -m interp " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        card = train(args.name, cfg, settings, resume=args.resume, command=command)
    except KeyboardInterrupt:
        sys.exit(130)
    m = card["metrics"]
    print(
        json.dumps(
            {
                "model": args.name,
                "accuracy": m["accuracy"],
                "split": m["split"],
                **({"patch_flip_rate": m["patch_flip_rate"]} if "patch_flip_rate" in m else {}),
                "conv1_autocorrelation": card["conv1_autocorrelation"],
                "best_epoch": card["best_epoch"],
                "wall_time_s": card["wall_time_s"],
                "throughput": card["throughput"],
            },
            indent=1,
        )
    )


def _cmd_fetch(args: argparse.Namespace) -> None:
    from .models import get_spec, torchvision_state_dict, torchvision_weights_file

    spec = get_spec(args.name)
    if not spec.weights_from_torchvision:
        raise InterpError(
            f"{spec.name} does not use downloaded weights: "
            + ("its checkpoint is here" if spec.checkpoint else f"python -m interp train {spec.name}")
        )
    torchvision_state_dict(spec.arch)  # downloads into the torch cache, or says why it cannot
    print(f"{spec.name}: torchvision's weights are in {torchvision_weights_file(spec.arch)}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .hardware import resolve_device
    from .train import evaluate

    device = resolve_device(args.device)
    print(json.dumps(evaluate(args.name, args.checkpoint, args.data_dir, args.limit, device=device), indent=1))


def _cmd_explain(args: argparse.Namespace) -> None:
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from .data import load_image, preprocess, resize_center_crop
    from .figures import normalize, overlay
    from .hardware import resolve_device
    from .methods.explain import explain
    from .methods.records import get_method
    from .models import checkpoint_spec, load_model

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise InterpError(f"--out must end in .png (an overlay) or .npy (the raw map), not {out.name!r}")
    method = get_method(args.method)
    spec = checkpoint_spec(args.model, args.checkpoint)  # a torchvision checkpoint's own classes
    model = load_model(args.model, args.checkpoint, device=resolve_device(args.device))
    image = load_image(args.image)
    layer = args.layer or spec.target_layer  # None: the method's own default layer
    # superpixels are found on the image as people see it: undo the model's normalisation
    options: dict[str, Any] = dict(mean=spec.mean, std=spec.std) if method.needs_stats else {}
    e = explain(
        model,
        preprocess(image, spec),
        args.method,
        target=args.target,
        layer=layer if method.needs_layer else None,
        **options,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, e.map)
    else:
        # Maps with one value per pixel (the CAMs, occlusion, LIME, ...) are scaled min..max; channel maps by |value|.
        heat = normalize(e.spatial(), "minmax" if method.spatial else "percentile")
        Image.fromarray(overlay(resize_center_crop(image, spec.input_size), heat)).save(out)
    print(
        f"{out}: {e.method} for class {e.target} ({spec.class_names[e.target]}, p={e.probability:.3f})"
        + (f", layer {e.layer}" if e.layer else "")
    )


def _add_visualize_parser(sub) -> None:
    from .visualize import add_arguments, command

    p = sub.add_parser(
        "visualize",
        help="images that maximise channels of a layer (PNG) and a JSON summary against the best held-out images",
    )
    add_arguments(p)
    _add_device_option(p)
    p.set_defaults(func=command)


def _cmd_scratch(args: argparse.Namespace) -> None:
    from dataclasses import fields

    from .scratch import OverfitSettings, overfit, write_record

    given = {f.name: getattr(args, f.name) for f in fields(OverfitSettings) if getattr(args, f.name) is not None}
    command = "python -m interp " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    record = overfit(OverfitSettings(**given), args.data_dir, command=command)
    path = write_record(record, args.out) if args.out else write_record(record)
    if record["note"]:
        print(record["note"], file=sys.stderr)
    print(
        json.dumps(
            {
                "record": str(path),
                "final_accuracy": record["final_accuracy"],
                "final_loss": record["epochs"][-1]["loss"],
                "wall_time_s": record["wall_time_s"],
            },
            indent=1,
        )
    )


def _add_scratch_parser(sub) -> None:
    p = sub.add_parser(
        "scratch",
        help="overfit a few CIFAR-10 training images with the numpy-only CNN "
        "(interp.scratch); writes the training curve as JSON",
    )
    p.add_argument("--images", type=int, help="training images, spread over the classes (default 50)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--data-dir", help="data root (default: $INTERP_DATA_DIR, else ./data)")
    p.add_argument("--out", help="record file (default: checkpoints/scratch_overfit.json)")
    p.set_defaults(func=_cmd_scratch)


def _bench_cli():
    """The benchmark's command line (``bench.cli``, the repository's ``bench`` package, which is not
    part of the library) and None, or None and why it cannot be imported. Run from a checkout, the
    repository root is put on sys.path."""
    from .paths import source_checkout

    root = source_checkout()
    if root is not None and (root / "bench" / "cli.py").is_file() and str(root) not in sys.path:
        sys.path.append(str(root))
    try:
        from bench import cli
    except ImportError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return cli, None


def _cmd_bench(args: argparse.Namespace) -> None:
    """``python -m interp bench``: hands over to ``python -m bench`` (the same options)."""
    if args.bench_cli is None:
        raise InterpError(
            "the benchmark is the repository's bench/ package, which cannot be imported here "
            f"({args.bench_error}); run `python -m bench` from a checkout of the repository"
        )
    args.bench_cli.run_command(args, "python -m interp " + " ".join(shlex.quote(a) for a in sys.argv[1:]))


def _print_table(header: tuple[str, ...], rows: list[tuple]) -> None:
    cells = [tuple(map(str, header))] + [tuple(map(str, r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for j, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _add_device_option(p: argparse.ArgumentParser) -> None:
    """--device on a command that runs a model (resolved, and checked, by hardware.resolve_device)."""
    from .hardware import DEVICE_HELP

    p.add_argument("--device", help=DEVICE_HELP)


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a registry entry (defaults: the entry's recipe)")
    p.add_argument("name")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"))
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=("onecycle", "cosine", "none"))
    switch = argparse.BooleanOptionalAction
    p.add_argument("--augment", action=switch, default=None)
    p.add_argument("--batch-norm", action=switch, default=None, help="batch norm after each conv (where switchable)")
    p.add_argument("--dropout", type=float, help="dropout probability (architectures that have it)")
    small_start = "start conv1 from N(0, std^2) (AlexNets: a small start lets the data shape the first-layer filters)"
    p.add_argument("--conv1-init-std", type=float, help=small_start)
    p.add_argument("--patience", type=int, help="early stopping: epochs without a better validation loss")
    p.add_argument("--seed", type=int)
    long_tail = "cut the training split to a long tail with n_max / n_min = this ratio (10, 50, 100; cifar10lt: 100)"
    p.add_argument("--imbalance", type=float, help=long_tail)
    balanced = "class-balanced loss: weights 1 / effective number of samples (0: off; Cui et al. tune 0.9 ... 0.9999)"
    p.add_argument("--beta", type=float, help=balanced)
    p.add_argument("--gamma", type=float, help="focal loss: down-weights easy samples by (1 - p_t)^gamma (0: off)")
    deferred = (
        "deferred re-weighting (Cao et al. 2019): --beta's class weights apply from this epoch on, plain loss before"
    )
    p.add_argument("--reweight-from", type=int, metavar="EPOCH", help=deferred)
    p.add_argument("--data-dir", help="data root (default: $INTERP_DATA_DIR, else ./data)")
    p.add_argument("--out", help="weights file (default: checkpoints/NAME.safetensors)")
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 autocast (default: where the CPU has native bf16; float32 weights either way)",
    )
    p.add_argument("--threads", type=int)
    p.add_argument("--input-size", type=int, help="another input size where allowed (transfer: 112)")
    restart = (
        "start from this weights file: for transfer, ImageNet weights instead of the download; for other "
        "entries, a checkpoint of the same architecture (a warm restart: a new cycle from trained weights)"
    )
    p.add_argument("--init-weights", help=restart)
    p.add_argument("--limit-train", type=int, help="train on N images spread over the split (smoke runs)")
    p.add_argument("--limit-val", type=int)
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default on; epoch summaries are printed either way)",
    )
    p.add_argument("--resume", action="store_true", help="continue a stopped run from its saved state")
    _add_device_option(p)
    p.set_defaults(func=_cmd_train)


def _add_evaluate_and_explain_parsers(sub) -> None:
    p = sub.add_parser("evaluate", help="held-out accuracy, per-class accuracy and confusion matrix as JSON")
    p.add_argument("name")
    p.add_argument("--checkpoint", help="weights file (default: the entry's checkpoint)")
    p.add_argument("--data-dir")
    p.add_argument("--limit", type=int, help="evaluate on N held-out images only")
    _add_device_option(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("explain", help="attribution map of an image: an overlay (.png) or the raw map (.npy)")
    p.add_argument("--model", required=True, help="registry name (see: python -m interp models)")
    # Checked once the models files have run (they may register methods), against the method records.
    p.add_argument(
        "--method",
        required=True,
        metavar="METHOD",
        help="an attribution method: " + ", ".join(REGISTRY) + ", or one a models file registers",
    )
    p.add_argument("--image", required=True, help="image file")
    p.add_argument("--target", type=int, help="class index to explain (default: the prediction)")
    p.add_argument(
        "--layer",
        help="layer for cam / grad_cam / guided_grad_cam / the CAM family "
        "(default: the last conv stage, read from the model)",
    )
    p.add_argument("--checkpoint", help="weights file (default: the entry's checkpoint)")
    p.add_argument("--out", required=True, help="output file: .png (overlay) or .npy (raw map)")
    _add_device_option(p)
    p.set_defaults(func=_cmd_explain)


def _add_bench_parser(sub) -> None:
    cli, why = _bench_cli()  # the options are bench.cli's; without it, any arguments lead to the error
    p = sub.add_parser(
        "bench",
        help="time the methods against their floor and the peer libraries, the dashboard "
        "and training (python -m bench; see BENCHMARKS.md)",
        **({"description": cli.DESCRIPTION} if cli else {"prefix_chars": "+", "add_help": False}),
    )
    if cli:
        cli.add_arguments(p)
    else:
        p.add_argument("arguments", nargs="*")
    p.set_defaults(func=_cmd_bench, bench_cli=cli, bench_error=why)


def _streamlit_config_flags(app: Path) -> list[str]:
    """The dashboard's .streamlit/config.toml beside app.py as command-line flags, so that it applies
    whatever folder the command runs from (Streamlit reads that file from the working folder only)."""
    import tomllib

    config = app.parent / ".streamlit" / "config.toml"
    if not config.is_file():
        return []
    flags = []
    for section, values in tomllib.loads(config.read_text()).items():
        for key, value in values.items():
            flags += [f"--{section}.{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return flags


def _cmd_dashboard(args: argparse.Namespace) -> None:
    """``interp dashboard``: ``streamlit run app.py`` of this installation (a clone's or the wheel's)."""
    import subprocess
    from importlib.util import find_spec

    from .paths import dashboard_app

    app = dashboard_app()
    if find_spec("streamlit") is None or app is None:
        raise InterpError(
            "the dashboard is not installed with this interp: pip install 'interp[dashboard]' "
            "(or run `streamlit run app.py` in a clone)"
        )
    command = [sys.executable, "-m", "streamlit", "run", str(app), *_streamlit_config_flags(app)]
    if args.port:
        command += ["--server.port", str(args.port)]
    command.append("--")
    for option in ("data_dir", "device"):
        if getattr(args, option):
            command += [f"--{option.replace('_', '-')}", getattr(args, option)]
    for models_file in args.models:
        command += ["--models", str(Path(models_file).resolve())]
    try:
        returned = subprocess.call(command)
    except KeyboardInterrupt:  # Ctrl-C stops the server: a normal way to end
        returned = 0
    if returned:
        raise InterpError(f"the dashboard's server stopped with exit status {returned}")


def _add_dashboard_parser(sub) -> None:
    p = sub.add_parser("dashboard", help="start the dashboard in the browser (streamlit run app.py)")
    p.add_argument("--port", type=int, help="the server's port (default: Streamlit's, 8501)")
    p.add_argument("--data-dir", help="data root with PACS/ and cifar10/ (default: $INTERP_DATA_DIR)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda where available)")
    p.set_defaults(func=_cmd_dashboard)


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per task."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="interp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"interp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("models", help="list the registry: parameters, checkpoint, accuracy")
    p.set_defaults(func=_cmd_models)
    p = sub.add_parser("summary", help="per-layer table of a model: kernel, padding, stride, output, parameters")
    p.add_argument("name")
    p.set_defaults(func=_cmd_summary)
    p = sub.add_parser("fetch", help="download an entry's torchvision weights into the torch cache (once)")
    p.add_argument("name")
    p.set_defaults(func=_cmd_fetch)
    _add_train_parser(sub)
    _add_evaluate_and_explain_parsers(sub)
    from .whole_dataset.cli import add_parser as _add_dataset_parser

    _add_dataset_parser(sub)
    from .report_cli import add_parser as _add_report_card_parser

    _add_report_card_parser(sub)
    _add_visualize_parser(sub)
    _add_scratch_parser(sub)
    _add_bench_parser(sub)
    _add_dashboard_parser(sub)
    for name, command in sub.choices.items():  # every command knows the user's models
        if name == "bench":  # its --models names registry entries; user models come by $INTERP_MODELS
            continue
        command.add_argument(
            "--models",
            action="append",
            metavar="FILE",
            default=[],
            help="a models file that calls interp.register_model (repeatable; also $INTERP_MODELS)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `python -m interp models | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    from .models import load_models_files

    for error in load_models_files(getattr(args, "models", None) or []).values():
        print(f"warning: {error}", file=sys.stderr)  # the rest of interp works without that file's models
    try:
        args.func(args)
    except InterpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
