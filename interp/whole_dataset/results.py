"""Summaries of a results table (pandas; no torch): accuracy and confusion, images selected by
correctness, class, confidence or metric, mean maps per class and per (class, correct), and two
models' results side by side. What the dashboard's Dataset page draws."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ParameterError

CORRECTNESS = ("all", "correct", "wrong")


def as_frame(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """The table as a DataFrame with ``correct`` (True / False, None where the label is unknown or
    the image failed) and ``ok`` (the image was read)."""
    df = table.to_pandas() if isinstance(table, pa.Table) else table.copy()
    for column in ("label", "prediction"):  # integers with gaps (unknown labels, unreadable images)
        df[column] = df[column].astype("Int64")
    df["ok"] = df["error"].isna()
    known = df["ok"] & df["label"].notna()
    df["correct"] = pd.Series(pd.NA, index=df.index, dtype="boolean")
    df.loc[known, "correct"] = df.loc[known, "prediction"] == df.loc[known, "label"]
    return df


def methods_of(df: pd.DataFrame) -> list[str]:
    """The methods whose maps the table holds."""
    return [c[4:] for c in df.columns if c.startswith("map_") and c not in ("map_height", "map_width")]


def metric_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if "_auc_" in c]


def summary(df: pd.DataFrame, class_names: Sequence[str]) -> dict[str, Any]:
    """Images, unreadable ones, accuracy, per-class accuracy and the confusion matrix (true
    classes in rows) over the images with a label."""
    known = df[df["correct"].notna()]
    k = len(class_names)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (known["label"].astype(int).to_numpy(), known["prediction"].astype(int).to_numpy()), 1)
    rows = matrix.sum(axis=1)
    per_class = {c: float(matrix[i, i] / rows[i]) for i, c in enumerate(class_names) if rows[i]}
    return {
        "images": len(df),
        "unreadable": int((~df["ok"]).sum()),
        "labelled": len(known),
        "accuracy": float(known["correct"].mean()) if len(known) else None,
        "per_class": per_class,
        "confusion": matrix,
    }


def select(
    df: pd.DataFrame,
    correctness: str = "all",
    classes: Sequence[int] | None = None,
    predicted: Sequence[int] | None = None,
    sort_by: str = "probability",
    ascending: bool = False,
) -> pd.DataFrame:
    """The readable images, filtered by correctness, true class and predicted class, sorted."""
    if correctness not in CORRECTNESS:
        raise ParameterError(f"correctness must be one of {', '.join(CORRECTNESS)}, not {correctness!r}")
    out = df[df["ok"]]
    if correctness == "correct":
        out = out[out["correct"].fillna(False).astype(bool)]
    elif correctness == "wrong":
        out = out[(~out["correct"]).fillna(False).astype(bool)]
    if classes:
        out = out[out["label"].isin(list(classes))]
    if predicted:
        out = out[out["prediction"].isin(list(predicted))]
    return out.sort_values([sort_by, "index"], ascending=[ascending, True], kind="stable")


def map_of(row: pd.Series | dict, method: str) -> np.ndarray:
    """One image's map (h, w), float32."""
    flat = np.asarray(row[f"map_{method}"], dtype=np.float32)
    return flat.reshape(int(row["map_height"]), int(row["map_width"]))


def _unit(maps: np.ndarray) -> np.ndarray:
    peak = np.abs(maps).reshape(len(maps), -1).max(axis=1)
    return maps / np.where(peak > 0, peak, 1.0)[:, None, None]


def mean_maps(
    df: pd.DataFrame, method: str, by: Sequence[str] = ("label",), normalize: bool = True
) -> dict[tuple, tuple[np.ndarray, int]]:
    """{group key: (mean map, images)} over the readable images grouped by ``by`` (columns such
    as label, prediction, correct); each map first scaled by its max |value| when ``normalize``,
    so that every image weighs the same."""
    found = {}
    ok = df[df["ok"]]
    for key, group in ok.groupby(list(by), dropna=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        maps = np.stack([map_of(r, method) for _, r in group.iterrows()])
        found[key] = ((_unit(maps) if normalize else maps).mean(axis=0), len(group))
    return found


def side_by_side(a: pd.DataFrame, b: pd.DataFrame, method_a: str, method_b: str) -> pd.DataFrame:
    """Two models' rows for the images both explained (joined on path, in a's order): label,
    prediction, probability, correctness and one map of each (columns suffixed _a and _b)."""

    def part(df: pd.DataFrame, method: str) -> pd.DataFrame:
        cols = ["index", "path", "label", "prediction", "probability", "correct", "map_height", "map_width"]
        return df[df["ok"]][cols].assign(map=df[df["ok"]][f"map_{method}"])

    both = part(a, method_a).merge(part(b, method_b), on="path", suffixes=("_a", "_b"))
    return both.sort_values("index_a", kind="stable").reset_index(drop=True)


def map_of_side(row: pd.Series, side: str) -> np.ndarray:
    """The map of side 'a' or 'b' of a :func:`side_by_side` row, (h, w)."""
    return np.asarray(row[f"map_{side}"], dtype=np.float32).reshape(
        int(row[f"map_height_{side}"]), int(row[f"map_width_{side}"])
    )
