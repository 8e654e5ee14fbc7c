"""Fixtures of the deploy tests (`make deploy-test`): a Docker engine and the images it runs."""

from __future__ import annotations

from collections.abc import Iterator

import joblib
import numpy as np
import pytest

from tests.deploy import IRIS_ROWS, PREFIX
from tests.deploy.engine import Engine, Unavailable
from tests.deploy.images import Images, prepare
from tests.server import ROOT


def _remove_leftovers(engine: Engine) -> None:
    """What an interrupted run left: dockerd would restart its `unless-stopped` replicas."""
    for container in engine("ps", "-aq", "--filter", f"name={PREFIX}").split():
        engine("rm", "-f", container)
    for network in engine("network", "ls", "-q", "--filter", f"name={PREFIX}").split():
        engine("network", "rm", network)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """A Docker daemon: the one that answers, or one started here and stopped at the end."""
    started = Engine()
    try:
        started.start()
    except Unavailable as exc:
        pytest.fail(f"make deploy-test needs a Docker daemon: {exc}")
    _remove_leftovers(started)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def images(engine: Engine) -> Images:
    """The project image, built from this checkout, and the base, balancer and Prometheus."""
    return prepare(engine)


@pytest.fixture(scope="session")
def iris_predictions(trained_models: object) -> list[int]:
    """What models/iris.joblib (the model the replicas mount) predicts for IRIS_ROWS."""
    model = joblib.load(ROOT / "models" / "iris.joblib")
    return np.asarray(model.predict(np.asarray(IRIS_ROWS, dtype=np.float32))).tolist()
