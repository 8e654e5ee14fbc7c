"""Conversions between OIP datatypes and numpy dtypes, over the table in `vocabulary.datatypes`."""

from __future__ import annotations

import numpy as np

from app.errors import InvalidInput
from vocabulary.datatypes import DATATYPE_TO_DTYPE

# The table itself is the vocabulary's; runtimes and explainers read it from here.
__all__ = ["DATATYPE_TO_DTYPE", "datatype_from_dtype", "dtype_from_datatype"]

# Keyed by (kind, itemsize) so that byte order and platform aliases do not matter.
_KIND_SIZE_TO_DATATYPE: dict[tuple[str, int], str] = {
    (dtype.kind, dtype.itemsize): name
    for name, dtype in DATATYPE_TO_DTYPE.items()
    if name != "BYTES"
}


def dtype_from_datatype(datatype: str) -> np.dtype:
    """The numpy dtype that holds `datatype`; raises `InvalidInput` for an unknown name.

    BF16 is named on purpose: Triton's clients can send it, and the answer should say it is
    unsupported rather than unknown.
    """
    try:
        return DATATYPE_TO_DTYPE[datatype]
    except (KeyError, TypeError):
        if datatype == "BF16":
            raise InvalidInput("datatype 'BF16' is not supported") from None
        raise InvalidInput(f"unknown datatype '{datatype}'") from None


def datatype_from_dtype(dtype: np.dtype) -> str:
    """The OIP datatype of a numpy dtype; strings and objects are BYTES (as MLServer does)."""
    if dtype.kind in "OSU":
        return "BYTES"
    try:
        return _KIND_SIZE_TO_DATATYPE[(dtype.kind, dtype.itemsize)]
    except KeyError:
        raise InvalidInput(f"numpy dtype '{dtype}' has no OIP datatype") from None
