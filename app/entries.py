"""What the model manager knows of one configured model version: its state, and the model.

Its own module so that the codec (repository index) can name an entry without importing the
manager, whose runtimes import the codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.model import Model
from config.settings import ModelSettings


class ModelState(StrEnum):
    """Model version states, in Triton's repository-index words."""

    LOADING = "LOADING"
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"  # failed to load, or unloaded: `reason` says which
    UNLOADING = "UNLOADING"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One configured model version: its settings, state, and the loaded model when ready."""

    settings: ModelSettings
    state: ModelState
    reason: str = ""
    model: Model | None = None

    @property
    def name(self) -> str:
        """The model's name."""
        return self.settings.name

    @property
    def version(self) -> str:
        """The model's version string."""
        return self.settings.version

    @property
    def ready(self) -> bool:
        """True when requests can be served."""
        return self.state is ModelState.READY and self.model is not None
