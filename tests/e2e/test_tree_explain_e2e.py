"""scikit-learn tree models explained out of the box by a real gunicorn: v1, v2 and OMI.

The models are trained here from scikit-learn's iris and diabetes data, and served with no
`explain.background`; requests calls v1 `:explain` and v2 `/explain`, the chassisml client runs
OMI with `explain=True`. Every answer must add up to the estimator's own raw output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import requests
from sklearn import ensemble, linear_model
from sklearn.datasets import load_diabetes, load_iris

from tests.grpc_support import omi_python, run_client, start_server
from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

IRIS_X, IRIS_Y = load_iris(return_X_y=True)
IRIS_X = IRIS_X.astype(np.float32)
DIABETES_X, DIABETES_Y = load_diabetes(return_X_y=True)
DIABETES_X = DIABETES_X.astype(np.float32)
# Must match tests/clients/omi_client.py EXPLAIN_ROWS.
IRIS_ROWS = [[6.8, 2.8, 4.8, 1.4], [5.0, 3.4, 1.5, 0.2]]
DIABETES_ROWS = DIABETES_X[:3].tolist()


def _probabilities(est: Any, rows: np.ndarray) -> np.ndarray:
    return est.predict_proba(rows)


def _log_odds(est: Any, rows: np.ndarray) -> np.ndarray:
    return est.decision_function(rows).reshape(len(rows), -1)


def _predictions(est: Any, rows: np.ndarray) -> np.ndarray:
    return est.predict(rows).reshape(len(rows), -1)


# name -> (estimator, training data, rows, explained output, raw output)
MODELS: dict[str, tuple[Any, tuple[np.ndarray, np.ndarray], list[list[float]], str, Any]] = {
    "forest": (ensemble.RandomForestClassifier(50, random_state=0, n_jobs=1), (IRIS_X, IRIS_Y),
               IRIS_ROWS, "probabilities", _probabilities),
    "boosted": (ensemble.GradientBoostingClassifier(n_estimators=20, random_state=0),
                (IRIS_X, (IRIS_Y == 2).astype(int)), IRIS_ROWS, "decision_function", _log_odds),
    "histogram": (ensemble.HistGradientBoostingRegressor(max_iter=20, random_state=0),
                  (DIABETES_X, DIABETES_Y), DIABETES_ROWS, "predictions", _predictions),
}  # fmt: skip


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    folder: Path = tmp_path_factory.mktemp("trees")
    entries = []
    for name, (estimator, (x, y), *_) in MODELS.items():
        joblib.dump(estimator.fit(x, y), folder / f"{name}.joblib")
        entries.append(f"  - {{name: {name}, runtime: sklearn, uri: {name}.joblib}}")
    linear = linear_model.LogisticRegression(max_iter=500).fit(IRIS_X, IRIS_Y)
    joblib.dump(linear, folder / "linear.joblib")
    entries.append("  - {name: linear, runtime: sklearn, uri: linear.joblib}")
    config = folder / "models.yaml"
    config.write_text(
        "server:\n"
        "  grpc: {port: '${MODELPORT_GRPC_PORT:-0}'}\n"
        "  omi: {model: forest, port: '${MODELPORT_OMI_PORT:-0}', require_auth: false}\n"
        "models:\n" + "\n".join(entries) + "\n"
    )
    server = start_server(workers=1, omi_port=True, config=config)
    yield server
    server.stop()


def _v2_body(rows: list[list[float]]) -> dict[str, Any]:
    shape = [len(rows), len(rows[0])]
    return {"inputs": [{"name": "input-0", "shape": shape, "datatype": "FP32", "data": rows}]}


def _tensor(body: dict[str, Any], name: str) -> np.ndarray:
    (output,) = [o for o in body["outputs"] if o["name"] == name]
    return np.asarray(output["data"], dtype=np.float64).reshape(output["shape"])


@pytest.mark.parametrize("name", list(MODELS))
def test_v1_and_v2_explain_add_up_to_the_raw_output(trees: GunicornServer, name: str) -> None:
    estimator, _, rows, explained, raw_output = MODELS[name]
    v2 = requests.post(f"{trees.url}/v2/models/{name}/explain", json=_v2_body(rows), timeout=60)
    assert v2.status_code == 200, v2.text
    assert v2.json()["parameters"] == {"explainer": "tree_shap", "explained_output": explained}
    attributions, base = _tensor(v2.json(), "attributions"), _tensor(v2.json(), "base_values")
    raw = raw_output(estimator, np.asarray(rows, dtype=np.float32))
    assert attributions.shape == (len(rows), raw.shape[1], len(rows[0]))
    np.testing.assert_allclose(attributions.sum(axis=2) + base, raw, rtol=0, atol=1e-5)
    v1 = requests.post(
        f"{trees.url}/v1/models/{name}:explain", json={"instances": rows}, timeout=60
    )
    assert v1.status_code == 200, v1.text
    explanations = v1.json()["explanations"]
    assert np.array_equal([e["attributions"] for e in explanations], attributions)
    assert np.array_equal([e["base_values"] for e in explanations], base)
    metadata = requests.get(f"{trees.url}/v2/models/{name}", timeout=10).json()
    assert [o["shape"] for o in metadata["explanation_outputs"]] == [
        [-1, raw.shape[1], len(rows[0])],
        [-1, raw.shape[1]],
    ]


def test_omi_explains_the_forest_as_v2_does(trees: GunicornServer) -> None:
    out = run_client("omi_client.py", "explain", "127.0.0.1", trees.omi_port, python=omi_python())  # type: ignore[attr-defined]  # set by start_server
    assert out["status_code"] == 200, out
    v2 = requests.post(
        f"{trees.url}/v2/models/forest/explain", json=_v2_body(IRIS_ROWS), timeout=60
    )
    attributions = _tensor(v2.json(), "attributions")
    for index, item in enumerate(out["outputs"]):
        assert item["success"] and "explanation.json" in item["keys"], item
        (explanation,) = item["explanation"]["explanations"]
        np.testing.assert_allclose(explanation["attributions"], attributions[index], atol=1e-12)
        total = np.sum(explanation["attributions"], axis=1) + explanation["base_values"]
        expected = MODELS["forest"][0].predict_proba(np.float32([IRIS_ROWS[index]]))[0]
        np.testing.assert_allclose(total, expected, rtol=0, atol=1e-5)


def test_a_linear_model_without_background_answers_501_saying_so(trees: GunicornServer) -> None:
    answer = requests.post(
        f"{trees.url}/v2/models/linear/explain", json=_v2_body(IRIS_ROWS), timeout=30
    )
    assert answer.status_code == 501
    message = answer.json()["error"]
    assert "linear model (LogisticRegression)" in message and "explain.background" in message
