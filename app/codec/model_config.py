"""Triton's model configuration (`model_configuration` extension) of a Modelport model.

The JSON form is built here once; REST answers it as is and gRPC parses it into
`inference.ModelConfig` (`app.codec.proto.model_config_to_proto`). perf_analyzer and
`tritonclient.get_model_config()` read `max_batch_size`, `input` and `output`: with
`max_batch_size > 0` the dims leave out the batch dimension, as in Triton (reference §6.4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

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
#: Triton's `DataType` enum name -> OIP datatype, for configurations read from config.pbtxt.
DATATYPES_FROM_TRITON: dict[str, str] = {name: oip for oip, name in DATA_TYPES.items()}
#: Proto types whose JSON mapping is a string ("4"); Triton answers them as numbers.
_WIDE_INTEGERS = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
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
    """The configuration of a loaded model, in Triton's JSON layout (default values written).

    A model read from a Triton repository answers its own config.pbtxt, as Triton completes
    it; the inputs and outputs it leaves out (Triton's auto-complete) are the model's.
    """
    if settings.model_config is not None:
        config = dict(settings.model_config)
        batched = config.get("max_batch_size", 0) > 0
        config["input"] = config.get("input") or _inputs(model, batched)
        config["output"] = config.get("output") or _outputs(model, batched)
        return config
    batch = max_batch_size(model, settings)
    config = {
        "name": model.name,
        "platform": model.platform,
        "backend": settings.runtime,
        # Every configured version is loaded and reachable by number.
        "version_policy": {"all": {}},
        "max_batch_size": batch,
        "input": _inputs(model, batch > 0),
        "output": _outputs(model, batch > 0),
    }
    if batch:
        config["dynamic_batching"] = {
            "preferred_batch_size": [],
            "max_queue_delay_microseconds": int(settings.batch_delay_ms * 1000),
        }
    return config


def _inputs(model: Model, batched: bool) -> list[dict[str, Any]]:
    return [
        {
            "name": spec.name,
            "data_type": DATA_TYPES.get(spec.datatype, "TYPE_INVALID"),
            "format": "FORMAT_NONE",
            "dims": _dims(spec, batched),
            "is_shape_tensor": False,
            "allow_ragged_batch": False,
            "optional": False,
        }
        for spec in model.inputs
    ]


def _outputs(model: Model, batched: bool) -> list[dict[str, Any]]:
    return [
        {
            "name": spec.name,
            "data_type": DATA_TYPES.get(spec.datatype, "TYPE_INVALID"),
            "dims": _dims(spec, batched),
            "label_filename": "",
            "is_shape_tensor": False,
        }
        for spec in model.outputs
    ]


def config_to_json(message: Message) -> dict[str, Any]:
    """A parsed `inference.ModelConfig` in the JSON layout Triton answers, defaults written.

    The counterpart of `app.codec.proto.model_config_to_proto`. protobuf's JSON mapping writes
    64-bit integers (`dims`, `max_queue_delay_microseconds`) as strings; Triton, and the
    clients that read its answer, use numbers, so they are turned back into numbers here.
    """
    value = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _numbers(message.DESCRIPTOR, value)


def _numbers(descriptor: Descriptor, value: dict[str, Any]) -> dict[str, Any]:
    for field in descriptor.fields:
        if field.name not in value:
            continue
        item = value[field.name]
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            inner = entry.fields_by_name["value"]
            value[field.name] = {key: _number(inner, v) for key, v in item.items()}
        elif field.is_repeated:
            value[field.name] = [_number(field, v) for v in item]
        else:
            value[field.name] = _number(field, item)
    return value


def _number(field: FieldDescriptor, item: Any) -> Any:
    if field.type in _WIDE_INTEGERS:
        return int(item)
    if field.message_type is not None:
        return _numbers(field.message_type, item)
    return item
