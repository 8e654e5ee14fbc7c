"""The image deploy/Dockerfile builds: what runs in it, and what the build left out of it."""

from __future__ import annotations

import pytest

from tests.deploy.engine import Engine
from tests.deploy.images import Images

pytestmark = pytest.mark.deploy

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def _sha256(engine: Engine, image: str, path: str) -> str:
    return engine("run", "--rm", "--entrypoint", "sha256sum", image, path).split()[0]


def test_a_command_runs_as_user_10001_with_every_runtime(engine: Engine, images: Images) -> None:
    # lightgbm needs the OpenMP runtime (libgomp1), which slim Debian images lack.
    probe = "import lightgbm, onnxruntime, sklearn, xgboost; print('ok')"
    said = engine("run", "--rm", images.modelport, "sh", "-c", f'id -u && python -c "{probe}"')
    assert said.split() == ["10001", "ok"]


def test_the_build_ca_secret_stays_out_of_the_image(engine: Engine, images: Images) -> None:
    # The build may replace the CA bundle for its pip steps (a secret); the image keeps the
    # base's own bundle, whatever the build host trusts.
    assert _sha256(engine, images.modelport, CA_BUNDLE) == _sha256(engine, images.base, CA_BUNDLE)
