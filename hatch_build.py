"""What the wheel carries beside its two packages (interp, dashboard), each placed under a package
so that an installed interp finds it (interp.paths):

- the dashboard's entry and pages: app.py, pages/ and .streamlit/config.toml stay at the top of
  the checkout, where `streamlit run app.py` expects them, and go to ``dashboard/_app/``;
- the small shipped checkpoints with their model cards, to ``interp/_shipped/checkpoints/``. The
  big ones stay out, sharded or not (the 58 M-parameter AlexNets, 40 to 62 MB each; ResNet-50,
  47 MB): the wheel stays under PyPI's 100 MB, and interp finds them in a checkout or in
  $INTERP_HOME/checkpoints.

A build hook rather than ``force-include`` tables: those copy folders verbatim (``__pycache__``
included) and would list every checkpoint by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SHARD_MARK = "-of-"  # NAME-00001-of-00002.safetensors: part of a sharded checkpoint
# Checkpoints above this stay out of the wheel. The largest small one, AlexNet-GAP, is 7.5 MB; the
# smallest big one, an int4 AlexNet, is 38 MB.
WHEEL_CHECKPOINT_BYTES = 20 * 1000**2
RECORDS = ("scratch_overfit.json",)  # records among the checkpoints that are not model cards


def bundled_files(root: Path) -> dict[str, str]:
    """{source path: path inside the wheel} of the files above."""
    files = {
        root / "app.py": "dashboard/_app/app.py",
        root / ".streamlit" / "config.toml": "dashboard/_app/.streamlit/config.toml",
    }
    files.update({page: f"dashboard/_app/pages/{page.name}" for page in sorted((root / "pages").glob("*.py"))})
    checkpoints = root / "checkpoints"
    for weights in sorted(checkpoints.glob("*.safetensors")):
        if SHARD_MARK in weights.name or weights.stat().st_size > WHEEL_CHECKPOINT_BYTES:
            continue
        for f in (weights, weights.with_suffix(".json")):
            if f.is_file():
                files[f] = f"interp/_shipped/checkpoints/{f.name}"
    files.update(
        {
            checkpoints / name: f"interp/_shipped/checkpoints/{name}"
            for name in RECORDS
            if (checkpoints / name).is_file()
        }
    )
    return {str(source): target for source, target in files.items()}


class BundledFilesHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version != "editable":  # an editable install reads the checkout
            build_data["force_include"].update(bundled_files(Path(self.root)))
