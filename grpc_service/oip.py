"""The Open Inference Protocol gRPC service (`inference.GRPCInferenceService`, Triton's layout).

Each method translates with `app.codec.proto`, makes one data-plane call, and translates back.
Errors are raised, never turned into statuses here: `interceptors.ErrorInterceptor` does that for
every method. The one exception is ModelStreamInfer, where a failed request is an in-stream
`error_message` and the stream goes on (reference §7.7).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from app.codec import proto as codec
from app.codec.model_config import model_config_to_json
from app.codec.proto_wire import InferCall, read_infer_call
from app.dataplane import DataPlane
from app.errors import InvalidInput, ModelNotFound
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

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane

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
        """One response per request, in order; a failure is answered in-stream."""
        for request in request_iterator:
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
