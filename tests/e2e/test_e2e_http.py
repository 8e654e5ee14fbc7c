"""A real `gunicorn wsgi:app` driven by tritonclient.http (JSON path) and plain HTTP."""

from __future__ import annotations

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

KSERVE_ROWS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], dtype=np.float32)
IRIS_MODELS = ["iris", "iris-xgboost", "iris-lightgbm", "iris-onnx"]
DTYPES = {
    "BOOL": np.array([[True, False], [False, True]]),
    "UINT8": np.array([[0, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 2**64 - 1]], dtype=np.uint64),
    "INT8": np.array([[-128, 127]], dtype=np.int8),
    "INT16": np.array([[-(2**15), 2**15 - 1]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1]], dtype=np.int64),
    "FP16": np.array([[0.5, -2.25], [65504, 1e-3]], dtype=np.float16),
    "FP32": np.array([[1.5, -3.25e10]], dtype=np.float32),
    "FP64": np.array([[1e-300, -2.5e300]], dtype=np.float64),
    "BYTES": np.array([[b"hello", "héllo".encode()], [b"", b"x" * 300]], dtype=np.object_),
}


@pytest.fixture(scope="module")
def triton(server: GunicornServer) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(server.url.removeprefix("http://"))


def json_input(name: str, array: np.ndarray) -> httpclient.InferInput:
    from tritonclient.utils import np_to_triton_dtype

    tensor = httpclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
    tensor.set_data_from_numpy(array, binary_data=False)
    return tensor


def json_output(name: str) -> httpclient.InferRequestedOutput:
    return httpclient.InferRequestedOutput(name, binary_data=False)


def test_health_and_server_metadata(triton: httpclient.InferenceServerClient) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    metadata = triton.get_server_metadata()
    assert metadata["name"] == "modelport-test"
    assert "model_repository" in metadata["extensions"]


def test_model_metadata_and_readiness(triton: httpclient.InferenceServerClient) -> None:
    assert triton.is_model_ready("iris")
    assert triton.is_model_ready("iris", "1")
    assert not triton.is_model_ready("broken")
    assert not triton.is_model_ready("nope")
    metadata = triton.get_model_metadata("iris-onnx")
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    with pytest.raises(InferenceServerException) as info:
        triton.get_model_metadata("nope")
    assert info.value.status() == "404"
    assert "model 'nope' not found" in info.value.message()


@pytest.mark.parametrize("model", IRIS_MODELS)
def test_infer_each_runtime(triton: httpclient.InferenceServerClient, model: str) -> None:
    result = triton.infer(
        model,
        [json_input("input-0", KSERVE_ROWS)],
        outputs=[json_output("predictions"), json_output("probabilities")],
    )
    assert result.as_numpy("predictions").tolist() == [1, 1]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert result.get_response()["model_name"] == model


def test_versions(triton: httpclient.InferenceServerClient) -> None:
    one = triton.infer(
        "iris",
        [json_input("x", KSERVE_ROWS)],
        model_version="1",
        outputs=[json_output("probabilities")],
    )
    two = triton.infer(
        "iris",
        [json_input("x", KSERVE_ROWS)],
        model_version="2",
        outputs=[json_output("probabilities")],
    )
    latest = triton.infer(
        "iris", [json_input("x", KSERVE_ROWS)], outputs=[json_output("probabilities")]
    )
    assert one.get_response()["model_version"] == "1"
    assert latest.get_response()["model_version"] == "2"
    np.testing.assert_array_equal(latest.as_numpy("probabilities"), two.as_numpy("probabilities"))
    assert not np.allclose(one.as_numpy("probabilities"), two.as_numpy("probabilities"))
    with pytest.raises(InferenceServerException) as info:
        triton.infer("iris", [json_input("x", KSERVE_ROWS)], model_version="9")
    assert info.value.status() == "404"


@pytest.mark.parametrize("datatype", sorted(DTYPES))
def test_every_datatype_round_trips_as_json(
    triton: httpclient.InferenceServerClient, datatype: str
) -> None:
    array = DTYPES[datatype]
    result = triton.infer("echo", [json_input("t", array)], outputs=[json_output("t")])
    output = result.get_output("t")
    assert output["datatype"] == datatype and output["shape"] == list(array.shape)
    back = result.as_numpy("t")
    if datatype == "BYTES":
        # tritonclient hands JSON BYTES back as str (it decoded them as UTF-8 to send).
        assert [[x.encode() for x in row] for row in back.tolist()] == array.tolist()
    else:
        np.testing.assert_array_equal(back, array)
        assert back.dtype == array.dtype


def test_a_raising_model_gives_500_and_the_next_request_succeeds(
    triton: httpclient.InferenceServerClient,
) -> None:
    with pytest.raises(InferenceServerException) as info:
        triton.infer("failing", [json_input("x", np.array([-1], dtype=np.float32))])
    assert info.value.status() == "500"
    assert "negative values are not allowed" in info.value.message()
    assert "Traceback" not in info.value.message()
    ok = triton.infer(
        "failing", [json_input("x", np.array([2], dtype=np.float32))], outputs=[json_output("y")]
    )
    assert ok.as_numpy("y").tolist() == [2.0]


def test_a_model_that_failed_to_load_leaves_the_others_serving(server: GunicornServer) -> None:
    index = requests.post(f"{server.url}/v2/repository/index", timeout=5).json()
    states = {e["name"]: e["state"] for e in index}
    assert states["broken"] == "UNAVAILABLE"
    assert states["iris"] == states["digits"] == "READY"
    assert requests.get(f"{server.url}/v2/models/broken/ready", timeout=5).status_code == 503
    assert "model 'broken'" in server.log()  # reported by name


def test_curl_shaped_requests(server: GunicornServer) -> None:
    # Exactly what the KServe docs and README send: curl -d (form content type), no type at all.
    body = '{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}'
    form = requests.post(
        f"{server.url}/v1/models/iris:predict",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert form.status_code == 200 and form.json() == {"predictions": [1, 1]}
    assert form.headers["Content-Type"] == "application/json"
    v2 = requests.post(
        f"{server.url}/v2/models/iris/infer",
        data='{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", '
        '"data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}]}',
        timeout=5,
    )
    assert v2.json()["outputs"][0]["data"] == [1, 1]


def test_kserve_v1_liveness_shape(server: GunicornServer) -> None:
    assert requests.get(f"{server.url}/", timeout=5).json()["status"].lower() == "alive"
