"""Background rows: the data an explanation compares a row against (`explain.background`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Rows kept from a larger background file: the cost of a model-agnostic explanation grows with
#: every background row, and a few hundred rows already estimate the mean output well.
MAX_ROWS = 200


class BackgroundError(ValueError):
    """The configured background file cannot be used; the message names the file and why."""


def load_background(path: Path, features: int | None) -> np.ndarray:
    """Read `.npy` or CSV rows as float64 `[rows, features]`.

    A CSV file may start with one header line of column names. A file with more than
    `MAX_ROWS` rows is thinned to `MAX_ROWS` evenly spaced rows, so the choice is repeatable.
    Raises `BackgroundError` for a missing or unreadable file, or rows that are not a finite
    numeric matrix with `features` columns.
    """
    try:
        rows = _read(path)
    except (OSError, ValueError) as exc:
        raise BackgroundError(f"explain.background '{path}' cannot be read: {exc}") from None
    if rows.ndim == 1:
        rows = rows.reshape(-1, 1) if features == 1 else rows.reshape(1, -1)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise BackgroundError(
            f"explain.background '{path}' must hold rows of features, got shape {list(rows.shape)}"
        )
    if rows.dtype.kind not in "biuf":
        raise BackgroundError(f"explain.background '{path}' holds {rows.dtype}, not numbers")
    if features is not None and features > 0 and rows.shape[1] != features:
        raise BackgroundError(
            f"explain.background '{path}' has {rows.shape[1]} columns; the model takes "
            f"{features} features"
        )
    rows = rows.astype(np.float64)
    if not np.isfinite(rows).all():
        raise BackgroundError(f"explain.background '{path}' holds NaN or infinite values")
    if len(rows) > MAX_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, MAX_ROWS).round().astype(np.int64)]
    return rows


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        return np.asarray(np.load(path, allow_pickle=False))
    with path.open(encoding="utf-8") as stream:
        first = stream.readline()
    header = any(not _is_number(cell) for cell in first.strip().split(","))
    return np.loadtxt(path, delimiter=",", skiprows=int(header), ndmin=2, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
