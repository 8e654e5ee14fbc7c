"""MLRun's `data_url` request form: the inputs are read from a file instead of the body.

A request `{"data_url": "/data/batch.npy"}` names a file on the server. Only files under the folders
listed in `limits.data_roots` may be read; the list is empty by default, which turns the form off.
The path is resolved (symlinks followed, `..` collapsed) before it is compared with the roots, so
neither can escape them.

File formats, chosen by suffix:

- `.npy`: one array, the model's first input (`input-0`); `allow_pickle` stays off.
- `.npz`: several arrays, each an input under its own name.
- `.json`: plain rows (`[[5.1, 3.5, 1.4, 0.2], ...]`), or an object whose `inputs` holds them,
  as in MLRun's v2 request; rows become one tensor as the body's rows would.

Like MLRun rows, these tensors are cast to the model's declared datatypes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import orjson

from app.codec.datatypes import datatype_from_dtype
from app.codec.rest import tensor_from_rows
from app.codec.tensors import as_bytes_array
from app.errors import Forbidden, InvalidInput, ModelportError, PayloadTooLarge
from app.types import Tensor

FORMATS = (".npy", ".npz", ".json")


def resolve_data_url(url: object, roots: Sequence[Path]) -> Path:
    """The file a `data_url` names, once it is known to lie under one of `roots`.

    A relative path is taken relative to the first root; `file://` URLs are local paths too.
    Raises `Forbidden` when the form is off (no roots) or the path resolves outside every root,
    and `InvalidInput` for another URL scheme, a path that is not a regular file, or an
    unsupported suffix.
    """
    if not roots:
        raise Forbidden("data_url is disabled on this server: limits.data_roots lists no folders")
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("data_url must be a non-empty string")
    if "\x00" in url:
        raise InvalidInput("data_url must not contain NUL characters")
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise InvalidInput(
                f"data_url '{url}': only local file paths are supported, not "
                f"'{parts.scheme}://{parts.netloc}'"
            )
        text = unquote(parts.path)
    path = Path(text)
    if not path.is_absolute():
        path = roots[0] / path
    resolved = path.resolve()
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        raise Forbidden(f"data_url '{url}' is outside the folders in limits.data_roots")
    if not resolved.is_file():
        raise InvalidInput(f"data_url '{url}' is not a file")
    if resolved.suffix.lower() not in FORMATS:
        raise InvalidInput(
            f"data_url '{url}': unsupported file type '{resolved.suffix}'; "
            f"use one of {', '.join(FORMATS)}"
        )
    return resolved


def read_data_url(url: object, roots: Sequence[Path], limit: int) -> list[Tensor]:
    """The input tensors stored in the file a `data_url` names (formats in the module doc).

    Raises what `resolve_data_url` raises, `PayloadTooLarge` for a file larger than `limit`
    (the request size limit), and `InvalidInput` for a file that cannot be read as its format.
    """
    path = resolve_data_url(url, roots)
    # O_NOFOLLOW: the resolved path has no symlink left at its end, unless one was put there
    # since it was checked.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        raise InvalidInput(f"data_url '{url}' cannot be opened: {exc.strerror}") from None
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"data_url '{url}' is not a regular file")
        if info.st_size > limit:
            raise PayloadTooLarge(
                f"data_url '{url}' holds {info.st_size} bytes, more than "
                f"limits.max_request_bytes ({limit} bytes)"
            )
        suffix = path.suffix.lower()
        try:
            if suffix == ".json":
                return [_rows_tensor(url, file.read())]
            if suffix == ".npz":
                with np.load(file, allow_pickle=False) as archive:
                    return [_tensor(name, archive[name]) for name in archive.files]
            return [_tensor("input-0", np.load(file, allow_pickle=False))]
        except ModelportError:
            raise
        except (ValueError, OSError, EOFError) as exc:
            raise InvalidInput(f"data_url '{url}' is not a valid {suffix} file: {exc}") from None


def _rows_tensor(url: object, content: bytes) -> Tensor:
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"data_url '{url}' is not valid JSON: {exc}") from None
    rows = document.get("inputs") if isinstance(document, dict) else document
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(
            f"data_url '{url}' must hold a non-empty list of rows, or an object whose "
            "'inputs' is one"
        )
    return tensor_from_rows(rows)


def _tensor(name: str, array: np.ndarray) -> Tensor:
    if array.dtype.kind in "SU":
        return Tensor(name, "BYTES", as_bytes_array(array))
    datatype = datatype_from_dtype(array.dtype)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return Tensor(name, datatype, array)
