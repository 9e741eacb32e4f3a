"""The benchmark's results as a readable text table or as the Markdown that BENCHMARKS.md holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .peers import PEERS


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.3g}" if v < 100 else f"{v:.0f}")


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _peer_cell(row: dict[str, Any], peer: str) -> str:
    for p in row["peers"]:
        if p["peer"] == peer:
            return f"{_ms(p['peer_ms'])} ({_x(p['ratio_to_peer'])})" if "peer_ms" in p else "n/a*"
    return ""


def missed_targets(row: dict[str, Any]) -> list[str]:
    """The targets a row misses (empty: all met, or none apply); a row without numbers misses all."""
    missed = []
    if row.get("ours_ms") is None:
        missed.append("not measured")
    elif row["kind"] == "method":
        t, r = row.get("target_ratio_to_floor"), row.get("ratio_to_floor")
        if t is not None and r is not None and r > t:
            missed.append(f"{r:.2f}x floor > {t}x")
        t, r = row.get("target_ratio_to_peer"), row.get("ratio_to_fastest_peer")
        if t is not None and r is not None and r > t:
            missed.append(f"{r:.2f}x fastest peer > {t}x")
    elif row["kind"] == "dashboard":
        if row["ours_ms"] > row["target_ms"]:
            missed.append(f"{row['ours_ms']:.0f} ms > {row['target_ms']:.0f} ms")
    elif row.get("throughput_ratio") is not None:  # training and whole-dataset throughput
        if row["throughput_ratio"] < row["target_throughput_ratio"]:
            missed.append(f"{row['throughput_ratio']:.2f}x its floor's images/s < {row['target_throughput_ratio']}x")
    elif row.get("memory_growth") is not None and row["memory_growth"] > row["target_memory_growth"]:
        missed.append(f"peak memory grows {row['memory_growth']:.2f}x > {row['target_memory_growth']}x")
    elif row.get("speedup") is not None and row["speedup"] < row["target_speedup"]:
        missed.append(
            f"{row['speedup']:.1f}x faster per channel < {row['target_speedup']}x "
            f"(the bare pass gains {row['bare_pass_speedup']:.1f}x)"
        )
    elif (
        row.get("target_ratio_to_floor")
        and row.get("ratio_to_floor")
        and row["ratio_to_floor"] > row["target_ratio_to_floor"]
    ):
        missed.append(f"{row['ratio_to_floor']:.2f}x floor > {row['target_ratio_to_floor']}x")
    return missed


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        return [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows),
        ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _method_cells(r: dict[str, Any]) -> list[str]:
    return [
        r["model"],
        r["method"],
        str(r["batch"]),
        _ms(r["ours_ms"]),
        _ms(r["floor_ms"]),
        _x(r["ratio_to_floor"]),
        f"<= {r['target_ratio_to_floor']}x" if r.get("target_ratio_to_floor") else "-",
        *(_peer_cell(r, p) for p in PEERS),
        _x(r.get("ratio_to_fastest_peer")),
    ]


def _dashboard_cells(r: dict[str, Any]) -> list[str]:
    return [r["method"], r.get("model") or "-", _ms(r["ours_ms"]), f"<= {r['target_ms']:.0f}"]


def _training_cells(r: dict[str, Any]) -> list[str]:
    return [
        r["method"],
        r["model"],
        str(r["batch"]),
        _ms(r.get("images_per_s")),
        _ms(r["ours_ms"]),
        _x(r.get("throughput_ratio")),
        _ms(r.get("peak_rss_mb")),
        _ms(r.get("base_rss_mb")),
    ]


def _feature_vis_cells(r: dict[str, Any]) -> list[str]:
    batched = r["method"] == "batched_channels"  # compared with one channel at a time, not a floor
    return [
        r["method"] + (f" at {r['size']} px" if "size" in r else ""),
        r["model"],
        _ms(r["ours_ms"]),
        f"one at a time {_ms(r.get('one_at_a_time_ms'))} ms; bare pass gains {_x(r.get('bare_pass_speedup'))}"
        if batched
        else f"forward {_ms(r.get('floor_ms'))} ms",
        _x(r.get("speedup") if batched else r.get("ratio_to_floor")),
        f">= {r['target_speedup']}x faster" if batched else f"<= {r.get('target_ratio_to_floor')}x",
    ]


def _dataset_cells(r: dict[str, Any]) -> list[str]:
    return [
        r["method"],
        r["model"],
        r["methods"],
        _ms(r.get("images_per_s")),
        _ms(r.get("floor_images_per_s")),
        _x(r.get("throughput_ratio") or r.get("memory_growth")),
        f"{_ms(r['peak_mb_small'])} / {_ms(r['peak_mb_large'])}" if "peak_mb_small" in r else _ms(r.get("peak_mb")),
    ]


# One table per kind of row, in this order: (kind, title, columns, a row's cells); every table
# ends with a column of the targets the row missed.
_SECTIONS: tuple[tuple[str, str, list[str], Callable[[dict[str, Any]], list[str]]], ...] = (
    (
        "method",
        "Methods: ms per image (median), ours / floor, and each peer as ms (ours / theirs)",
        ["model", "method", "batch", "ours", "floor", "ours/floor", "target", *PEERS, "ours/fastest"],
        _method_cells,
    ),
    ("dashboard", "Dashboard (ms)", ["measurement", "model", "ms", "target"], _dashboard_cells),
    (
        "training",
        "Training",
        ["loop", "model", "batch", "images/s", "ms/image", "loop/bare", "peak RSS MB", "RSS before data MB"],
        _training_cells,
    ),
    (
        "feature_vis",
        "Feature visualisation",
        ["measurement", "model", "ms (per channel / image)", "compared with", "ratio", "target"],
        _feature_vis_cells,
    ),
    (
        "dataset",
        "Whole datasets",
        ["measurement", "model", "methods", "images/s", "floor images/s", "ratio", "peak MB"],
        _dataset_cells,
    ),
)


def _sections(result: dict[str, Any], markdown: bool) -> list[str]:
    rows = result["rows"]
    h = (lambda t: f"### {t}") if markdown else (lambda t: f"\n{t}")
    out: list[str] = []
    for kind, title, header, cells in _SECTIONS:
        picked = [r for r in rows if r["kind"] == kind]
        if picked:
            # The methods' table opens the report, right under the machine (no blank line of its own).
            out += ([] if kind == "method" else [""]) + [h(title), ""]
            cells_missed = [[*cells(r), "; ".join(missed_targets(r))] for r in picked]
            out += _table([*header, "missed"], cells_missed, markdown)
    out += ["", h("Notes"), ""]
    notes = _notes(rows)
    out += [f"- {n}" if markdown else f"  {n}" for n in notes]
    return out


def _notes(rows: list[dict[str, Any]]) -> list[str]:
    """Each distinct floor, weight and peer note once, in order of appearance; a method row's own
    note (RISE's masks and images/s) with its model and batch."""
    seen: dict[str, None] = {}
    for r in rows:
        if r["kind"] == "method":
            seen[f"{r['model']} ({r['input_size']} px): {r['weights']}"] = None
            seen[f"floor of {r['method']}: {r['floor']}"] = None
            for p in r["peers"]:
                if p.get("note"):
                    star = "*" if "peer_ms" not in p else ""
                    seen[
                        f"{p['peer']}{star}, {r['method']}" + (f" on {r['model']}" if star else "") + f": {p['note']}"
                    ] = None
            if r.get("note"):
                seen[f"{r['method']} on {r['model']} at batch {r['batch']}: {r['note']}"] = None
        elif r.get("note"):
            seen[f"{r['method']}: {r['note']}"] = None
    return list(seen)


def _machine(result: dict[str, Any]) -> list[str]:
    m, s = result["machine"], result["settings"]
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    device = m["device"] + (f" ({m['gpu']})" if m.get("gpu") else "")
    return [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, {device}; "
        f"Python {m['python']}; {m['platform']}; load average at the end {m.get('load_average')}",
        f"packages: {pk}",
        f"measured: {m['date']}",
        f"settings: batches {', '.join(map(str, s['batches']))}, {s['warmup']} warm-up, "
        f"median of up to {s['repeats']} repeats "
        f"(at least {s['min_repeats']}, about {s['budget_s']} s per implementation and case), "
        f"integrated gradients {s['ig_steps']} steps"
        + (
            f", GradientSHAP/VarGrad {s['samples']} samples, LIME/KernelSHAP {s['surrogate_samples']} samples"
            if "samples" in s
            else ""
        )
        + (f", RISE {s['rise_masks']} masks" if "rise_masks" in s else "")
        + ("; QUICK MODE: the numbers mean nothing" if s["quick"] else ""),
    ]


def text_report(result: dict[str, Any]) -> str:
    """A readable table for the terminal."""
    return "\n".join([*_machine(result), *_sections(result, markdown=False)]) + "\n"


def markdown_report(result: dict[str, Any], command: str | None = None) -> str:
    """The results section of BENCHMARKS.md: machine, command, tables, notes and missed targets."""
    lines = ["## Results", ""]
    if command:
        lines += [f"Produced by `{command}`.", ""]
    lines += [f"- {m}" for m in _machine(result)] + [""]
    lines += _sections(result, markdown=True)
    checked = [(r, missed_targets(r)) for r in result["rows"]]
    missed = [
        f"{r['model'] or '-'} {r['method']}" + (f" batch {r['batch']}" if r.get("batch") else "") + f": {'; '.join(m)}"
        for r, m in checked
        if m
    ]
    lines += ["", "### Missed targets", ""] + ([f"- {m}" for m in missed] or ["- none"])
    return "\n".join(lines) + "\n"


START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def write_markdown(path: str | Path, text: str) -> None:
    """Write the results section to ``path``. A file that already has the markers (BENCHMARKS.md)
    keeps everything outside them; any other file is replaced."""
    path = Path(path)
    old = path.read_text() if path.is_file() else ""
    if START in old and END in old and old.index(START) < old.index(END):
        head, rest = old.split(START, 1)
        text = f"{head}{START}\n{text}{END}{rest.split(END, 1)[1]}"
    path.write_text(text)
