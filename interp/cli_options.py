"""Shared by the command line's sub-commands: parsed options handed on as keyword arguments."""

from __future__ import annotations

import argparse
from typing import Any


def options_of(args: argparse.Namespace, names: str) -> dict[str, Any]:
    """{name: args.name} for the space-separated option ``names`` (their dest names)."""
    return {name: getattr(args, name) for name in names.split()}
