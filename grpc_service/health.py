"""`grpc.health.v1` for the sidecar: SERVING once models are loaded, NOT_SERVING while it drains.

On shutdown the health service turns NOT_SERVING for the server ("") and every service before the
server stops taking calls, so load balancers that Check or Watch stop sending new calls while the
calls in flight finish within the grace period.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import grpc
from grpc_health.v1 import health, health_pb2

SERVICE_NAME = health.SERVICE_NAME
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DrainingHealth(health.HealthServicer):
    """grpcio's health servicer whose Watch streams end once they have said NOT_SERVING.

    A Watch is a call in flight like any other: left open, each one would hold `server.stop(grace)`
    for the whole grace period although its client has already been told all there is to tell.
    """

    def __init__(self, services: Iterable[str], serving: bool) -> None:
        # Blocking mode: Watch returns an iterator, which the error interceptor wraps anyway.
        super().__init__(experimental_non_blocking=False)
        self.draining = False
        for name in services:
            self.set(name, SERVING if serving else NOT_SERVING)

    def drain(self) -> None:
        """Report NOT_SERVING for the server and every service, for good (later `set`s are
        ignored). The server itself keeps answering until it is stopped."""
        self.draining = True
        self.enter_graceful_shutdown()

    def Watch(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.ServicerContext,
        send_response_callback: object = None,
    ) -> Iterator[health_pb2.HealthCheckResponse] | None:
        """Stream the service's status; after a drain's NOT_SERVING the stream ends (OK)."""
        responses = super().Watch(request, context, send_response_callback)
        return None if responses is None else self._until_drained(responses)

    def _until_drained(
        self, responses: Iterator[health_pb2.HealthCheckResponse]
    ) -> Iterator[health_pb2.HealthCheckResponse]:
        for response in responses:
            yield response
            if self.draining and response.status == NOT_SERVING:
                return
