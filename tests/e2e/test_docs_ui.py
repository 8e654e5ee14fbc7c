"""`/docs` renders Swagger UI in a real browser with every other host unreachable (offline).

Headless Chromium from Debian runs the page's JavaScript, fetches `/openapi.json` and renders
it; `--dump-dom` then gives the DOM after the scripts ran, and `--screenshot` what a person sees.
Name resolution maps every host but 127.0.0.1 to nothing, so a page that needed a CDN would
render empty.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.server import ROOT, GunicornServer

OPENAPI_CONFIG = ROOT / "tests" / "data" / "openapi.yaml"
# What the machine's README prescribes for headless Chromium here: no sandbox (root), no GPU, and
# none of the background connections a closed network refuses.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=20000",
    "--window-size=1280,1600",
)


def _chromium() -> str:
    """The Chromium binary, installed from Debian's `chromium` package if it is missing."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and apt-get cannot install it (not root)")
    install = subprocess.run(
        ["apt-get", "install", "-y", "-q", "chromium"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = shutil.which("chromium")
    if install.returncode != 0 or not found:
        pytest.skip(f"chromium cannot be installed here: {install.stderr.strip()[-500:]}")
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def docs_server() -> Iterator[GunicornServer]:
    with GunicornServer(config=OPENAPI_CONFIG, workers=1) as running:
        yield running


def _browse(chromium: str, profile: Path, *action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.mark.e2e
def test_docs_render_every_path_offline(
    chromium: str, docs_server: GunicornServer, tmp_path: Path
) -> None:
    page = f"{docs_server.url}/docs"
    dom = _browse(chromium, tmp_path / "profile", "--dump-dom", page).stdout
    assert 'class="swagger-ui"' in dom, dom[:2000]
    assert "Modelport" in dom
    for path in (
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer_dict",
        "/v1/models/{name}:predict",
        "/v2/repository/index",
        "/v2/health/ready",
    ):
        assert f'data-path="{path}"' in dom, path
    assert "Failed to load API definition" not in dom

    screenshot = tmp_path / "docs.png"
    _browse(chromium, tmp_path / "profile", f"--screenshot={screenshot}", page)
    image = screenshot.read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    # A blank page compresses to a few kB; the rendered operation list is far larger.
    assert len(image) > 50_000, len(image)

    # Every asset the page names is this server's; the resolver rules above prove nothing else
    # was needed to render it.
    html = requests.get(page, timeout=10).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(asset.startswith("/docs/assets/") for asset in assets), assets
