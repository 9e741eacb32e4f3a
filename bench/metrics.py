"""python -m bench.metrics: the batched metrics (interp.methods.trust.batched) against Quantus.

Per metric, on the same held-out images of nin_cifar10 and the same saliency maps: the wall time of
ours and of Quantus (their speed-up), the largest difference between the two results (the settings
are those under which tests/methods/test_quantus_agreement.py shows them equal, the noise of the
stochastic metrics replayed into Quantus), and the peak memory of each at 8, 16 and 32 images.

Times come from one child process that alternates ours and Quantus and keeps the fastest of a few
calls. Memory comes from a fresh child per (implementation, number of images), each metric called
once: the rise of the resident set (VmHWM, reset before each metric) above what the child held
before the call, so the images, maps and model are not counted. Every child first runs every metric
on four images (lazy imports, first-call costs). CIFAR-10 has no object masks: the localisation
metrics use the centre half of each image as its mask.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

MODEL = "nin_cifar10"
SIZES = (8, 16, 32)
SAMPLES = 10  # noisy copies per image for max-sensitivity and the local Lipschitz estimate
PER_IMAGE: dict[str, Any] = {"normalise_axes": (1, 2, 3)}  # Quantus's max-scaling per map
QUIET: dict[str, Any] = {"disable_warnings": True, "display_progressbar": False}
ROAD_OURS, ROAD_QUANTUS = (30, 60, 75), [10.0, 20.0, 25.0]  # Quantus ranks C x H x W positions: a third


class _Replay:
    """A Quantus perturb_func that adds our noise draws in order (draw k to every image at call k)."""

    def __init__(self, noise: torch.Tensor):
        self.noise, self.calls = noise.reshape(len(noise), -1).numpy(), 0

    def __call__(self, arr: np.ndarray, indices: np.ndarray, **_: Any) -> np.ndarray:
        out = arr + self.noise[self.calls % len(self.noise)]
        self.calls += 1
        return out


def _setup(n: int) -> dict[str, Any]:
    """The model, n held-out images, their predicted classes, saliency maps and centre masks."""
    import interp
    from interp.data import held_out_batch

    model = interp.load_model(MODEL, device="cpu")
    x = held_out_batch(interp.get_spec(MODEL), n).x
    with torch.no_grad():
        y = model(x).argmax(1)
    maps = np.asarray(interp.explain(model, x, "saliency", target=y).spatial(), dtype=np.float64).reshape(n, 32, 32)
    masks = np.zeros_like(maps, dtype=bool)
    masks[:, 8:24, 8:24] = True
    return {"model": model, "x": x, "y": y.numpy(), "maps": maps, "masks": masks}


def _saliency_np(model: torch.nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: Any) -> np.ndarray:
    """interp's saliency as Quantus calls an explain_func: numpy in, (N, 1, H, W) numpy out."""
    import interp

    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    maps = np.asarray(interp.explain(model, x, "saliency", target=torch.as_tensor(targets)).spatial())
    return maps.reshape(len(x), 1, *x.shape[-2:]).astype(np.float64)


def _ssim_2d(a: np.ndarray, b: np.ndarray, batched: bool = False, **_: Any) -> list[float]:
    from skimage.metrics import structural_similarity

    return [structural_similarity(u.reshape(32, 32), v.reshape(32, 32), data_range=1.0) for u, v in zip(a, b)]


def _cases(d: dict[str, Any], impl: str) -> dict[str, Callable[[], np.ndarray]]:
    """Metric -> a call of ``impl`` ("ours" or "quantus") on the data, returning per-image scores."""
    from interp.methods import trust
    from interp.methods.trust import batched

    model, x, y, maps, masks = d["model"], d["x"], d["y"], d["maps"], d["masks"]
    n, shape = len(x), tuple(x.shape[1:])
    if impl == "ours":
        fn = batched.explainer("saliency")
        return {
            "sparseness": lambda: batched.sparseness(maps),
            "complexity": lambda: batched.complexity(maps),
            "effective_complexity": lambda: batched.effective_complexity(maps),
            "max_sensitivity": lambda: batched.max_sensitivity(model, x, fn, y, n_samples=SAMPLES),
            "local_lipschitz": lambda: batched.local_lipschitz(model, x, fn, y, n_samples=SAMPLES),
            "random_logit": lambda: batched.random_logit(model, x, fn, y),
            "pointing_game": lambda: batched.pointing_game(maps, masks),
            "energy_pointing_game": lambda: batched.energy_pointing_game(maps, masks),
            "relevance_mass_accuracy": lambda: batched.relevance_mass_accuracy(maps, masks),
            "mprt": lambda: batched.model_parameter_randomisation(model, x, fn, y).similarity.ravel(),
            "road": lambda: batched.road(model, x, maps, y, ROAD_OURS, noise=0.0).kept.mean(0),
            "average_drop": lambda: batched.average_drop(model, x, maps, y)["drop"],
        }
    import quantus

    xs, a = x.numpy(), maps[:, None]
    q = dict(model=model, x_batch=xs, y_batch=y, device="cpu")
    stacked = np.concatenate([a, np.full((n, 2, 32, 32), -1e9)], 1)  # our map in channel 0 (see ROAD's test)

    def mprt() -> np.ndarray:
        found: Any = quantus.MPRT(abs=True, normalise=False, seed=42, **QUIET)(explain_func=_saliency_np, **q)
        return np.stack([found[k] for k in list(found)[1:]], 1).ravel()

    def road() -> np.ndarray:
        found: Any = quantus.ROAD(percentages=ROAD_QUANTUS, noise=0.0, normalise=False, **QUIET)(a_batch=stacked, **q)
        return np.array([found[p] for p in ROAD_QUANTUS])

    def loop_drop() -> np.ndarray:  # no Quantus metric: interp's one-image function, image by image
        return np.array([trust.average_drop(model, x[i], maps[i], int(y[i]))["drop"] for i in range(n)])

    def robust(cls: Any, noise: torch.Tensor, **options: Any) -> np.ndarray:
        metric = cls(nr_samples=SAMPLES, normalise_func_kwargs=PER_IMAGE, perturb_func=_Replay(noise), **options)
        return np.asarray(metric(explain_func=_saliency_np, x_batch=xs.astype(np.float64), **_but(q, "x_batch")))

    return {
        "sparseness": lambda: np.asarray(quantus.Sparseness(normalise=False, **QUIET)(a_batch=a, **q)),
        "complexity": lambda: np.asarray(quantus.Complexity(normalise=False, **QUIET)(a_batch=a, **q)),
        "effective_complexity": lambda: np.asarray(
            quantus.EffectiveComplexity(normalise_func_kwargs=PER_IMAGE, **QUIET)(a_batch=a, **q)
        ),
        "max_sensitivity": lambda: robust(
            quantus.MaxSensitivity, batched.uniform_noise(SAMPLES, shape, 0.2), normalise=True, **QUIET
        ),
        "local_lipschitz": lambda: robust(
            quantus.LocalLipschitzEstimate, batched.gaussian_noise(SAMPLES, shape, 0.1), **QUIET
        ),
        "random_logit": lambda: np.asarray(
            quantus.RandomLogit(
                num_classes=10, seed=0, abs=True, normalise_func_kwargs=PER_IMAGE, similarity_func=_ssim_2d, **QUIET
            )(explain_func=_saliency_np, **q)
        ),
        "pointing_game": lambda: np.asarray(
            quantus.PointingGame(normalise=False, **QUIET)(a_batch=a, s_batch=masks[:, None], **q), dtype=float
        ),
        "energy_pointing_game": lambda: np.asarray(
            quantus.AttributionLocalisation(abs=False, normalise=False, positive_attributions=True, **QUIET)(
                a_batch=a, s_batch=masks[:, None], **q
            )
        ),
        "relevance_mass_accuracy": lambda: np.asarray(
            quantus.RelevanceMassAccuracy(normalise=False, **QUIET)(a_batch=a, s_batch=masks[:, None], **q)
        ),
        "mprt": mprt,
        "road": road,
        "average_drop": loop_drop,
    }


def _but(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _warm_up(impls: tuple[str, ...]) -> None:
    """Every metric once on four images: lazy imports and first-call costs out of the clock."""
    warnings.simplefilter("ignore")
    d = _setup(4)
    for impl in impls:
        for metric_fn in _cases(d, impl).values():
            try:
                metric_fn()
            except Exception:  # the measured call reports it
                pass


def _call(metric_fn: Callable[[], np.ndarray]) -> dict[str, Any]:
    """One call: seconds, peak MB of resident memory above the start, the scores (or the error)."""
    from bench.training import proc_status_kb

    # Hand freed heap pages back first, so that memory an earlier call freed is not reused unseen
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    start_kb = proc_status_kb("VmRSS") or 0
    t = time.perf_counter()
    try:
        scores = metric_fn()
    except Exception as exc:  # a peer's failure is a result of the benchmark
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"}
    seconds = time.perf_counter() - t
    peak_mb = max(0, (proc_status_kb("VmHWM") or 0) - start_kb) / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "scores": np.asarray(scores, float).tolist()}


def child_memory(impl: str, n: int) -> dict[str, dict[str, Any]]:
    """Every metric of ``impl`` once on ``n`` images, in this fresh process."""
    _warm_up((impl,))
    return {name: _call(fn) for name, fn in _cases(_setup(n), impl).items()}


def child_timing(n: int, repeats: int) -> dict[str, dict[str, dict[str, Any]]]:
    """Every metric of both on ``n`` images, ours and Quantus alternating, ``repeats`` times; the
    fastest of each (the machine may be busy) with the scores of its last call."""
    _warm_up(("ours", "quantus"))
    d = _setup(n)
    cases = {impl: _cases(d, impl) for impl in ("ours", "quantus")}
    best: dict[str, dict[str, dict[str, Any]]] = {impl: {} for impl in cases}
    for _ in range(repeats):
        for name in cases["ours"]:
            for impl in cases:
                got, had = _call(cases[impl][name]), best[impl].get(name)
                if had is None or "error" in got or got["seconds"] < had.get("seconds", np.inf):
                    best[impl][name] = got
    return best


def _run_child(*args: str) -> Any:
    cmd = [sys.executable, "-m", "bench.metrics", "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


Results = dict[str, dict[str, dict[str, Any]]]  # implementation -> metric -> one call's record


def markdown(timing: Results, memory: dict[int, Results]) -> str:
    """The table: per metric, the fastest times and speed-up, the largest difference of the scores,
    the peak MB at each size."""
    sizes = sorted(memory)
    mem = " / ".join(str(s) for s in sizes)
    lines = [
        f"| metric | ours (s) | Quantus (s) | speed-up | max abs diff | ours peak MB ({mem}) "
        f"| Quantus peak MB ({mem}) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ours in timing["ours"].items():
        theirs = timing["quantus"][name]
        peaks = [" / ".join(_peak(memory[s][impl][name]) for s in sizes) for impl in ("ours", "quantus")]
        if "error" in ours or "error" in theirs:
            lines.append(f"| {name} | {_seconds(ours)} | {_seconds(theirs)} | - | - | {peaks[0]} | {peaks[1]} |")
            continue
        diff = np.nanmax(np.abs(np.asarray(ours["scores"]) - np.asarray(theirs["scores"])))
        lines.append(
            f"| {name} | {ours['seconds']:.3f} | {theirs['seconds']:.3f} | "
            f"{theirs['seconds'] / max(ours['seconds'], 1e-9):.1f}x | {diff:.1e} | {peaks[0]} | {peaks[1]} |"
        )
    return "\n".join(lines)


def _seconds(row: dict[str, Any]) -> str:
    return row["error"] if "error" in row else f"{row['seconds']:.3f}"


def _peak(row: dict[str, Any]) -> str:
    return "fails" if "error" in row else f"{row['peak_mb']:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.metrics", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="numbers of images (default 8 16 32)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls of each, the fastest kept (default 3)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # memory IMPL N | timing N REPEATS
    args = p.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        found = child_memory(rest[0], int(rest[1])) if kind == "memory" else child_timing(*map(int, rest))
        print(json.dumps(found))
        return 0
    sizes = sorted(args.sizes)
    memory = {n: {impl: _run_child("memory", impl, str(n)) for impl in ("ours", "quantus")} for n in sizes}
    timing = _run_child("timing", str(sizes[-1]), str(args.repeats))
    print(f"{MODEL}, {sizes[-1]} held-out images, saliency maps; {SAMPLES} noisy copies per image (robustness);")
    print(f"times: the fastest of {args.repeats} calls, ours and Quantus alternating in one process")
    print("average_drop: no Quantus metric; its Quantus column is interp's one-image function in a loop")
    print("max abs diff: over the scores both give (MPRT: Quantus gives NaN where a map is all zero, ours 0)\n")
    print(markdown(timing, memory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
