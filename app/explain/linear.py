"""Exact attributions for linear scikit-learn models, against the background mean.

For a raw output `coef · x + intercept`, feature j contributes `coef_j * (x_j - mean_j)` and the
base value is `coef · mean + intercept`: these are the exact (interventional) Shapley values of
a linear model, and they add up to the raw output with no sampling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from app.explain.base import ATTRIBUTIONS, BASE_VALUES, Explainer, attribution_specs, feature_rows
from app.model import Model
from app.types import TensorSpec

# How far the estimator's own raw output may be from `coef · x + intercept` on the background
# and still count as linear: float32 models round at about 1e-6 of their scale.
_TOLERANCE = 1e-4


class LinearExplainer(Explainer):
    """Coefficients times the distance from the background mean."""

    method = "linear"

    def __init__(
        self, coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, explained_output: str
    ) -> None:
        self.coef = coef  # [targets, features]
        self.mean = mean  # [features]
        self.base = coef @ mean + intercept  # [targets]
        self.explained_output = explained_output

    def outputs(self) -> list[TensorSpec]:
        """`attributions` and `base_values` for every row of `coef_`."""
        return attribution_specs(*self.coef.shape)

    def explain(
        self, model: Model, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> Mapping[str, np.ndarray]:
        """Attributions `[batch, targets, features]`; one broadcast product, no model call."""
        rows = feature_rows(inputs)
        attributions = self.coef[np.newaxis, :, :] * (rows - self.mean)[:, np.newaxis, :]
        base = np.broadcast_to(self.base, (len(rows), len(self.base)))
        return {ATTRIBUTIONS: attributions, BASE_VALUES: np.ascontiguousarray(base)}


def linear_explainer(
    estimator: Any, background: np.ndarray, dtype: np.dtype
) -> LinearExplainer | None:
    """A `LinearExplainer` when the estimator is affine in its input, else None.

    "Linear" is checked, not assumed from the class: an estimator with `coef_` and `intercept_`
    whose raw output (`decision_function` for classifiers, `predict` otherwise) equals
    `coef · x + intercept` on the background rows. A GLM with a link function (Poisson, Gamma)
    has `coef_` too, but fails the check and is explained model-agnostically instead.
    """
    coef = getattr(estimator, "coef_", None)
    intercept = getattr(estimator, "intercept_", None)
    if coef is None or intercept is None:
        return None
    dense = coef.toarray() if hasattr(coef, "toarray") else coef  # after `sparsify()`
    coef = np.atleast_2d(np.asarray(dense, dtype=np.float64))
    if coef.ndim != 2 or coef.shape[1] != background.shape[1]:
        return None
    intercept = np.broadcast_to(np.asarray(intercept, dtype=np.float64).ravel(), (len(coef),))
    explained = "decision_function" if hasattr(estimator, "decision_function") else "predict"
    try:
        raw = np.asarray(getattr(estimator, explained)(background.astype(dtype)), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    expected = background @ coef.T + intercept
    if raw.size != expected.size:
        return None
    scale = max(1.0, float(np.abs(expected).max()))
    if not np.allclose(raw.reshape(expected.shape), expected, rtol=0, atol=_TOLERANCE * scale):
        return None
    name = "decision_function" if explained == "decision_function" else "predictions"
    return LinearExplainer(coef, intercept, background.mean(axis=0), name)
