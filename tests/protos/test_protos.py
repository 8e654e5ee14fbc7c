"""Generated modules are exactly what `make protos` makes, and wire-identical to the public ones."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from protos import build, grpc_service_pb2, model_config_pb2, omi_pb2
from tests.grpc_support import omi_python, run_client


def test_committed_modules_match_a_fresh_build(tmp_path: Path) -> None:
    written = build.generate(tmp_path)
    assert {p.name for p in written} == {
        "grpc_service_pb2.py",
        "grpc_service_pb2.pyi",
        "grpc_service_pb2_grpc.py",
        "model_config_pb2.py",
        "model_config_pb2.pyi",
        "omi_pb2.py",
        "omi_pb2.pyi",
        "omi_pb2_grpc.py",
    }
    for path in written:
        committed = build.SOURCES_DIR / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{path.name}: run `make protos`"


def test_wire_identity_names() -> None:
    assert grpc_service_pb2.DESCRIPTOR.package == "inference"
    assert grpc_service_pb2.DESCRIPTOR.name == "grpc_service.proto"
    assert model_config_pb2.DESCRIPTOR.name == "model_config.proto"
    assert omi_pb2.DESCRIPTOR.package == ""
    assert omi_pb2.DESCRIPTOR.name == "chassis/protos/v1/model.proto"
    assert [m.name for m in omi_pb2.DESCRIPTOR.services_by_name["ModzyModel"].methods] == [
        "Status",
        "Run",
        "Shutdown",
    ]


def _tables(module) -> dict[str, dict[str, list]]:
    tables: dict[str, dict[str, list]] = {}

    def walk(message) -> None:
        tables[message.full_name] = {
            f.name: [
                f.number,
                f.type,
                f.is_repeated,
                f.message_type.full_name if f.message_type else "",
                f.enum_type.full_name if f.enum_type else "",
            ]
            for f in message.fields
        }
        for nested in message.nested_types:
            walk(nested)

    for message in module.DESCRIPTOR.message_types_by_name.values():
        walk(message)
    return tables


def test_every_field_matches_tritons_protos() -> None:
    """Each message and field we declare is in tritonclient's protos, same number and type, and
    the model configuration is declared whole."""
    triton = run_client("triton_grpc.py", "descriptors")
    ours = {**_tables(grpc_service_pb2), **_tables(model_config_pb2)}
    for message, fields in ours.items():
        assert message in triton["messages"], message
        for name, facts in fields.items():
            assert triton["messages"][message].get(name) == facts, f"{message}.{name}"
    # The whole model configuration schema, so any config.pbtxt that Triton reads parses here.
    config = _tables(model_config_pb2)
    for message in triton["model_config_messages"]:
        assert config.get(message) == triton["messages"][message], message
    data_types = model_config_pb2.DESCRIPTOR.enum_types_by_name["DataType"]
    assert {v.name: v.number for v in data_types.values} == triton["data_types"]
    service = grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method in service.methods:
        assert triton["methods"][method.name] == [
            method.input_type.full_name,
            method.output_type.full_name,
            method.client_streaming,
            method.server_streaming,
        ]


@pytest.mark.e2e
def test_omi_descriptor_is_byte_identical_to_chassis() -> None:
    chassis = run_client("omi_client.py", "descriptor", python=omi_python())
    assert chassis["name"] == omi_pb2.DESCRIPTOR.name
    assert base64.b64decode(chassis["serialized"]) == omi_pb2.DESCRIPTOR.serialized_pb
