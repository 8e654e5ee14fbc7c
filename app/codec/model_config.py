"""Triton's model configuration (`model_configuration` extension) of a Modelport model.

The JSON form is built here once; REST answers it as is and gRPC parses it into
`inference.ModelConfig` (`app.codec.proto.model_config_to_proto`). perf_analyzer and
`tritonclient.get_model_config()` read `max_batch_size`, `input` and `output`: with
`max_batch_size > 0` the dims leave out the batch dimension, as in Triton (reference §6.4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.model import Model
    from app.types import TensorSpec
    from config.settings import ModelSettings

#: OIP datatype -> Triton's `DataType` enum name (BYTES is TYPE_STRING there).
DATA_TYPES: dict[str, str] = {
    "BOOL": "TYPE_BOOL",
    "UINT8": "TYPE_UINT8",
    "UINT16": "TYPE_UINT16",
    "UINT32": "TYPE_UINT32",
    "UINT64": "TYPE_UINT64",
    "INT8": "TYPE_INT8",
    "INT16": "TYPE_INT16",
    "INT32": "TYPE_INT32",
    "INT64": "TYPE_INT64",
    "FP16": "TYPE_FP16",
    "FP32": "TYPE_FP32",
    "FP64": "TYPE_FP64",
    "BYTES": "TYPE_STRING",
    "BF16": "TYPE_BF16",
}


def max_batch_size(model: Model, settings: ModelSettings) -> int:
    """The configured dynamic batch size when every tensor batches on its first dimension.

    0 (Triton: "no batching") otherwise; the dims then keep the leading -1 and a client such as
    perf_analyzer needs `--shape` for them.
    """
    specs = [*model.inputs, *model.outputs]
    batchable = bool(model.inputs) and all(spec.shape[:1] == (-1,) for spec in specs)
    return settings.max_batch_size if batchable and settings.max_batch_size > 0 else 0


def _dims(spec: TensorSpec, batched: bool) -> list[int]:
    return list(spec.shape[1:] if batched else spec.shape)


def model_config_to_json(model: Model, settings: ModelSettings) -> dict[str, Any]:
    """The configuration of a loaded model, in Triton's JSON layout (default values written)."""
    batch = max_batch_size(model, settings)
    config: dict[str, Any] = {
        "name": model.name,
        "platform": model.platform,
        "backend": settings.runtime,
        # Every configured version is loaded and reachable by number.
        "version_policy": {"all": {}},
        "max_batch_size": batch,
        "input": [
            {
                "name": spec.name,
                "data_type": DATA_TYPES.get(spec.datatype, "TYPE_INVALID"),
                "format": "FORMAT_NONE",
                "dims": _dims(spec, batch > 0),
                "is_shape_tensor": False,
                "allow_ragged_batch": False,
                "optional": False,
            }
            for spec in model.inputs
        ],
        "output": [
            {
                "name": spec.name,
                "data_type": DATA_TYPES.get(spec.datatype, "TYPE_INVALID"),
                "dims": _dims(spec, batch > 0),
                "label_filename": "",
                "is_shape_tensor": False,
            }
            for spec in model.outputs
        ],
    }
    if batch:
        config["dynamic_batching"] = {
            "preferred_batch_size": [],
            "max_queue_delay_microseconds": int(settings.batch_delay_ms * 1000),
        }
    return config
