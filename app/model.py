"""The model API (DESIGN §3): built-in runtimes and user classes implement the same class."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.types import TensorSpec

if TYPE_CHECKING:
    from config.settings import ModelSettings


class Model:
    """One loaded model version. Subclass it, implement `load` and `predict`.

    `load` runs once per process and may fill `inputs`/`outputs` with what the model file says;
    the config file's `inputs`/`outputs` win over them. Optional methods: `explain(inputs,
    parameters)` for attributions, `process(item)` for OMI (Chassis) items.
    """

    #: Informational `platform` of the model metadata (`<project>_<format>`).
    platform: str = "python"

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.name: str = settings.name
        self.version: str = settings.version
        self.uri: Path | None = settings.uri
        self.parameters: Mapping[str, Any] = settings.parameters
        #: Declared inputs; empty means "accept any tensors" (checked by the model itself).
        self.inputs: list[TensorSpec] = []
        #: Declared outputs, everything `predict` can return.
        self.outputs: list[TensorSpec] = []
        #: Outputs returned when a request names none; None means all of `outputs`.
        self.default_outputs: list[str] | None = None
        #: Column names of the first input, for `infer_dict` rows.
        self.features: list[str] | None = None

    def load(self) -> None:
        """Load weights from `self.uri`; raise to mark the model failed (others keep serving)."""

    def check_declared(self) -> None:
        """Refuse inputs/outputs that the config declared and the model cannot serve.

        Called once the config's declarations replaced what `load` read; raise (a message that
        names the tensor) to mark the model failed. The default accepts any.
        """

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Run the model on named input arrays and return named output arrays."""
        raise NotImplementedError(f"model '{self.name}' does not implement predict")

    def predict_outputs(
        self,
        inputs: dict[str, np.ndarray],
        parameters: dict[str, Any],
        names: Collection[str],
    ) -> dict[str, np.ndarray]:
        """Compute only the outputs in `names`; built-in runtimes skip work nobody asked for."""
        return self.predict(inputs, parameters)
