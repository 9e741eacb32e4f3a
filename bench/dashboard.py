"""Dashboard rows: re-render after a slider change and cold start, both through Streamlit's AppTest, and
the first load of the biggest shipped model.

Each runs in a fresh Python process so that Streamlit is never imported into the benchmark's
process and a cold start is really cold. AppTest runs the page
scripts as a browser session would, without the websocket and the browser's own drawing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]  # the repository root: bench/ and app.py are in it
APP = REPO / "app.py"
RERENDER_TARGET_MS = 300.0
COLD_START_TARGET_MS = 5000.0
# Loading the course's 58 M-parameter AlexNet (int8 fc layers, two files) the first time a page asks
# for it: the wait behind the dashboard's "Loading model weights..." spinner.
MODEL_LOAD_TARGET_MS = 2000.0
BIG_MODEL = "alexnet_pacs_domain"


def run_child(
    kind: str, args: dict[str, Any], threads: int, timeout: float = 900.0, device: str | None = None
) -> tuple[dict[str, Any], float]:
    """Run ``bench.child`` in a fresh process (from the repository root, which is also put on
    PYTHONPATH); return its JSON (last stdout line) and the wall time of the whole process in ms."""
    return _run_python(["-m", "bench.child", kind, json.dumps(args)], threads, timeout, kind, device)


def _run_python(
    argv: list[str], threads: int, timeout: float = 900.0, label: str = "", device: str | None = None
) -> tuple[dict[str, Any], float]:
    """``device`` (if given) reaches the process as $INTERP_DEVICE, where the dashboard reads its choice."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    if device is not None:
        env["INTERP_DEVICE"] = device
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    wall_ms = 1000.0 * (time.perf_counter() - t0)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"benchmark process {label!r} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1]), wall_ms


# ---------------------------------------------------------------------------------------------
# In the child process


def child_rerender(warmup: int, repeats: int) -> dict[str, Any]:
    """Open the CAM page on its default (shipped) model, then time reruns after moving the
    opacity slider: the work a user waits for after each change, with the model loaded."""
    from streamlit.testing.v1 import AppTest  # only here: interp itself never imports streamlit

    at = AppTest.from_file(str(APP), default_timeout=600)
    at.run()
    at.switch_page("pages/cam.py").run()  # loads the model and fills the page's caches
    _check(at)
    values = [0.8, 0.3]
    times = []
    for i in range(warmup + repeats):
        slider = at.slider(key="cam_opacity")
        t0 = time.perf_counter()
        slider.set_value(values[i % 2]).run()
        elapsed = time.perf_counter() - t0
        _check(at)
        if i >= warmup:
            times.append(elapsed)
    model = at.selectbox(key="model").value
    return {"ms": 1000.0 * statistics.median(times), "all_ms": [round(1000.0 * t, 1) for t in times], "model": model}


# Run as `python -c`, not through bench.child: importing interp first would load torch
# before the clock starts and flatter the cold start.
_COLD_START = """
import json, sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
t1 = time.perf_counter()
at = AppTest.from_file(sys.argv[1], default_timeout=600)
at.run()
t2 = time.perf_counter()
problem = [e.value for e in at.exception] + [e.value for e in at.error]
if problem:
    sys.exit(f"the dashboard failed on its first run: {problem[0]}")
print(json.dumps({"ms": 1000.0 * (t2 - t1), "import_ms": 1000.0 * (t1 - t0)}))
"""


# Run as `python -c` in a fresh process: interp and torch are imported before the clock starts (the
# dashboard has them by the time a page loads a model); only load_model is timed. The checkpoint is
# argv[2], else the shipped one; without either, a randomly initialised model saved the same way is
# loaded instead. Only the file's header is read before the clock, so the load stays cold.
_MODEL_LOAD = """
import json, sys, tempfile, time
import torch, interp
from interp.models import read_metadata, save_checkpoint
name = sys.argv[1]
spec = interp.get_spec(name)
checkpoint, weights = sys.argv[2] or spec.checkpoint, "trained"
if checkpoint is None:
    torch.manual_seed(0)
    checkpoint = save_checkpoint(spec.build(), tempfile.mkdtemp() + "/m.safetensors", spec.arch)
    weights = "random, saved as the trained ones are"
stored = read_metadata(checkpoint).get("quantized", "float16").split(" ")[0]
t0 = time.perf_counter()
interp.load_model(name, checkpoint=checkpoint)
print(json.dumps({"ms": 1000.0 * (time.perf_counter() - t0), "weights": weights + ", " + stored}))
"""

# Run once as `python -c` before the timed loads: the shipped weights written again as
# save_checkpoint writes them today (an AlexNet shipped in int8 rows becomes int4 groups) into
# argv[2], so that both storage forms are timed on one model; prints the file to load ("" without
# shipped weights).
_RESAVE = """
import json, sys
import interp
from interp.models import save_checkpoint
name, folder = sys.argv[1], sys.argv[2]
spec = interp.get_spec(name)
path = ""
if spec.checkpoint is not None:
    path = str(save_checkpoint(interp.load_model(name), folder + "/m.safetensors", spec.arch))
print(json.dumps({"path": path}))
"""


def _check(at) -> None:
    if at.exception:
        raise RuntimeError(f"the dashboard raised: {at.exception[0].value}")
    if at.error:
        raise RuntimeError(f"the dashboard showed an error: {at.error[0].value}")


# ---------------------------------------------------------------------------------------------
# In the benchmark process


def dashboard_rows(
    warmup: int, repeats: int, cold_repeats: int, threads: int, device: str | None = None
) -> list[dict[str, Any]]:
    """The re-render row and the cold-start row (each with a note instead of numbers on failure);
    ``device`` is passed to the dashboard's processes as $INTERP_DEVICE."""
    rows: list[dict[str, Any]] = []
    base: dict[str, Any] = {"kind": "dashboard", "batch": None, "floor_ms": None, "ratio_to_floor": None, "peers": []}
    try:
        res, _ = run_child("rerender", {"warmup": warmup, "repeats": repeats}, threads, device=device)
        rows.append(
            {
                **base,
                "model": res["model"],
                "method": "dashboard_rerender",
                "ours_ms": res["ms"],
                "all_ms": res["all_ms"],
                "target_ms": RERENDER_TARGET_MS,
                "note": "CAM page, opacity slider moved, model loaded; median of "
                f"{repeats} reruns after {warmup} warm-up (AppTest: script run, no browser)",
            }
        )
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        rows.append(
            {
                **base,
                "model": None,
                "method": "dashboard_rerender",
                "ours_ms": None,
                "target_ms": RERENDER_TARGET_MS,
                "note": f"not measured: {exc}",
            }
        )
    try:
        runs = [
            _run_python(["-c", _COLD_START, str(APP)], threads, label="cold start", device=device)
            for _ in range(cold_repeats)
        ]
        rows.append(
            {
                **base,
                "model": None,
                "method": "dashboard_cold_start",
                "ours_ms": statistics.median(r["ms"] for r, _ in runs),
                "import_ms": statistics.median(r["import_ms"] for r, _ in runs),
                "process_ms": statistics.median(w for _, w in runs),
                "target_ms": COLD_START_TARGET_MS,
                "note": f"fresh process each time, median of {cold_repeats}: AppTest.from_file to the end "
                "of the Home page's first run; import_ms: importing Streamlit's AppTest; "
                "process_ms: the whole process, interpreter start included",
            }
        )
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        rows.append(
            {
                **base,
                "model": None,
                "method": "dashboard_cold_start",
                "ours_ms": None,
                "target_ms": COLD_START_TARGET_MS,
                "note": f"not measured: {exc}",
            }
        )

    def cold_load_row(ms: float | None, note: str) -> dict[str, Any]:
        return {
            **base,
            "model": BIG_MODEL,
            "method": "model_cold_load",
            "ours_ms": ms,
            "target_ms": MODEL_LOAD_TARGET_MS,
            "note": note,
        }

    with tempfile.TemporaryDirectory() as scratch:
        forms = {"as shipped": ""}
        try:
            written = _run_python(["-c", _RESAVE, BIG_MODEL, scratch], threads, label="resave")[0]["path"]
            if written:  # no shipped weights: the random model below is timed once
                forms["written again"] = written
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            rows.append(cold_load_row(None, f"not measured (written again): {exc}"))
        for how, checkpoint in forms.items():
            try:
                argv = ["-c", _MODEL_LOAD, BIG_MODEL, checkpoint]
                loads = [_run_python(argv, threads, label="model load", device=device)[0] for _ in range(cold_repeats)]
                note = (
                    f"load_model in a fresh process (interp imported), median of {cold_repeats}; "
                    f"weights {how}: {loads[0]['weights']}"
                )
                rows.append(cold_load_row(statistics.median(r["ms"] for r in loads), note))
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                rows.append(cold_load_row(None, f"not measured ({how}): {exc}"))
    return rows
