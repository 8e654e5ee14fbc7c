"""The gRPC sidecar in-process: error mapping covers every method, auth, health, OMI gating."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import orjson
import pytest
from flask import Flask
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from app import metrics
from app.codec.proto_wire import InferCall, read_infer_call
from app.errors import ModelUnavailable
from config.settings import AuthSettings, OmiSettings, Settings
from grpc_service import oip, omi, worker
from grpc_service import server as sidecar
from grpc_service.handlers import method_handlers
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import omi_pb2, omi_pb2_grpc
from tests.grpc_support import loopback_sidecar

SERVICES = [
    pb.DESCRIPTOR.services_by_name["GRPCInferenceService"],
    omi_pb2.DESCRIPTOR.services_by_name["ModzyModel"],
]
TOKEN, API_KEY = "s3cret-token", "s3cret-key"


def _settings(app: Flask, **server_changes: Any) -> Settings:
    settings: Settings = app.extensions["modelport"].settings
    server = dataclasses.replace(settings.server, **server_changes)
    return dataclasses.replace(settings, server=server)


@pytest.fixture()
def serve(app: Flask) -> Iterator[Callable[..., grpc.Channel]]:
    """Start in-process servers on free ports; stopped after the test."""
    started: list[tuple[grpc.Server, grpc.Channel]] = []

    def start(settings: Settings | None = None, **options: Any) -> grpc.Channel:
        server, port = loopback_sidecar(app, settings, **options)
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, channel))
        return channel

    yield start
    for server, channel in started:
        channel.close()
        server.stop(0)


def _call(channel: grpc.Channel, service: Any, method: Any, metadata=None) -> Any:
    """Call any method with an empty request, whatever its cardinality."""
    path = f"/{service.full_name}/{method.name}"
    request_type = method.input_type._concrete_class
    response_type = method.output_type._concrete_class
    kind = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[(method.client_streaming, method.server_streaming)]
    stub = kind(
        path,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    request = iter([request_type()]) if method.client_streaming else request_type()
    answer = stub(request, timeout=10, metadata=metadata)
    return list(answer) if method.server_streaming else answer


def _raising(base: type, exc: Exception) -> type:
    """A servicer whose every RPC raises `exc`, built from the service descriptor."""

    def raise_it(self, request, context):
        raise exc

    service = next(s for s in SERVICES if base.__name__.startswith(s.name))
    methods: dict[str, Any] = {m.name: raise_it for m in service.methods}
    methods["__init__"] = lambda self, *args: None
    return type(f"Raising{base.__name__}", (base,), methods)


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (
            ModelUnavailable("model 'x' is loading"),
            grpc.StatusCode.UNAVAILABLE,
            "model 'x' is loading",
        ),
        (RuntimeError("secret internals"), grpc.StatusCode.INTERNAL, "internal server error"),
    ],
    ids=["modelport-error", "unexpected-error"],
)
def test_every_method_maps_errors_through_the_interceptor(
    serve, monkeypatch: pytest.MonkeyPatch, exc: Exception, code: grpc.StatusCode, message: str
) -> None:
    """Walk both service descriptors: each method's error comes back mapped, never UNKNOWN."""
    monkeypatch.setattr(
        oip, "InferenceServicer", _raising(pb_grpc.GRPCInferenceServiceServicer, exc)
    )
    monkeypatch.setattr(omi, "OmiServicer", _raising(omi_pb2_grpc.ModzyModelServicer, exc))
    channel = serve()
    covered = []
    for service in SERVICES:
        for method in service.methods:
            with pytest.raises(grpc.RpcError) as caught:
                _call(channel, service, method)
            assert caught.value.code() == code, method.full_name
            assert caught.value.details() == message, method.full_name
            covered.append(method.name)
    assert len(covered) == 15


def test_model_infer_is_registered_with_the_zero_copy_reader() -> None:
    """The servicer sees one request type per method: ModelInfer's is `InferCall`."""
    handlers = method_handlers(oip.SERVICE, object.__new__(oip.InferenceServicer), oip.READERS)
    assert set(handlers) == {method.name for method in oip.SERVICE.methods}
    for method in oip.SERVICE.methods:
        reader = handlers[method.name].request_deserializer
        if method.name == "ModelInfer":
            assert reader is read_infer_call
        else:
            assert reader == message_factory.GetMessageClass(method.input_type).FromString
    call = handlers["ModelInfer"].request_deserializer(
        pb.ModelInferRequest(model_name="iris", raw_input_contents=[b"abcd"]).SerializeToString()
    )
    assert isinstance(call, InferCall) and bytes(call.raw[0]) == b"abcd"


def test_real_methods_never_answer_unknown(serve) -> None:
    """Empty requests to the real servicers: a mapped code or success, never UNKNOWN."""
    channel = serve()
    for service in SERVICES:
        for method in service.methods:
            if method.name == "Shutdown":
                continue
            try:
                _call(channel, service, method)
            except grpc.RpcError as exc:
                assert exc.code() != grpc.StatusCode.UNKNOWN, method.full_name
                assert "Traceback" not in (exc.details() or "")


def test_model_ready_for_an_unknown_model_is_ok_and_false(serve) -> None:
    stub = pb_grpc.GRPCInferenceServiceStub(serve())
    assert stub.ModelReady(pb.ModelReadyRequest(name="no-such-model")).ready is False
    assert stub.ModelReady(pb.ModelReadyRequest(name="broken")).ready is False
    assert stub.ModelReady(pb.ModelReadyRequest(name="iris", version="1")).ready is True


def test_health_is_serving(serve) -> None:
    stub = health_pb2_grpc.HealthStub(serve())
    for name in ("", "inference.GRPCInferenceService", "ModzyModel"):
        answer = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture()
def secured(app: Flask, serve) -> Callable[..., grpc.Channel]:
    def start(**omi_changes: Any) -> grpc.Channel:
        base = app.extensions["modelport"].settings
        settings = _settings(
            app,
            auth=AuthSettings(bearer_tokens=(TOKEN,), api_keys=(API_KEY,)),
            omi=dataclasses.replace(base.server.omi, **omi_changes),
        )
        return serve(settings)

    return start


BEARER = [("authorization", f"Bearer {TOKEN}")]
KEY = [("x-api-key", API_KEY)]


def test_auth_protects_everything_but_health_and_liveness(secured) -> None:
    channel = secured()
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    for metadata in (
        None,
        [("authorization", "Bearer wrong")],
        [("x-api-key", "wrong")],
        [("authorization", TOKEN)],
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelMetadata(pb.ModelMetadataRequest(name="iris"), metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    for metadata in (BEARER, KEY, [("authorization", f"bearer {TOKEN}")]):
        assert (
            stub.ModelMetadata(pb.ModelMetadataRequest(name="iris"), metadata=metadata).name
            == "iris"
        )
    with pytest.raises(grpc.RpcError) as caught:
        stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="iris"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_omi_auth_is_in_band(secured) -> None:
    stub = omi_pb2_grpc.ModzyModelStub(secured())
    assert stub.Status(omi_pb2.StatusRequest()).status_code == 401
    assert stub.Run(omi_pb2.RunRequest()).status_code == 401
    assert stub.Status(omi_pb2.StatusRequest(), metadata=BEARER).status_code == 200
    open_stub = omi_pb2_grpc.ModzyModelStub(secured(require_auth=False))
    assert open_stub.Status(omi_pb2.StatusRequest()).status_code == 200


def test_shutdown_needs_credentials_or_allow_shutdown(secured) -> None:
    stub = omi_pb2_grpc.ModzyModelStub(secured())
    assert stub.Shutdown(omi_pb2.ShutdownRequest()).status_code == 401
    # allow_shutdown lets the stock client (no credentials) in; in-process it stops this server.
    allowed = omi_pb2_grpc.ModzyModelStub(secured(allow_shutdown=True))
    assert allowed.Shutdown(omi_pb2.ShutdownRequest()).status_code == 200


def test_shutdown_replies_then_runs_the_shutdown_hook(app: Flask, serve) -> None:
    calls: list[str] = []
    channel = serve(on_shutdown=lambda: calls.append("stop"))
    answer = omi_pb2_grpc.ModzyModelStub(channel).Shutdown(
        omi_pb2.ShutdownRequest(), metadata=BEARER
    )
    assert (answer.status_code, answer.message) == (200, "Model Shutdown Successfully.")
    deadline = time.monotonic() + 2
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert calls == ["stop"]


def test_omi_status_first_then_already(serve) -> None:
    stub = omi_pb2_grpc.ModzyModelStub(serve())
    first = stub.Status(omi_pb2.StatusRequest(), metadata=[("omi-model", "sum")])
    again = stub.Status(omi_pb2.StatusRequest(), metadata=[("omi-model", "sum")])
    assert first.message == "Model Initialized Successfully."
    assert again.message == "Model Already Initialized."
    assert first.model_info.model_name == "sum"
    assert [i.filename for i in first.inputs] == ["input"]
    assert OmiSettings().port == 45000


def test_omi_run_with_explain_adds_the_explanation_to_each_item(serve) -> None:
    import json

    import orjson

    stub = omi_pb2_grpc.ModzyModelStub(serve())
    row = orjson.dumps([[6.8, 2.8, 4.8, 1.4]])
    request = omi_pb2.RunRequest(inputs=[omi_pb2.InputItem(input={"input": row})], explain=True)
    answer = stub.Run(request, metadata=[("omi-model", "iris-xgboost")])
    (item,) = answer.outputs
    assert answer.status_code == 200 and item.success
    explanation = json.loads(item.output["explanation.json"])
    assert explanation["predictions"] == [1]
    assert len(explanation["explanations"][0]["attributions"]) == 3
    plain = stub.Run(
        omi_pb2.RunRequest(inputs=[omi_pb2.InputItem(input={"input": row})]),
        metadata=[("omi-model", "iris-xgboost")],
    )
    assert "explanation.json" not in plain.outputs[0].output
    unexplainable = stub.Run(request, metadata=[("omi-model", "echo")])
    assert not unexplainable.outputs[0].success


IRIS_ITEM = {"input": orjson.dumps([[6.8, 2.8, 4.8, 1.4]])}
DIGITS_ITEM = {"input": orjson.dumps([[0.0] * 64])}


def _counts(app: Flask, model: str) -> list[float]:
    """A model's statistics (items, executions, successes, failures) and batch-size samples."""
    plane = app.extensions["modelport"].dataplane
    stats = plane.stats.snapshot(model, plane.model(model).version)
    metrics.flush()  # this process's buffered samples (app/metrics.py)
    batches = REGISTRY.get_sample_value("modelport_batch_size_count", {"model": model}) or 0
    return [
        stats.inference_count,
        stats.execution_count,
        stats.success.count,
        stats.fail.count,
        batches,
    ]


@pytest.mark.parametrize(
    ("model", "item", "explain"),
    [
        ("digits", DIGITS_ITEM, False),
        ("iris-xgboost", IRIS_ITEM, False),
        ("iris-xgboost", IRIS_ITEM, True),
    ],
    ids=["own-process", "default-adapter", "default-adapter-explained"],
)
def test_an_omi_run_item_is_one_inference(
    app: Flask, serve, model: str, item: dict[str, bytes], explain: bool
) -> None:
    """Statistics and metrics of an OMI item come from the data plane, once, as for REST."""
    before = _counts(app, model)
    answer = omi_pb2_grpc.ModzyModelStub(serve()).Run(
        omi_pb2.RunRequest(inputs=[omi_pb2.InputItem(input=item)], explain=explain),
        metadata=[("omi-model", model)],
    )
    (output,) = answer.outputs
    assert output.success, output.output
    assert ("explanation.json" in output.output) is explain
    assert [after - was for after, was in zip(_counts(app, model), before, strict=True)] == [
        1,
        1,
        1,
        0,
        1,
    ]


def test_a_failed_omi_item_is_one_failed_inference(app: Flask, serve) -> None:
    before = _counts(app, "digits")
    answer = omi_pb2_grpc.ModzyModelStub(serve()).Run(
        omi_pb2.RunRequest(inputs=[omi_pb2.InputItem(input={"image": b"[1]"})]),
        metadata=[("omi-model", "digits")],
    )
    assert not answer.outputs[0].success
    assert "no 'input' key" in answer.outputs[0].output["error"].decode()
    assert [after - was for after, was in zip(_counts(app, "digits"), before, strict=True)] == [
        0,
        0,
        0,
        1,
        0,
    ]


def test_drain_reports_not_serving_ends_watches_and_keeps_serving_calls(app: Flask) -> None:
    running, port = loopback_sidecar(app)
    running.start()
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service="ModzyModel"), timeout=30)
            assert next(watch).status == serving
            running.drain()
            assert [answer.status for answer in watch] == [not_serving]  # then it ends
            for name in sidecar.HEALTH_REPORTS:
                check = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                assert check.status == not_serving, name
            later = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
            assert [answer.status for answer in later] == [not_serving]
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live  # still answering
    finally:
        # No Watch is left open to hold the stop for its whole (long) grace.
        assert running.stop(60).wait(30)


def test_the_grpc_drain_gets_what_the_http_drain_left_of_the_grace_period() -> None:
    reserve = worker.EXIT_RESERVE_SECONDS
    assert worker.grace_left(30, since=100.0, now=104.0) == 26 - reserve
    assert worker.grace_left(30, since=100.0, now=140.0) == 0  # nothing left: cut at once
    assert worker.grace_left(30, since=None, now=140.0) == 30  # no SIGTERM (max_requests)
