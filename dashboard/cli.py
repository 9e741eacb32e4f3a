"""The dashboard's own options, given after ``--``:
``streamlit run app.py -- --data-dir DIR --device cuda --models my_models.py``.

They set the same environment variables the library reads (INTERP_DATA_DIR, INTERP_DEVICE,
INTERP_MODELS), so the pages and every library call see one setting.
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from interp.models import MODELS_ENV

OPTIONS = {"--data-dir": "INTERP_DATA_DIR", "--device": "INTERP_DEVICE"}


def apply_command_line(argv: Sequence[str]) -> list[str]:
    """Read ``--data-dir`` and ``--device`` from the arguments after ``--`` into the environment.

    Returns:
        What was not understood (the caller shows it), empty when all was.
    """
    parser = argparse.ArgumentParser(prog="streamlit run app.py --", add_help=False, exit_on_error=False)
    parser.add_argument("--data-dir", help="data root with PACS/ and cifar10/ (default: $INTERP_DATA_DIR, else ./data)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda where available, else cpu)")
    parser.add_argument("--models", action="append", default=[], help="a models file (repeatable)")
    try:
        args, unknown = parser.parse_known_args(list(argv))
    except (argparse.ArgumentError, SystemExit) as exc:
        return [str(exc)]
    for option, variable in OPTIONS.items():
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if value:
            os.environ[variable] = value
    if args.models:  # added to those already named by $INTERP_MODELS
        named = [p for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p] + args.models
        os.environ[MODELS_ENV] = os.pathsep.join(dict.fromkeys(named))
    return unknown
