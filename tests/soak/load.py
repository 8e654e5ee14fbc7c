"""The soak's load: one client process sends a fixed mix of requests, each with its expected answer.

The mix covers every front door and the error rows: KServe v1, v2 JSON, v2 binary, MLRun
`infer_dict`, OIP gRPC (typed and raw), OMI Run, and 400 / 404 / 500 / 503 answers on purpose.
A process counts answers by (kind, status) and keeps the first unexpected ones; it runs in a
spawned child (tests/soak/test_soak.py), so its gRPC channels are made after the fork.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import orjson
import requests

from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import omi_pb2, omi_pb2_grpc

IRIS_ROW = [6.8, 2.8, 4.8, 1.4]
V2_IRIS = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROW}]}


def _binary_body() -> tuple[bytes, dict[str, str]]:
    """A tritonclient-style binary request for `sum`: a [2, 3] FP32 matrix as raw bytes."""
    matrix = np.arange(6, dtype="<f4").reshape(2, 3)
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": matrix.nbytes},
                }
            ],
            "outputs": [{"name": "sum", "parameters": {"binary_data": True}}],
        }
    )
    return header + matrix.tobytes(), {"Inference-Header-Content-Length": str(len(header))}


def _grpc_iris() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="iris")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[1, 4])
    tensor.contents.fp32_contents.extend(IRIS_ROW)
    return request


def _grpc_echo_raw() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="echo")
    request.inputs.add(name="x", datatype="INT32", shape=[4])
    request.raw_input_contents.append(struct.pack("<4i", 1, 2, 3, 4))
    return request


class Client:
    """One process's connections (a kept-alive Session, one gRPC channel) and its mix."""

    def __init__(self, url: str, grpc_port: int) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Accept-Encoding"] = "identity"
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        self.oip = pb_grpc.GRPCInferenceServiceStub(self.channel)
        self.omi = omi_pb2_grpc.ModzyModelStub(self.channel)
        binary, binary_headers = _binary_body()
        post = self._post
        iris_rows = {"instances": [IRIS_ROW, IRIS_ROW]}
        bad_shape = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32",
                                 "data": IRIS_ROW[:3]}]}  # fmt: skip
        negative = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [-1.0]}]}
        records = {"inputs": [dict(zip(
            ["sepal_length", "sepal_width", "petal_length", "petal_width"], IRIS_ROW, strict=True
        ))]}  # fmt: skip
        omi_item = omi_pb2.RunRequest(
            inputs=[omi_pb2.InputItem(input={"input": orjson.dumps([[0.0] * 64])})]
        )
        iris, echo_raw = _grpc_iris(), _grpc_echo_raw()
        missing = pb.ModelInferRequest(model_name="nope")
        #: (kind, call, expected status): the mix, sent in this order, round and round.
        self.mix: list[tuple[str, Callable[[], str], str]] = [
            ("v1", lambda: post("/v1/models/iris:predict", iris_rows), "200"),
            ("v2-json", lambda: post("/v2/models/iris/infer", V2_IRIS), "200"),
            ("v2-binary", lambda: post("/v2/models/sum/infer", binary, binary_headers), "200"),
            ("grpc", lambda: self._grpc(iris), "OK"),
            ("infer-dict", lambda: post("/v2/models/iris/infer_dict", records), "200"),
            ("grpc-raw", lambda: self._grpc(echo_raw), "OK"),
            ("omi", lambda: self._omi(omi_item), "200"),
            ("v2-json", lambda: post("/v2/models/iris-onnx/infer", V2_IRIS), "200"),
            ("err-404", lambda: post("/v2/models/nope/infer", V2_IRIS), "404"),
            ("err-400", lambda: post("/v2/models/iris/infer", bad_shape), "400"),
            ("err-500", lambda: post("/v2/models/failing/infer", negative), "500"),
            ("err-503", lambda: post("/v2/models/broken/infer", negative), "503"),
            ("grpc-404", lambda: self._grpc(missing), "NOT_FOUND"),
            ("grpc", lambda: self._grpc(iris), "OK"),
        ]

    def _post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> str:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        answer = self.session.post(self.url + path, data=data, headers=headers, timeout=60)
        return str(answer.status_code)

    def _grpc(self, request: pb.ModelInferRequest) -> str:
        try:
            self.oip.ModelInfer(request, timeout=60)
            return "OK"
        except grpc.RpcError as exc:
            return exc.code().name

    def _omi(self, request: omi_pb2.RunRequest) -> str:
        answer = self.omi.Run(request, timeout=60)
        ok = answer.status_code == 200 and all(item.success for item in answer.outputs)
        return "200" if ok else f"omi-{answer.status_code}"

    def close(self) -> None:
        self.session.close()
        self.channel.close()


def run(url: str, grpc_port: int, count: int, progress: Any, results: Any) -> None:
    """Send `count` requests of the mix; add to `progress` (a shared counter) every 100, and
    put `{"counts": {...}, "bad": n, "unexpected": [the first 20]}` on `results` at the end."""
    client = Client(url, grpc_port)
    counts: Counter[str] = Counter()
    unexpected: list[str] = []
    bad = 0
    try:
        for index in range(count):
            kind, call, expected = client.mix[index % len(client.mix)]
            try:
                status = call()
            except Exception as exc:  # a dropped connection is an unexpected answer too
                status = f"exception {type(exc).__name__}: {exc}"[:200]
            counts[f"{kind} {status}"] += 1
            if status != expected:
                bad += 1
                if len(unexpected) < 20:
                    unexpected.append(f"{kind}: expected {expected}, got {status}")
            if index % 100 == 99:
                with progress.get_lock():
                    progress.value += 100
    finally:
        client.close()
        results.put(json.dumps({"counts": counts, "bad": bad, "unexpected": unexpected}))
