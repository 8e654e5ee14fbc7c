"""`TensorSpec`: what a model declares about one input or output, in OIP words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Metadata of one model input or output, in OIP words (`-1` marks a variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
