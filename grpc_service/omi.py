"""Chassis's Open Model Interface (`ModzyModel`: Status, Run, Shutdown) on the shared data plane.

The stock chassisml client names no model and sends no metadata, so OMI serves `omi.model` (or
the first configured model); raw-stub callers may pick another with the `omi-model` metadata key.
Failures are in-band, as Chassis reports them (`status_code` carries the DESIGN §5 HTTP number),
and each failed Run item is `success=false` with an `error` output: one bad item never fails the
others, and never the server.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

import grpc

from app.codec import omi as codec
from app.codec.explanation import explanation_item
from app.dataplane import DataPlane
from app.errors import ModelportError
from app.model import Model
from config.settings import Settings
from grpc_service.auth import Credentials
from protos import omi_pb2, omi_pb2_grpc

log = logging.getLogger("modelport.omi")

SERVICE = omi_pb2.DESCRIPTOR.services_by_name["ModzyModel"]
SERVICE_NAME = SERVICE.full_name
#: Metadata key a raw-stub caller may use to pick the model (the stock client cannot send it).
MODEL_METADATA_KEY = "omi-model"


Response = TypeVar(
    "Response", omi_pb2.StatusResponse, omi_pb2.RunResponse, omi_pb2.ShutdownResponse
)
Rpc = Callable[[Any, Any, grpc.ServicerContext], Response]


def _in_band(response_type: type[Response]) -> Callable[[Rpc[Response]], Rpc[Response]]:
    """An RPC whose `ModelportError` is answered in its response, as Chassis reports failures.

    `status_code` is the error's DESIGN §5 HTTP number; anything else still goes to the error
    interceptor (INTERNAL), as for every other RPC. A Run's failed items are not errors of the
    call: `_run_item` marks them one by one.
    """

    def wrap(rpc: Rpc[Response]) -> Rpc[Response]:
        @functools.wraps(rpc)
        def answer(self: Any, request: Any, context: grpc.ServicerContext) -> Response:
            try:
                return rpc(self, request, context)
            except ModelportError as exc:
                code, status, message = codec.error_status(exc)
                return response_type(status_code=code, status=status, message=message)

        return answer

    return wrap


class OmiServicer(omi_pb2_grpc.ModzyModelServicer):
    """OMI for one configured model (or the one named in metadata)."""

    def __init__(
        self,
        dataplane: DataPlane,
        settings: Settings,
        credentials: Credentials,
        on_shutdown: Callable[[], None],
    ) -> None:
        self._dataplane = dataplane
        self._omi = settings.server.omi
        self._max_request_bytes = settings.server.limits.max_request_bytes
        self._credentials = credentials
        self._on_shutdown = on_shutdown
        names = dataplane.manager.names()
        self._default_model = self._omi.model or (names[0] if names else "")
        self._initialized: set[str] = set()
        self._lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------

    def _model_name(self, context: grpc.ServicerContext) -> str:
        for key, value in context.invocation_metadata() or ():
            if key == MODEL_METADATA_KEY and value:
                return value if isinstance(value, str) else value.decode("utf-8", "replace")
        return self._default_model

    def _authorize(self, context: grpc.ServicerContext) -> None:
        if self._omi.require_auth:
            self._credentials.require(context.invocation_metadata())

    def _authorize_shutdown(self, context: grpc.ServicerContext) -> None:
        # DESIGN §6: with auth configured, Shutdown needs credentials or omi.allow_shutdown.
        if not self._omi.allow_shutdown:
            self._credentials.require(context.invocation_metadata())

    def _first_status(self, name: str) -> bool:
        with self._lock:
            first = name not in self._initialized
            self._initialized.add(name)
            return first

    # -- RPCs ------------------------------------------------------------------------------

    @_in_band(omi_pb2.StatusResponse)
    def Status(
        self, request: omi_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> omi_pb2.StatusResponse:
        """200 with the model's metadata once it serves; its DESIGN §5 code otherwise."""
        self._authorize(context)
        name = self._model_name(context)
        model = self._dataplane.model(name)
        metadata = self._dataplane.model_metadata(name)
        message = (
            "Model Initialized Successfully."
            if self._first_status(name)
            else "Model Already Initialized."
        )
        return codec.status_to_proto(
            metadata, model.version, message, self._max_request_bytes, _processes(model)
        )

    @_in_band(omi_pb2.RunResponse)
    def Run(
        self, request: omi_pb2.RunRequest, context: grpc.ServicerContext
    ) -> omi_pb2.RunResponse:
        """One output per input item, in order; a failed item is marked, the Run is still 200."""
        self._authorize(context)
        model = self._dataplane.model(self._model_name(context))
        outputs = [
            self._run_item(model, dict(item.input), request.explain) for item in request.inputs
        ]
        return omi_pb2.RunResponse(
            status_code=HTTPStatus.OK,
            status=HTTPStatus.OK.phrase,
            message="Inference executed",
            outputs=outputs,
        )

    def _run_item(
        self, model: Model, item: Mapping[str, bytes], explain: bool = False
    ) -> omi_pb2.OutputItem:
        # Every model call is a data-plane call, which counts and times it as REST and OIP do.
        # Chassis's `explain` flag adds the attributions v1/v2 explain answer, per item.
        plane = self._dataplane
        try:
            if _processes(model):
                output = codec.output_item(plane.process(model.name, model.version, item))
                if explain:
                    # The default adapter reads the item for the explanation, so its
                    # attributions are those v1 and v2 answer for the same rows.
                    request = codec.request_from_item(model.name, model.version, item, model.inputs)
                    output.output.update(explanation_item(plane.explain(request)))
                return output
            request = codec.request_from_item(model.name, model.version, item, model.inputs)
            if not explain:
                return codec.item_from_response(plane.infer(request))
            # One explain call answers both files, so the item is inferred (and counted) once.
            response = plane.explain(request)
            output = codec.item_from_response(response)
            output.output.update(explanation_item(response))
            return output
        except ModelportError as exc:
            return codec.failed_item(exc.message)
        except Exception:
            log.exception("OMI item of model '%s' failed unexpectedly", model.name)
            return codec.failed_item("internal server error")

    @_in_band(omi_pb2.ShutdownResponse)
    def Shutdown(
        self, request: omi_pb2.ShutdownRequest, context: grpc.ServicerContext
    ) -> omi_pb2.ShutdownResponse:
        """Reply first, then stop the whole server gracefully (DESIGN §6)."""
        self._authorize_shutdown(context)
        log.warning("OMI Shutdown requested: stopping the server")
        # Called when this RPC is over, i.e. after the reply went out.
        context.add_callback(self._on_shutdown)
        return omi_pb2.ShutdownResponse(
            status_code=HTTPStatus.OK,
            status=HTTPStatus.OK.phrase,
            message="Model Shutdown Successfully.",
        )


def _processes(model: Model) -> bool:
    """True for a model with a Chassis-style `process(item)` method."""
    return callable(getattr(model, "process", None))
