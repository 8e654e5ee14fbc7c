"""Drive a Modelport server with tritonclient.grpc (and .http), printing one JSON object.

Run in a child process: tritonclient's generated `inference` protos cannot share a process with
Modelport's (STYLE: "duplicate symbol"). Usage: python triton_grpc.py SCENARIO GRPC_URL HTTP_URL
Scenarios: `tour` (metadata, readiness, typed and raw infer, every datatype, a stream, the
repository, statistics, config), `compare` (the same request over REST and gRPC for every example
model), `descriptors` (field tables of Triton's own protos, for the wire-identity test),
`stats MODEL` (its success count, asked on several new connections), `load MODEL` and
`unload MODEL` (the repository call's error, if any), `columns MODEL MATRIX_MODEL [VERSION]`
(a model whose inputs are declared one per feature, against the same model taking one matrix),
`extensions` (each extension the server metadata lists, exercised over REST and gRPC by
`EXTENSION_PROBES`).
"""

from __future__ import annotations

import json
import queue
import sys
from typing import Any

import numpy as np

ECHO_DATATYPES = {
    "BOOL": np.array([[True, False, True]]),
    "UINT8": np.array([[0, 7, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 7, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 7, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 7, 2**64 - 1]], dtype=np.uint64),
    "INT8": np.array([[-128, 0, 127]], dtype=np.int8),
    "INT16": np.array([[-32768, 0, 32767]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1]], dtype=np.int64),
    "FP16": np.array([[-1.5, 0.0, 65504.0]], dtype=np.float16),
    "FP32": np.array([[-1.5, 0.25, 3.4e38]], dtype=np.float32),
    "FP64": np.array([[-1.5, 0.25, 1e308]], dtype=np.float64),
    "BYTES": np.array([[b"", b"caf\xc3\xa9", b"\x00\xff"]], dtype=object),
}
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def _jsonable(array: np.ndarray) -> Any:
    if array.dtype == object:
        return [[b.hex() for b in row] for row in array.reshape(array.shape[0], -1).tolist()]
    return array.astype(np.float64 if array.dtype.kind == "f" else array.dtype).tolist()


def _error(exc: Exception) -> dict[str, str]:
    status = exc.status() if hasattr(exc, "status") else ""
    return {
        "status": str(status),
        "message": exc.message() if hasattr(exc, "message") else str(exc),
    }


def tour(grpc_url: str) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    from tritonclient.grpc import service_pb2

    client = grpcclient.InferenceServerClient(grpc_url)
    out: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "server_metadata": client.get_server_metadata(as_json=True),
        "iris_metadata": client.get_model_metadata("iris", as_json=True),
        "iris_ready": client.is_model_ready("iris"),
        "iris_v1_ready": client.is_model_ready("iris", "1"),
        "unknown_ready": client.is_model_ready("no-such-model"),
        "iris_config": client.get_model_config("iris", as_json=True),
    }
    try:
        client.get_model_metadata("no-such-model")
    except Exception as exc:
        out["unknown_metadata_error"] = _error(exc)

    # Raw contents, as tritonclient always sends them.
    rows = np.array(IRIS_ROWS, dtype=np.float32)
    infer_input = grpcclient.InferInput("input-0", list(rows.shape), "FP32")
    infer_input.set_data_from_numpy(rows)
    result = client.infer(
        "iris",
        [infer_input],
        outputs=[
            grpcclient.InferRequestedOutput("predictions"),
            grpcclient.InferRequestedOutput("probabilities"),
        ],
        request_id="raw-1",
    )
    out["raw_infer"] = {
        "id": result.get_response().id,
        "predictions": result.as_numpy("predictions").tolist(),
        "probabilities_shape": list(result.as_numpy("probabilities").shape),
    }

    # Typed contents, through Triton's own generated messages.
    request = service_pb2.ModelInferRequest(model_name="iris", id="typed-1")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[2, 4])
    tensor.contents.fp32_contents.extend(rows.reshape(-1).tolist())
    response = client._client_stub.ModelInfer(request)
    out["typed_infer"] = {
        "id": response.id,
        "raw_count": len(response.raw_output_contents),
        "predictions": list(response.outputs[0].contents.int64_contents),
        "shape": list(response.outputs[0].shape),
    }

    # Every datatype through the echo model, raw (tritonclient) and typed (Triton's messages).
    echo: dict[str, Any] = {}
    for datatype, array in ECHO_DATATYPES.items():
        item = grpcclient.InferInput("x", list(array.shape), datatype)
        item.set_data_from_numpy(array)
        got = client.infer("echo", [item]).as_numpy("x")
        entry = {"raw": bool(got.shape == array.shape and np.array_equal(got, array))}
        if datatype != "FP16":
            typed = service_pb2.ModelInferRequest(model_name="echo")
            tensor = typed.inputs.add(name="x", datatype=datatype, shape=list(array.shape))
            field = {
                "BOOL": "bool_contents",
                "UINT8": "uint_contents",
                "UINT16": "uint_contents",
                "UINT32": "uint_contents",
                "UINT64": "uint64_contents",
                "INT8": "int_contents",
                "INT16": "int_contents",
                "INT32": "int_contents",
                "INT64": "int64_contents",
                "FP32": "fp32_contents",
                "FP64": "fp64_contents",
                "BYTES": "bytes_contents",
            }[datatype]
            getattr(tensor.contents, field).extend(array.reshape(-1).tolist())
            answer = client._client_stub.ModelInfer(typed)
            values = list(getattr(answer.outputs[0].contents, field))
            entry["typed"] = values == array.reshape(-1).tolist() and not answer.raw_output_contents
        echo[datatype] = entry
    # BF16 (upper halves of float32), sent raw as Triton's clients do; Modelport refuses it.
    bf16 = service_pb2.ModelInferRequest(model_name="echo")
    bf16.inputs.add(name="x", datatype="BF16", shape=[1, 2])
    bf16.raw_input_contents.append(b"\x80\x3f\x00\x40")
    try:
        client._client_stub.ModelInfer(bf16)
    except Exception as exc:
        echo["BF16_error"] = {"status": str(exc.code()), "message": exc.details()}
    out["echo"] = echo

    # A stream: two good requests around a bad one; the stream must go on.
    answers: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    for request_id, model in (("s1", "iris"), ("s2", "no-such-model"), ("s3", "iris")):
        client.async_stream_infer(model, [infer_input], request_id=request_id)
    stream = []
    for _ in range(3):
        result, error = answers.get(timeout=30)
        if error is not None:
            stream.append({"error": str(error)})
        else:
            stream.append(
                {
                    "id": result.get_response().id,
                    "predictions": result.as_numpy("predictions").tolist(),
                }
            )
    client.stop_stream()
    out["stream"] = stream

    # Repository control and statistics (server-wide, whichever worker this channel reached).
    out["index"] = client.get_model_repository_index(as_json=True)
    client.unload_model("iris-onnx")
    out["onnx_ready_after_unload"] = client.is_model_ready("iris-onnx")
    client.load_model("iris-onnx")
    out["onnx_ready_after_load"] = client.is_model_ready("iris-onnx")
    try:
        client.load_model("no-such-model")
    except Exception as exc:
        out["load_unknown_error"] = _error(exc)
    out["iris_stats"] = client.get_inference_statistics("iris", as_json=True)
    out["all_stats_count"] = len(client.get_inference_statistics(as_json=True)["model_stats"])
    client.close()
    return out


COMPARE_CASES = {
    "iris": ("input-0", np.array(IRIS_ROWS, dtype=np.float32), "FP32"),
    "iris-xgboost": ("input-0", np.array(IRIS_ROWS, dtype=np.float32), "FP32"),
    "iris-lightgbm": ("input-0", np.array(IRIS_ROWS, dtype=np.float32), "FP32"),
    "iris-onnx": ("input-0", np.array(IRIS_ROWS, dtype=np.float32), "FP32"),
    "digits": ("input-0", np.arange(128, dtype=np.float32).reshape(2, 64) % 17, "FP32"),
    "echo": ("x", np.array([[1, -2, 3]], dtype=np.int32), "INT32"),
    "sum": ("input-0", np.arange(12, dtype=np.float32).reshape(3, 4), "FP32"),
}


def compare(grpc_url: str, http_url: str) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    grpc_client = grpcclient.InferenceServerClient(grpc_url)
    http_client = httpclient.InferenceServerClient(http_url)
    out: dict[str, Any] = {}
    for model, (name, array, datatype) in COMPARE_CASES.items():
        answers = {}
        for label, module, client in (
            ("grpc", grpcclient, grpc_client),
            ("http", httpclient, http_client),
        ):
            item = module.InferInput(name, list(array.shape), datatype)
            item.set_data_from_numpy(array)
            metadata = client.get_model_metadata(model)
            outputs = (
                [o["name"] for o in metadata["outputs"]]
                if isinstance(metadata, dict)
                else [o.name for o in metadata.outputs]
            ) or [name]
            result = client.infer(
                model, [item], outputs=[module.InferRequestedOutput(o) for o in outputs]
            )
            answers[label] = {o: _jsonable(result.as_numpy(o)) for o in outputs}
        out[model] = answers
    return out


def stats(grpc_url: str, model: str, connections: int = 6) -> dict[str, Any]:
    """Each new channel is a new connection, which the kernel may give to any worker."""
    import tritonclient.grpc as grpcclient

    counts = []
    for _ in range(connections):
        client = grpcclient.InferenceServerClient(grpc_url)
        answer = client.get_inference_statistics(model, as_json=True)
        counts.append(
            sum(int(s["inference_stats"]["success"].get("count", 0)) for s in answer["model_stats"])
        )
        client.close()
    return {"success_counts": counts}


def repository(grpc_url: str, action: str, model: str) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(grpc_url)
    try:
        (client.load_model if action == "load" else client.unload_model)(model)
    except Exception as exc:
        return {"error": _error(exc)}
    finally:
        client.close()
    return {"error": None}


FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _infer_columns(module: Any, client: Any, model: str, columns: dict[str, np.ndarray]) -> Any:
    """The model's predictions for one FP32 tensor per feature, or the error it answered."""
    items = []
    for name, column in columns.items():
        item = module.InferInput(name, list(column.shape), "FP32")
        item.set_data_from_numpy(column)
        items.append(item)
    wanted = [module.InferRequestedOutput("predictions")]
    try:
        return client.infer(model, items, outputs=wanted).as_numpy("predictions").tolist()
    except Exception as exc:
        return {"error": _error(exc)}


def columns(
    grpc_url: str, http_url: str, model: str, matrix_model: str, version: str = ""
) -> dict[str, Any]:
    """Per-feature tensors over gRPC and HTTP, the bad forms' errors, and the matrix answer."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    rows = np.array(IRIS_ROWS, dtype=np.float32)
    out: dict[str, Any] = {}
    for label, module, client in (
        ("grpc", grpcclient, grpcclient.InferenceServerClient(grpc_url)),
        ("http", httpclient, httpclient.InferenceServerClient(http_url)),
    ):
        metadata = (
            client.get_model_metadata(model, as_json=True)
            if module is grpcclient
            else client.get_model_metadata(model)
        )
        matrix = module.InferInput("input-0", list(rows.shape), "FP32")
        matrix.set_data_from_numpy(rows)
        expected = client.infer(matrix_model, [matrix], model_version=version)
        expected = expected.as_numpy("predictions").tolist()
        by_feature = {name: np.ascontiguousarray(rows[:, i]) for i, name in enumerate(FEATURES)}
        shuffled = dict(reversed(list(by_feature.items())))  # order on the wire does not matter
        missing = {name: by_feature[name] for name in FEATURES[:3]}
        short = {**by_feature, FEATURES[1]: by_feature[FEATURES[1]][:1]}
        out[label] = {
            "inputs": metadata["inputs"],
            "expected": expected,
            "columns": _infer_columns(module, client, model, by_feature),
            "shuffled": _infer_columns(module, client, model, shuffled),
            "missing": _infer_columns(module, client, model, missing),
            "short": _infer_columns(module, client, model, short),
            "ready": client.is_server_ready(),
        }
    return out


def descriptors() -> dict[str, Any]:
    from tritonclient.grpc import model_config_pb2, service_pb2

    tables: dict[str, Any] = {}

    def walk(message: Any) -> None:
        tables[message.full_name] = {
            field.name: [
                field.number,
                field.type,
                field.is_repeated,
                field.message_type.full_name if field.message_type else "",
                field.enum_type.full_name if field.enum_type else "",
            ]
            for field in message.fields
        }
        for nested in message.nested_types:
            walk(nested)

    for module in (service_pb2, model_config_pb2):
        for message in module.DESCRIPTOR.message_types_by_name.values():
            walk(message)
    config_messages = [name for name in tables if name not in _service_messages(service_pb2)]
    enums = {
        value.name: value.number
        for value in model_config_pb2.DESCRIPTOR.enum_types_by_name["DataType"].values
    }
    service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    methods = {
        m.name: [
            m.input_type.full_name,
            m.output_type.full_name,
            m.client_streaming,
            m.server_streaming,
        ]
        for m in service.methods
    }
    return {
        "messages": tables,
        "model_config_messages": config_messages,
        "data_types": enums,
        "methods": methods,
    }


def _service_messages(module: Any) -> set[str]:
    """Full names of the messages a module declares, nested ones included."""
    names: set[str] = set()
    pending = list(module.DESCRIPTOR.message_types_by_name.values())
    while pending:
        message = pending.pop()
        names.add(message.full_name)
        pending.extend(message.nested_types)
    return names


def _probe_binary_tensor_data(module: Any, client: Any) -> bool | None:
    if module.__name__ == "tritonclient.grpc":
        return None  # an HTTP extension: gRPC always carries raw_input_contents
    rows = np.array(IRIS_ROWS, dtype=np.float32)
    item = module.InferInput("input-0", list(rows.shape), "FP32")
    item.set_data_from_numpy(rows, binary_data=True)
    wanted = module.InferRequestedOutput("predictions", binary_data=True)
    result = client.infer("iris", [item], outputs=[wanted])
    (output,) = result.get_response()["outputs"]
    return "binary_data_size" in output["parameters"] and result.as_numpy(
        "predictions"
    ).tolist() == [0, 2]


def _probe_model_configuration(module: Any, client: Any) -> bool:
    config = client.get_model_config("iris", as_json=True) if _is_grpc(module) else None
    config = config["config"] if config is not None else client.get_model_config("iris")
    return config["name"] == "iris" and config["input"][0]["name"] == "input-0"


def _probe_model_repository(module: Any, client: Any) -> bool:
    index = client.get_model_repository_index(as_json=True) if _is_grpc(module) else None
    entries = index["models"] if index is not None else client.get_model_repository_index()
    client.load_model("sum")  # raises unless the reload worked
    return {"name": "iris", "version": "1", "state": "READY"}.items() <= next(
        e for e in entries if e["name"] == "iris" and e.get("version") == "1"
    ).items()


def _probe_statistics(module: Any, client: Any) -> bool:
    rows = np.array(IRIS_ROWS, dtype=np.float32)
    item = module.InferInput("input-0", list(rows.shape), "FP32")
    item.set_data_from_numpy(rows)
    client.infer("iris", [item])
    if _is_grpc(module):
        answer = client.get_inference_statistics("iris", as_json=True)
    else:
        answer = client.get_inference_statistics("iris")
    counts = [int(s["inference_stats"]["success"].get("count", 0)) for s in answer["model_stats"]]
    return sum(counts) >= 1


def _probe_parameters(module: Any, client: Any) -> bool:
    item = module.InferInput("i", [1], "INT32")
    item.set_data_from_numpy(np.array([1], dtype=np.int32))
    result = client.infer("params", [item], parameters={"custom": "x", "n": 2})
    return json.loads(result.as_numpy("parameters")[0]) == {"custom": "x", "n": 2}


def _is_grpc(module: Any) -> bool:
    return module.__name__ == "tritonclient.grpc"


#: Each extension Modelport announces, and a request that exercises it through tritonclient
#: (None: the extension does not exist in that protocol). tests/test_extensions_e2e.py fails
#: when the server lists an extension this table cannot prove, or the other way round.
EXTENSION_PROBES = {
    "binary_tensor_data": _probe_binary_tensor_data,
    "model_configuration": _probe_model_configuration,
    "model_repository": _probe_model_repository,
    "parameters": _probe_parameters,
    "statistics": _probe_statistics,
}


def extensions(grpc_url: str, http_url: str) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    clients = {
        "rest": (httpclient, httpclient.InferenceServerClient(http_url)),
        "grpc": (grpcclient, grpcclient.InferenceServerClient(grpc_url)),
    }
    out: dict[str, Any] = {
        "rest_extensions": clients["rest"][1].get_server_metadata()["extensions"],
        "grpc_extensions": list(clients["grpc"][1].get_server_metadata().extensions),
        "probes": {},
    }
    for name, probe in EXTENSION_PROBES.items():
        results = {}
        for protocol, (module, client) in clients.items():
            try:
                results[protocol] = probe(module, client)
            except Exception as exc:
                results[protocol] = _error(exc)
        out["probes"][name] = results
    return out


def main() -> int:
    scenario = sys.argv[1]
    if scenario == "tour":
        result = tour(sys.argv[2])
    elif scenario == "compare":
        result = compare(sys.argv[2], sys.argv[3])
    elif scenario == "descriptors":
        result = descriptors()
    elif scenario == "stats":
        result = stats(sys.argv[2], sys.argv[3])
    elif scenario == "columns":
        result = columns(*sys.argv[2:7])
    elif scenario == "extensions":
        result = extensions(sys.argv[2], sys.argv[3])
    elif scenario in ("load", "unload"):
        result = repository(sys.argv[2], scenario, sys.argv[3])
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
