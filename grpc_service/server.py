"""Build the gRPC sidecar: OIP, OMI, health and reflection on one `grpc.Server`.

`create_server` opens the ports but does not start the server, so gunicorn's hook (or a test)
decides when it runs. Every worker binds the same port with SO_REUSEPORT and the kernel spreads
connections over them, as it does for gunicorn's HTTP sockets. Stopping goes through `Sidecar`,
which reports NOT_SERVING before the server stops taking calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from app.dataplane import DataPlane
from config.settings import Settings
from grpc_service import health, oip, omi
from grpc_service.auth import AuthInterceptor, Credentials
from grpc_service.handlers import add_service
from grpc_service.interceptors import ErrorInterceptor

log = logging.getLogger("modelport.grpc")

HEALTH_SERVICE = health.SERVICE_NAME
# grpcio-reflection ships only v1alpha; v1 is wire-identical but for the package (omi.md §10).
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = (
    oip.SERVICE_NAME,
    omi.SERVICE_NAME,
    HEALTH_SERVICE,
    REFLECTION_V1,
    reflection.SERVICE_NAME,
)
#: Methods that need no credentials: health, reflection, ServerLive/Ready; OMI decides in-band.
_PUBLIC_PREFIXES = tuple(
    f"/{name}/"
    for name in (HEALTH_SERVICE, REFLECTION_V1, reflection.SERVICE_NAME, omi.SERVICE_NAME)
)
DEFAULT_GRACE_SECONDS = 10.0
#: What the health service reports on: the whole server ("") and each service it serves.
HEALTH_REPORTS = ("", oip.SERVICE_NAME, omi.SERVICE_NAME)


class Sidecar:
    """The gRPC server with its health service; `stop` drains health before the grace begins."""

    def __init__(self, server: grpc.Server, health_servicer: health.DrainingHealth) -> None:
        self.server = server
        self.health = health_servicer

    def start(self) -> None:
        """Start serving on the bound ports."""
        self.server.start()

    def drain(self) -> None:
        """Report NOT_SERVING everywhere, so balancers stop sending; every call is still served.

        gunicorn's worker calls this as SIGTERM arrives, while its HTTP requests finish; `stop`
        follows when the worker exits. Idempotent.
        """
        self.health.drain()

    def stop(self, grace: float | None) -> threading.Event:
        """Drain, then refuse new calls and let those in flight finish within `grace` seconds.

        Returns the event grpcio sets once every call is over (SIGTERM and OMI Shutdown alike).
        """
        self.drain()
        stopped: threading.Event = self.server.stop(grace)
        return stopped


def _public(method: str) -> bool:
    """Whether anyone may call `method`, credentials or not (DESIGN §4; OMI decides in-band)."""
    return method in oip.PUBLIC_METHODS or method.startswith(_PUBLIC_PREFIXES)


def _add_reflection(server: grpc.Server) -> None:
    reflection.enable_server_reflection(SERVICE_NAMES, server)
    servicer = reflection.ReflectionServicer(SERVICE_NAMES)
    handler = grpc.method_handlers_generic_handler(
        REFLECTION_V1,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))


def create_server(
    dataplane: DataPlane,
    settings: Settings,
    *,
    on_shutdown: Callable[[], None] | None = None,
    max_workers: int = 16,
    host: str | None = None,
) -> tuple[Sidecar, int]:
    """A sidecar bound to `grpc.port` (0 picks a free one) and `omi.port`, and the bound port.

    `on_shutdown` runs after an OMI Shutdown reply is sent; by default it stops this server
    (gunicorn's hook passes one that signals the master instead). Raises RuntimeError when a
    port cannot be bound.
    """
    server_settings = settings.server
    limit = server_settings.limits.max_request_bytes
    credentials = Credentials(server_settings.auth)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        # The first is outermost: credentials are refused inside the error mapping.
        interceptors=[
            ErrorInterceptor(dataplane.manager.has),
            AuthInterceptor(credentials, _public),
        ],
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ],
    )

    health_servicer = health.DrainingHealth(HEALTH_REPORTS, serving=dataplane.ready())
    sidecar = Sidecar(server, health_servicer)

    def stop_this_server() -> None:
        threading.Thread(target=sidecar.stop, args=(DEFAULT_GRACE_SECONDS,), daemon=True).start()

    add_service(
        server,
        oip.SERVICE,
        oip.InferenceServicer(dataplane, server_settings.grpc.stream_idle_timeout_s),
        oip.READERS,
    )
    add_service(
        server,
        omi.SERVICE,
        omi.OmiServicer(dataplane, settings, credentials, on_shutdown or stop_this_server),
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _add_reflection(server)

    host = host or server_settings.http.host
    port = server.add_insecure_port(f"{host}:{server_settings.grpc.port}")
    if port == 0:
        raise RuntimeError(f"cannot bind the gRPC port {host}:{server_settings.grpc.port}")
    omi_port = server_settings.omi.port
    if omi_port and omi_port != port and server.add_insecure_port(f"{host}:{omi_port}") == 0:
        raise RuntimeError(f"cannot bind the OMI port {host}:{omi_port}")
    return sidecar, port
