"""Fixtures of the deploy tests (`make deploy-test`): a Docker engine and the images it runs."""

from __future__ import annotations

from collections.abc import Iterator

import joblib
import numpy as np
import pytest

from tests.deploy.engine import Engine, Unavailable
from tests.deploy.images import Images, prepare
from tests.server import ROOT

#: The rows every deploy test sends, and what the example iris model answers for them.
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """A Docker daemon: the one that answers, or one started here and stopped at the end."""
    started = Engine()
    try:
        started.start()
    except Unavailable as exc:
        pytest.fail(f"make deploy-test needs a Docker daemon: {exc}")
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
