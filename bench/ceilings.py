"""The ceilings: servers that do nothing but read the request and answer a fixed response.

    PYTHONPATH=. gunicorn -k app.httpworker.worker.HttptoolsWorker --threads 2 -w 1 \
        -b 127.0.0.1:9000 --chdir bench ceilings:wsgi_app
    python -m bench.ceilings grpc --port 9001

No Python model server on the same worker model can beat these, so they show how much of a
peer's or Modelport's time is the framework and how much is the transport itself. The WSGI app
reads the whole body (a 4 MiB tensor must cross the socket); the gRPC server lets grpcio
receive the whole message but parses nothing.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any

from app.buffers import READINTO_BYTES, unfilled_bytearray

ANSWER = (
    b'{"model_name":"ceiling","outputs":[{"name":"y","datatype":"FP32","shape":[1],"data":[0]}]}'
)
MAX_MESSAGE = 256 * 1024 * 1024


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Read the body the cheapest way the worker offers (as Modelport does), answer ANSWER.

    That is `readinto` an unfilled bytearray where the input has it (Modelport's httptools
    worker: the body goes from the socket into the buffer uncopied), else one `read`.
    """
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    if length >= READINTO_BYTES and hasattr(stream, "readinto"):
        stream.readinto(unfilled_bytearray(length))
    elif length:
        stream.read(length)
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))]
    )
    return [ANSWER]


def serve_grpc(port: int, workers: int) -> None:
    """A grpcio server answering every unary call with the same few bytes, until SIGTERM."""
    import grpc

    from protos import grpc_service_pb2 as pb

    message = pb.ModelInferResponse(model_name="ceiling")
    message.outputs.add(name="y", datatype="FP32", shape=[1])
    message.raw_output_contents.append(bytes(4))
    answer = message.SerializeToString()  # serialized once: every call gets these bytes

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        return answer

    class Handler(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(handle)  # bytes in, bytes out

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        handlers=[Handler()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ],
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("grpc",))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=8, help="thread pool size")
    args = parser.parse_args(argv)
    serve_grpc(args.port, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
