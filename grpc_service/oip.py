"""The Open Inference Protocol gRPC service (`inference.GRPCInferenceService`, Triton's layout).

Each method translates with `app.codec.proto`, makes one data-plane call, and translates back.
Errors are raised, never turned into statuses here: `interceptors.ErrorInterceptor` does that for
every method. The one exception is ModelStreamInfer, where a failed request is an in-stream
`error_message` and the stream goes on (reference §7.7).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import grpc

from app.codec import proto as codec
from app.codec.model_config import model_config_to_json
from app.codec.proto_wire import InferCall, read_infer_call
from app.dataplane import DataPlane
from app.errors import DeadlineExceeded, InvalidInput, ModelNotFound
from grpc_service.interceptors import status_of
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
SERVICE_NAME = SERVICE.full_name
#: Methods that stay public when auth is configured (DESIGN §4).
PUBLIC_METHODS = frozenset(f"/{SERVICE_NAME}/{rpc}" for rpc in ("ServerLive", "ServerReady"))
#: Request readers registered instead of the generated ones (`grpc_service.handlers`):
#: ModelInfer keeps raw tensors as views of the received bytes.
READERS = {"ModelInfer": read_infer_call}


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """OIP over gRPC on one data plane."""

    def __init__(self, dataplane: DataPlane, stream_idle_timeout: float = 60.0) -> None:
        self._dataplane = dataplane
        #: Seconds a ModelStreamInfer may go without a request before it is ended.
        self._stream_idle_timeout = stream_idle_timeout

    def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.ServicerContext
    ) -> pb.ServerLiveResponse:
        """`live` is true while the process answers."""
        return pb.ServerLiveResponse(live=self._dataplane.live())

    def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.ServicerContext
    ) -> pb.ServerReadyResponse:
        """`ready` once loading is over."""
        return pb.ServerReadyResponse(ready=self._dataplane.ready())

    def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.ServicerContext
    ) -> pb.ModelReadyResponse:
        """OK with `ready=false` for an unknown model too: tritonclient raises on any error."""
        try:
            ready = self._dataplane.model_ready(request.name, request.version or None)
        except ModelNotFound:
            ready = False
        return pb.ModelReadyResponse(ready=ready)

    def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.ServicerContext
    ) -> pb.ServerMetadataResponse:
        """Name, version and extensions."""
        return codec.server_metadata_to_proto(self._dataplane.server_metadata())

    def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.ServicerContext
    ) -> pb.ModelMetadataResponse:
        """Inputs, outputs, platform and versions of a ready model."""
        metadata = self._dataplane.model_metadata(request.name, request.version or None)
        return codec.model_metadata_to_proto(metadata)

    def ModelInfer(
        self, request: InferCall, context: grpc.ServicerContext
    ) -> pb.ModelInferResponse:
        """One inference; outputs come back raw when the inputs came raw.

        The request is read by `READERS["ModelInfer"]`: its raw tensors are views of the
        received bytes.
        """
        return self._infer(request.message, request.raw)

    def _infer(
        self, request: pb.ModelInferRequest, raw: list[memoryview] | None = None
    ) -> pb.ModelInferResponse:
        response = self._dataplane.infer(codec.request_from_proto(request, raw))
        return codec.response_to_proto(response, codec.wants_raw_outputs(request, raw))

    def ModelStreamInfer(
        self, request_iterator: Iterator[pb.ModelInferRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ModelStreamInferResponse]:
        """One response per request, in order; a failure is answered in-stream.

        A stream that sends no request for `grpc.stream_idle_timeout_s` ends with
        DEADLINE_EXCEEDED, so a client that opens one and goes quiet does not hold a server
        thread for ever.
        """
        for request in _with_idle_timeout(request_iterator, context, self._stream_idle_timeout):
            try:
                yield pb.ModelStreamInferResponse(infer_response=self._infer(request))
            except Exception as exc:
                _, message = status_of(exc, "ModelStreamInfer")
                yield codec.stream_error_to_proto(request, message)

    def ModelConfig(
        self, request: pb.ModelConfigRequest, context: grpc.ServicerContext
    ) -> pb.ModelConfigResponse:
        """Triton's model configuration of a ready model."""
        version = request.version or None
        model = self._dataplane.model(request.name, version)
        settings = self._dataplane.model_entry(request.name, version).settings
        return codec.model_config_to_proto(model_config_to_json(model, settings))

    def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: grpc.ServicerContext
    ) -> pb.ModelStatisticsResponse:
        """Statistics of every model, one model's versions, or one version, server-wide."""
        stats = self._dataplane.statistics(request.name, request.version)
        return pb.ModelStatisticsResponse(model_stats=[codec.stats_to_proto(s) for s in stats])

    def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: grpc.ServicerContext
    ) -> pb.RepositoryIndexResponse:
        """Every configured model version with its state."""
        return codec.repository_index_to_proto(self._dataplane.repository_index(request.ready))

    def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: grpc.ServicerContext
    ) -> pb.RepositoryModelLoadResponse:
        """Load or reload a model, through the same data-plane call as REST."""
        self._dataplane.load_model(_model_name(request), list(request.parameters))
        return pb.RepositoryModelLoadResponse()

    def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: grpc.ServicerContext
    ) -> pb.RepositoryModelUnloadResponse:
        """Unload a model, through the same data-plane call as REST."""
        self._dataplane.unload_model(_model_name(request))
        return pb.RepositoryModelUnloadResponse()


_END = object()


def _with_idle_timeout(
    requests: Iterator[pb.ModelInferRequest], context: grpc.ServicerContext, seconds: float
) -> Iterator[pb.ModelInferRequest]:
    """`requests`, raising `DeadlineExceeded` when the next one takes more than `seconds`.

    grpcio's request iterator blocks without a timeout, so a reader thread takes the requests
    and hands them over; it ends when the stream does (ended by the client, or by the abort
    that follows the raise here).
    """
    # One request at a time, so a client cannot make the reader buffer its stream.
    handed: queue.Queue[object] = queue.Queue(maxsize=1)

    def hand(item: object) -> bool:
        while context.is_active():  # once the call is over nobody takes it: give up
            try:
                handed.put(item, timeout=1.0)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for request in requests:
                if not hand(request):
                    return
        except Exception as exc:  # the RPC ended under the reader (cancelled, aborted)
            hand(exc)
            return
        hand(_END)

    threading.Thread(target=read, name="modelport-stream-reader", daemon=True).start()
    while True:
        try:
            item = handed.get(timeout=seconds)
        except queue.Empty:
            raise DeadlineExceeded(
                f"ModelStreamInfer sent no request for {seconds:g} s "
                "(grpc.stream_idle_timeout_s): stream closed"
            ) from None
        if item is _END:
            return
        if isinstance(item, Exception):
            return  # the call is over: nobody reads what we would answer
        yield item  # type: ignore[misc]  # only requests are left


def _model_name(
    request: pb.RepositoryModelLoadRequest | pb.RepositoryModelUnloadRequest,
) -> str:
    """The model to load or unload.

    KServe's proto puts the name in field 1, which Triton's layout reads as `repository_name`
    (reference §7.6), so an empty `model_name` falls back to it.
    """
    name = request.model_name or request.repository_name
    if not name:
        raise InvalidInput("model_name is empty")
    return name
