"""The benchmark: ``python -m bench`` (also ``python -m interp bench``); not part of the library.

Per model, method and batch size: interp's time per image, its floor (the bare forward, or
forward+backward, pass) and the peers' times (pytorch-grad-cam, torch-cam, Captum, Zennit) on the same
model object and inputs in the same process; plus the dashboard's re-render and cold start and
the training loop's throughput. See BENCHMARKS.md for what each field means.
"""

from .cases import ALL_METHODS, EXTRA_METHODS, LRP_METHODS, METHODS, MODELS, MORE_METHODS
from .peers import PEER_METHODS, PEERS
from .report import markdown_report, text_report, write_markdown
from .run import QUICK, Settings, run_benchmark

__all__ = [
    "ALL_METHODS",
    "EXTRA_METHODS",
    "LRP_METHODS",
    "METHODS",
    "MORE_METHODS",
    "MODELS",
    "PEERS",
    "PEER_METHODS",
    "QUICK",
    "Settings",
    "markdown_report",
    "run_benchmark",
    "text_report",
    "write_markdown",
]
