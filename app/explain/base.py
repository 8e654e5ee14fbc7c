"""What every explainer answers, so v1, v2 and OMI clients read one layout whatever the runtime.

A built-in explainer returns two FP64 tensors per request, batch first:

- `attributions` `[batch, targets, features]`: how much each feature moved each explained target
  away from the base value;
- `base_values` `[batch, targets]`: the explained output the model gives "on average" (the
  background mean, or the tree ensemble's expected value).

For every row and target, `base_values + attributions.sum(features)` is the explained output
itself. Targets are the classes of a multiclass classifier (in `probabilities` column order), or
one target for a regressor or a binary classifier (its positive class).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from app.errors import InvalidInput
from app.model import Model
from app.types import TensorSpec

ATTRIBUTIONS = "attributions"
BASE_VALUES = "base_values"


class Explainer(ABC):
    """Computes explanation tensors for a model's rows; built once per loaded model.

    Explainers are cached per model object, weakly; an explainer must therefore never keep a
    reference to the model itself (it is passed to `explain`), or the cache would keep every
    reloaded model alive. Keeping parts of it (a booster, coefficients) is fine.
    """

    #: How the attributions were computed, answered as the `explainer` response parameter.
    method: str = ""
    #: What the attributions add up to, answered as the `explained_output` response parameter.
    explained_output: str = ""

    @abstractmethod
    def outputs(self) -> list[TensorSpec]:
        """The tensors `explain` returns, for the model metadata's `explanation_outputs`."""

    @abstractmethod
    def explain(
        self, model: Model, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> Mapping[str, np.ndarray]:
        """Explanation tensors for the bound inputs of one request, each batch first."""


def attribution_specs(targets: int, features: int) -> list[TensorSpec]:
    """Metadata of the two built-in explanation tensors (-1 where a size is only known later)."""
    return [
        TensorSpec(ATTRIBUTIONS, "FP64", (-1, targets, features)),
        TensorSpec(BASE_VALUES, "FP64", (-1, targets)),
    ]


def feature_rows(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The one input of a tabular model as float64 rows `[batch, features]`.

    Raises `InvalidInput` for a tensor that is not a non-empty matrix of numbers.
    """
    rows = np.asarray(next(iter(inputs.values())))
    if rows.ndim != 2:
        raise InvalidInput(f"explain needs rows of features (2 dimensions), got shape {rows.shape}")
    if rows.shape[0] == 0:
        raise InvalidInput("nothing to explain: the input has no rows")
    if rows.dtype.kind not in "biuf":
        raise InvalidInput(f"explain needs numeric features, got {rows.dtype}")
    return rows.astype(np.float64, copy=False)


def split_bias(contributions: np.ndarray) -> dict[str, np.ndarray]:
    """`attributions` and `base_values` from `[batch, targets, features + 1]` contributions.

    xgboost's `pred_contribs` and lightgbm's `pred_contrib` both put the bias (the expected
    raw score) after the last feature.
    """
    contributions = contributions.astype(np.float64, copy=False)
    return {
        ATTRIBUTIONS: np.ascontiguousarray(contributions[..., :-1]),
        BASE_VALUES: np.ascontiguousarray(contributions[..., -1]),
    }
