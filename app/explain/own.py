"""A `python` model's own `explain` method, which wins over every built-in explainer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from app.errors import ModelFailed
from app.explain.base import Explainer
from app.model import Model
from app.types import TensorSpec


class ModelExplainer(Explainer):
    """Calls `model.explain(inputs, parameters)`; the model says what it returns.

    A model may declare `explain_outputs` (a list of `TensorSpec`) for the metadata, and
    `explained_output` (what its attributions add up to) for the response parameters.
    """

    method = "model"

    def __init__(self, model: Model) -> None:
        self.specs = list(getattr(model, "explain_outputs", None) or [])
        self.explained_output = str(getattr(model, "explained_output", "") or "")

    def outputs(self) -> list[TensorSpec]:
        """What the model declared in `explain_outputs` (nothing when it declared nothing)."""
        return self.specs

    def explain(
        self, model: Model, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> Mapping[str, np.ndarray]:
        """The model's own answer; raises `ModelFailed` if it is not a dict of arrays."""
        result = model.explain(inputs, parameters)  # type: ignore[attr-defined]  # checked in explainer_for
        if not isinstance(result, Mapping):
            raise ModelFailed(
                f"model '{model.name}' explain returned {type(result).__name__}, not a dict"
            )
        return result
