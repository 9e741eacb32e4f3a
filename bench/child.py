"""Entry of the benchmark's fresh processes: python -m bench.child KIND JSON-ARGS.

Prints one JSON object as its last line of stdout. Run with the repository root as the working
directory and on PYTHONPATH (``bench.dashboard.run_child`` does both).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable


def main(argv: list[str]) -> int:
    kind, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    fn: Callable[..., dict[str, Any]]  # each kind's entry takes its own keyword arguments
    if kind == "rerender":
        from .dashboard import child_rerender as fn
    elif kind == "train_loop":
        from .training import child_train_loop as fn
    elif kind == "bare_loop":
        from .training import child_bare_loop as fn
    elif kind == "dataset_engine":
        from .whole_dataset import child_engine as fn
    elif kind == "dataset_bare":
        from .whole_dataset import child_bare_passes as fn
    else:
        print(f"unknown benchmark child {kind!r}", file=sys.stderr)
        return 2
    print(json.dumps(fn(**args)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
