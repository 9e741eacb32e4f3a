"""python -m bench [options]: see ``python -m bench --help`` and BENCHMARKS.md."""

import sys

from .cli import main

sys.exit(main())
