"""Where interp keeps and finds its files, in a clone and in an installed wheel alike.

Checkpoints are looked for, first match wins, in:

1. ``$INTERP_HOME/checkpoints`` where ``INTERP_HOME`` is set: what ``interp train`` writes there,
   and the big checkpoints (the 58 M-parameter AlexNets) that do not travel in the wheel;
2. the checkpoints/ of the source checkout interp runs from (a clone, or an editable install);
3. the small checkpoints bundled in the wheel (``interp/_shipped/checkpoints``).

``interp train`` writes to the first of these that applies: ``$INTERP_HOME/checkpoints``, else the
checkout's checkpoints/, else ``~/.interp/checkpoints`` (an installed wheel is read-only).
The dashboard's files (app.py and pages/) are found the same way: bundled in the wheel
(``dashboard/_app``) or at the checkout's root.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "INTERP_HOME"
DEFAULT_HOME = Path("~/.interp")
PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "_shipped"  # only in a built wheel (hatch_build.py puts files there)


def source_checkout() -> Path | None:
    """The root of the source checkout that this interp package sits in, or None for an installed
    wheel. A checkout is recognised by its pyproject.toml naming the project beside the package."""
    root = PACKAGE_DIR.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "interp"' in pyproject.read_text(errors="replace"):
        return root
    return None


def interp_home() -> Path | None:
    """``$INTERP_HOME`` expanded, or None where it is not set."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def writable_checkpoint_dir() -> Path:
    """Where training writes checkpoints (see the module's docstring)."""
    home = interp_home()
    if home is not None:
        return home / "checkpoints"
    checkout = source_checkout()
    if checkout is not None:
        return checkout / "checkpoints"
    return DEFAULT_HOME.expanduser() / "checkpoints"


def read_only_checkpoint_dirs() -> list[Path]:
    """Folders searched after the writable one: the checkout's (where INTERP_HOME moved the writable
    one elsewhere) and the wheel's bundled checkpoints."""
    checkout = source_checkout()
    candidates = [checkout / "checkpoints" if checkout else None, BUNDLED_DIR / "checkpoints"]
    return [d for d in candidates if d is not None and d.is_dir()]


def dashboard_app() -> Path | None:
    """app.py of the dashboard: bundled in the wheel, or at the checkout's root; None if neither."""
    from importlib.util import find_spec

    found = find_spec("dashboard")  # located, not imported: interp never imports streamlit
    candidates = [Path(found.origin).resolve().parent / "_app" / "app.py"] if found and found.origin else []
    checkout = source_checkout()
    if checkout is not None:
        candidates.append(checkout / "app.py")
    return next((c for c in candidates if c.is_file()), None)
