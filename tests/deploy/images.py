"""The images the deploy tests run: pulled where a registry answers, built here where none does.

No registry may answer (this project's machines reach PyPI and Debian only). Then the base is
Debian bookworm (Python 3.11) made by debootstrap from the mirror apt already uses, and nginx
and Prometheus are Debian's packages on that base (nginx.Dockerfile, prometheus.Dockerfile).
The project image is always built from deploy/Dockerfile; built images stay for the next run,
and BuildKit's layer and pip caches make a rebuild quick.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.deploy.engine import Engine, install, run
from tests.server import ROOT

HERE = Path(__file__).resolve().parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
#: What deploy/Dockerfile names by default, and what replaces it here when it cannot be pulled.
OFFICIAL_BASE = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)[1]  # type: ignore[index]  # the Dockerfile's first ARG
DEBIAN_BASE = "modelport-test/base:bookworm"
DEBOOTSTRAP_PACKAGES = "python3,python3-venv,ca-certificates"
PROJECT_IMAGE = "modelport-test/modelport:latest"
#: The CA bundle the host's pip trusts, handed to the build as a secret (never into a layer).
_CA_CANDIDATES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
_SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Images:
    """What the stack and the KServe runs start."""

    base: str
    modelport: str
    nginx: str
    prometheus: str


def _compose_image(service: str) -> str:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    image = compose["services"][service]["image"]
    return re.fullmatch(r"\$\{\w+:-(.+)\}", image)[1]  # type: ignore[index]  # ${VAR:-default}


def _apt_mirror() -> str:
    """The Debian mirror apt uses here (deb.debian.org when apt names none)."""
    targets = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")
    for line in targets:
        uri, _, release = line.partition(" ")
        if uri and "security" not in uri and "-" not in release:
            return uri
    return "http://deb.debian.org/debian/"


def debian_base(engine: Engine) -> str:
    """Debian bookworm with Python 3.11 as an image, made once with debootstrap."""
    if engine.succeeds("image", "inspect", DEBIAN_BASE):
        return DEBIAN_BASE
    install("debootstrap")
    with tempfile.TemporaryDirectory(prefix="modelport-rootfs-") as rootfs:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={DEBOOTSTRAP_PACKAGES}",
                "bookworm",
                rootfs,
                _apt_mirror(),
            ],
            timeout=900,
        )
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(Path(rootfs) / cache, ignore_errors=True)
            (Path(rootfs) / cache).mkdir(parents=True)
        with subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE) as tar:
            run(
                [
                    engine.docker,
                    "import",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    'CMD ["/bin/bash"]',
                    "-",
                    DEBIAN_BASE,
                ],
                stdin=tar.stdout,
                env=engine.env,
            )
    return DEBIAN_BASE


def _pulled(engine: Engine, image: str) -> bool:
    return engine.succeeds("image", "inspect", image) or engine.succeeds("pull", image)


def _ca_bundle() -> str | None:
    for name in _CA_CANDIDATES:
        if os.environ.get(name) and Path(os.environ[name]).is_file():
            return os.environ[name]
    return _SYSTEM_CA if Path(_SYSTEM_CA).is_file() else None


def build_project(engine: Engine, base: str, tag: str = PROJECT_IMAGE) -> str:
    """deploy/Dockerfile on `base`, with the host's CA bundle and proxy settings for pip."""
    command = ["build", "-f", str(DOCKERFILE), "-t", tag, "--build-arg", f"BASE_IMAGE={base}"]
    bundle = _ca_bundle()
    if bundle:
        command += ["--secret", f"id=ca-certificates,src={bundle}"]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        if os.environ.get(name):
            command += ["--build-arg", f"{name}={os.environ[name]}"]
    engine(*command, str(ROOT), timeout=1200)
    return tag


def _debian_package_image(engine: Engine, base: str, name: str) -> str:
    tag = f"modelport-test/{name}:debian"
    dockerfile = (HERE / f"{name}.Dockerfile").read_text()
    engine("build", "-t", tag, "--build-arg", f"BASE_IMAGE={base}", "-", input=dockerfile)
    return tag


def prepare(engine: Engine) -> Images:
    """Every image, pulled or built; nothing is rebuilt that BuildKit's cache still holds."""
    base = OFFICIAL_BASE if _pulled(engine, OFFICIAL_BASE) else debian_base(engine)
    images = {}
    for service, name in (("loadbalancer", "nginx"), ("prometheus", "prometheus")):
        official = _compose_image(service)
        images[name] = (
            official if _pulled(engine, official) else _debian_package_image(engine, base, name)
        )
    return Images(base=base, modelport=build_project(engine, base), **images)
