"""Real storage servers on free loopback ports, for the storage-URI tests: each keeps a log of
the requests it served, so a test counts downloads on the server's side.

- `S3Server`: moto's S3 server (`ThreadedMotoServer`, werkzeug in a thread of this process);
  its werkzeug request lines are the log.
- `HttpServer`: `http.server` serving a folder, plain or https with a self-signed certificate
  made here (`cryptography`); paths under `/forbidden/` answer 403, under `/slow/` stall.
- `GcsServer`: the `gcp-storage-emulator` package's server, in a thread of this process.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import logging
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import requests

from tests.server import free_port

_REQUEST_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+"')
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class _RequestLog(logging.Handler):
    """Collects (method, path) from the werkzeug or http.server request lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.requests: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = _REQUEST_LINE.search(record.getMessage())
        if match:
            self.requests.append((match.group(1), match.group(2)))


def count(requests_seen: list[tuple[str, str]], method: str, path: str) -> int:
    """How many `method` requests for exactly `path` (query string aside) a server served."""
    return sum(1 for m, p in requests_seen if m == method and p.split("?", 1)[0] == path)


class S3Server:
    """moto's S3 server; `put` stores objects, `requests` is what it served since `clear`."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._log = _RequestLog()
        self.env = {**CREDENTIALS, "AWS_ENDPOINT_URL": self.url}

    def start(self) -> S3Server:
        logger = logging.getLogger("werkzeug")
        logger.setLevel(logging.INFO)
        logger.addHandler(self._log)
        logger.propagate = False  # the request lines go to the log, not pytest's output
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        logging.getLogger("werkzeug").removeHandler(self._log)

    def client(self):  # boto3's S3 client (untyped)
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def put(self, bucket: str, key: str, body: bytes) -> None:
        client = self.client()
        try:
            client.create_bucket(Bucket=bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        client.put_object(Bucket=bucket, Key=key, Body=body)

    @property
    def requests(self) -> list[tuple[str, str]]:
        return list(self._log.requests)

    def clear(self) -> None:
        self._log.requests.clear()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; `/forbidden/...` is 403 and `/slow/...` never answers in time."""

    server_log: list[tuple[str, str]]
    stall: threading.Event

    def do_GET(self) -> None:
        if self._refused():
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if self._refused():
            return
        super().do_HEAD()

    def _refused(self) -> bool:
        self.server_log.append((self.command, self.path))
        if self.path.startswith("/forbidden/"):
            self.send_error(403, "Forbidden")
            return True
        if self.path.startswith("/slow/"):
            self.stall.wait(30)
            return True
        return False

    def log_message(self, format: str, *args: object) -> None:
        pass  # the log above is what tests read


class HttpServer:
    """`http.server` over `folder` on loopback; `tls=True` serves https with its own cert."""

    def __init__(self, folder: Path, tls: bool = False) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.requests: list[tuple[str, str]] = []
        self.stall = threading.Event()
        handler = type("Handler", (_Handler,), {"server_log": self.requests, "stall": self.stall})
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", self.port), partial(handler, directory=str(folder))
        )
        self._server.daemon_threads = True
        self.cert: Path | None = None
        if tls:
            self.cert, key = self_signed(folder.parent)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stall.set()
        self._server.shutdown()
        self._server.server_close()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class GcsServer:
    """The GCS emulator (JSON API) in memory; gcsfs reaches it through STORAGE_EMULATOR_HOST."""

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = create_server("127.0.0.1", self.port, in_memory=True)
        self._log = _RequestLog()
        self.env = {"STORAGE_EMULATOR_HOST": self.url}

    def start(self) -> GcsServer:
        logger = logging.getLogger("gcp_storage_emulator")
        logger.setLevel(logging.INFO)
        logger.addHandler(self._log)
        logger.propagate = False
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        logging.getLogger("gcp_storage_emulator").removeHandler(self._log)

    def put(self, bucket: str, name: str, body: bytes) -> None:
        requests.post(f"{self.url}/storage/v1/b", json={"name": bucket}, timeout=10)
        answer = requests.post(
            f"{self.url}/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": name},
            data=body,
            timeout=10,
        )
        answer.raise_for_status()

    @property
    def requests(self) -> list[tuple[str, str]]:
        return list(self._log.requests)


@contextmanager
def running(server: S3Server | HttpServer | GcsServer) -> Iterator[None]:
    """Start a server for a block; stop it however the block ends."""
    server.start()
    try:
        yield
    finally:
        server.stop()
