"""What the benchmark sends: each workload's request, built once, and the check of its answer.

Every server gets byte-identical requests: OIP v2 over REST (JSON, or Triton's binary tensor
extension) or OIP gRPC `ModelInfer` with `raw_input_contents`, as tritonclient and perf_analyzer
send it. Before a workload is timed on a server, one request is sent and its answer checked
(status, and the predicted classes or row sums), so a server that answers fast but wrong, or
not at all, is reported as such rather than measured.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass, field

import numpy as np
import orjson

from protos import grpc_service_pb2 as pb

HEADER_LENGTH = "Inference-Header-Content-Length"
GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"
IRIS_ROW = (6.8, 2.8, 4.8, 1.4)  # class 1 for the example iris model
IRIS_CLASS = 1
MIB = 1024 * 1024
#: The outputs a "tensors" request asks for, in binary.
OUTPUTS = {"iris": ("predictions", "probabilities")}


@dataclass(frozen=True)
class Workload:
    """One kind of request, sent at each concurrency level to every server that takes it."""

    key: str
    title: str
    model: str  # iris | sum | fixed-cost | fixed-cost-batched
    form: str  # json | binary | tensors (binary in and out, as tritonclient sends) | grpc
    shape: tuple[int, ...]
    ceiling: str | None  # which bare server answers the same body: wsgi | grpc | None
    concurrency: tuple[int, ...] = (1, 8, 32)
    only: tuple[str, ...] = field(default_factory=tuple)  # servers that run it (empty: all)
    #: Measured time × this: a point whose requests take most of a second would otherwise
    #: count a few dozen answers (W4-bin64 at c=8: 15 per 2 s round, 64 % and 94 % of the
    #: ceiling in two runs of the same code).
    stretch: float = 1.0

    @property
    def protocol(self) -> str:
        return "grpc" if self.form == "grpc" else "http"


WORKLOADS: tuple[Workload, ...] = (
    Workload("W1", "iris [1,4] FP32, REST JSON", "iris", "json", (1, 4), "wsgi"),
    Workload("W2", "iris [1,4] FP32, gRPC raw", "iris", "grpc", (1, 4), "grpc"),
    # What tritonclient's and perf_analyzer's HTTP clients send: binary tensors both ways, every
    # output named. Modelport's only: it is what perf_analyzer is checked against, and the peers
    # name their outputs otherwise (KServe 400s `predictions`, MLServer 500s binary requests).
    Workload(
        "W1-bin",
        "iris [1,4] FP32, REST binary in and out",
        "iris",
        "tensors",
        (1, 4),
        "wsgi",
        (8,),
        ("modelport", "ceiling-wsgi"),
    ),
    Workload("W3", "iris [256,4] FP32, REST JSON", "iris", "json", (256, 4), "wsgi"),
    Workload("W4-json", "sum [1,1M] FP32 (4 MiB), REST JSON", "sum", "json", (1, MIB), "wsgi"),
    Workload("W4-bin", "sum [1,1M] FP32 (4 MiB), REST binary", "sum", "binary", (1, MIB), "wsgi"),
    Workload("W4-grpc", "sum [1,1M] FP32 (4 MiB), gRPC raw", "sum", "grpc", (1, MIB), "grpc"),
    Workload(
        "W4-bin64",
        "sum [1,16M] FP32 (64 MiB), REST binary",
        "sum",
        "binary",
        (1, 16 * MIB),
        "wsgi",
        stretch=4.0,
    ),
    Workload(
        "B-off",
        "5 ms per call, no batching, REST JSON [1,4]",
        "fixed-cost",
        "json",
        (1, 4),
        None,
        (32,),
        ("modelport-batching",),
    ),
    Workload(
        "B-on",
        "5 ms per call, max_batch_size 32, REST JSON [1,4]",
        "fixed-cost-batched",
        "json",
        (1, 4),
        None,
        (32,),
        ("modelport-batching",),
    ),
)


def tensor(workload: Workload) -> np.ndarray:
    """The workload's FP32 input: iris rows, or deterministic values for the sum model."""
    if workload.model == "sum":
        count = int(np.prod(workload.shape))
        return (np.arange(count, dtype=np.float32) % 1000 / 1000).reshape(workload.shape)
    return np.tile(np.asarray(IRIS_ROW, dtype=np.float32), (workload.shape[0], 1))


def input_name(workload: Workload) -> str:
    return "x" if workload.model.startswith("fixed-cost") else "input-0"


@dataclass(frozen=True)
class Request:
    """A workload's request as bytes, with where to send it."""

    path: str  # REST path, or the gRPC method
    body: bytes
    headers: dict[str, str]


def build(workload: Workload) -> Request:
    """The request every server gets for this workload."""
    array = tensor(workload)
    name = input_name(workload)
    if workload.form == "grpc":
        message = pb.ModelInferRequest(model_name=workload.model)
        entry = message.inputs.add(name=name, datatype="FP32")
        entry.shape.extend(array.shape)
        message.raw_input_contents.append(array.tobytes())
        return Request(GRPC_METHOD, message.SerializeToString(), {})
    path = f"/v2/models/{workload.model}/infer"
    spec = {"name": name, "shape": list(array.shape), "datatype": "FP32"}
    if workload.form == "json":
        body = orjson.dumps(
            {"inputs": [{**spec, "data": array.reshape(-1)}]}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        return Request(path, body, {"Content-Type": "application/json"})
    document: dict = {"inputs": [{**spec, "parameters": {"binary_data_size": array.nbytes}}]}
    if workload.form == "tensors":
        binary = {"binary_data": True}
        document["outputs"] = [{"name": n, "parameters": binary} for n in OUTPUTS[workload.model]]
    header = orjson.dumps(document)
    return Request(
        path,
        header + array.tobytes(),
        {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))},
    )


def expected(workload: Workload) -> np.ndarray:
    """What the first output must hold."""
    array = tensor(workload)
    if workload.model == "sum":
        return array.sum(axis=-1, dtype=np.float64).astype(np.float32)
    if workload.model == "iris":
        return np.full(workload.shape[0], IRIS_CLASS)
    return array


def probe(workload: Workload, host: str, port: int, check_answer: bool = True) -> str | None:
    """Send the request once; None when the answer is right, else why it is not.

    A ceiling server answers a fixed body: only its status is checked (`check_answer=False`).
    """
    request = build(workload)
    try:
        first = _grpc_output(request, host, port) if workload.form == "grpc" else None
        if first is None:
            first = _http_output(request, host, port)
    except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:160]}"
    if not check_answer:
        return None
    want = expected(workload)
    got = np.asarray(first, dtype=np.float64).reshape(-1)
    if got.shape != want.reshape(-1).shape or not np.allclose(got, want.reshape(-1), rtol=1e-3):
        return f"wrong answer: {got[:4].tolist()}... expected {want.reshape(-1)[:4].tolist()}..."
    return None


def _http_output(request: Request, host: str, port: int) -> list[float]:
    connection = http.client.HTTPConnection(host, port, timeout=120)
    try:
        connection.request("POST", request.path, body=request.body, headers=request.headers)
        answer = connection.getresponse()
        content = answer.read()
    finally:
        connection.close()
    if answer.status != 200:
        raise RuntimeError(f"HTTP {answer.status}: {content[:160].decode(errors='replace')}")
    length = answer.headers.get(HEADER_LENGTH)
    document = orjson.loads(content[: int(length)] if length else content)
    first = document["outputs"][0]
    size = (first.get("parameters") or {}).get("binary_data_size")
    if size is None:
        return first["data"]
    raw = content[int(length) : int(length) + size]
    return np.frombuffer(raw, dtype=_RAW_DTYPES[first["datatype"]]).tolist()


_RAW_DTYPES = {"INT64": "<i8", "INT32": "<i4", "FP32": "<f4", "FP64": "<f8"}
_TYPED_FIELDS = {
    "INT64": "int64_contents",
    "INT32": "int_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def _grpc_output(request: Request, host: str, port: int) -> list[float]:
    import grpc

    options = [("grpc.max_receive_message_length", 256 * MIB)]
    options.append(("grpc.max_send_message_length", 256 * MIB))
    with grpc.insecure_channel(f"{host}:{port}", options=options) as channel:
        call = channel.unary_unary(request.path)
        try:
            raw = call(request.body, timeout=120)
        except grpc.RpcError as exc:
            raise RuntimeError(f"gRPC {exc.code().name}: {exc.details()}") from None
    answer = pb.ModelInferResponse.FromString(raw)
    output = answer.outputs[0]
    if answer.raw_output_contents:
        data = np.frombuffer(answer.raw_output_contents[0], dtype=_RAW_DTYPES[output.datatype])
        return data.tolist()
    return list(getattr(output.contents, _TYPED_FIELDS[output.datatype]))
