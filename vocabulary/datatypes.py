"""The OIP datatype names and the numpy dtype that holds each: the one table, inverted once.

`app.codec.datatypes` converts with it (and raises the protocol's errors); `config.schemas`
checks declared datatypes against its names.
"""

from __future__ import annotations

import numpy as np

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

DATATYPES: frozenset[str] = frozenset(DATATYPE_TO_DTYPE)
