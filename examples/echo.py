"""A user model that answers its inputs back, for datatype and shape round-trip tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.model import Model


class EchoModel(Model):
    """Declares no inputs or outputs, so any tensor goes in and comes back unchanged."""

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Each input under its own name: what the codecs decoded is exactly what they encode."""
        return dict(inputs)
