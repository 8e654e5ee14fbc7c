"""The OIP datatype vocabulary and its numpy dtypes: one table, inverted once."""

from __future__ import annotations

import numpy as np

from app.errors import InvalidInput

# Explicit little-endian dtypes: the wire is little-endian whatever the host is.
DATATYPE_TO_DTYPE: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}

# Keyed by (kind, itemsize) so that byte order and platform aliases do not matter.
_KIND_SIZE_TO_DATATYPE: dict[tuple[str, int], str] = {
    (dtype.kind, dtype.itemsize): name
    for name, dtype in DATATYPE_TO_DTYPE.items()
    if name != "BYTES"
}

DATATYPES: frozenset[str] = frozenset(DATATYPE_TO_DTYPE)


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


def element_size(datatype: str) -> int:
    """Bytes per element of a fixed-size datatype (0 for BYTES, whose elements vary)."""
    dtype = dtype_from_datatype(datatype)
    return 0 if datatype == "BYTES" else dtype.itemsize
