"""The built image started as KServe starts deploy/kserve/'s InferenceServices, with `docker run`.

KServe merges the ServingRuntime's container with the InferenceService's model spec (env by
name, the model's args after the runtime's), fills in `{{.Name}}`, mounts the ConfigMap and puts
the storageUri's files at /mnt/models (read-only). `pod_container` does the same from the
manifests, so a change to them is what runs here; no cluster is involved.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.deploy import IRIS_ROWS, PREFIX, V2_BODY
from tests.deploy.engine import Engine
from tests.deploy.images import Images
from tests.grpc_support import run_client
from tests.server import ROOT, free_port

pytestmark = pytest.mark.deploy

KSERVE = ROOT / "deploy" / "kserve"
MODEL_MOUNT = "/mnt/models"  # KServe's mount of an InferenceService's storageUri


def _manifests(kind: str) -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(KSERVE.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document and document["kind"] == kind
    ]


def _manifest(kind: str, name: str) -> dict[str, Any]:
    (found,) = [m for m in _manifests(kind) if m["metadata"]["name"] == name]
    return found


def _runtime(service: dict[str, Any]) -> dict[str, Any]:
    return _manifest("ServingRuntime", service["spec"]["predictor"]["model"]["runtime"])


def pod_container(service: dict[str, Any]) -> dict[str, Any]:
    """The kserve-container KServe runs for `service`: its runtime's container with the model's
    env (by name) and args (after the runtime's) merged in, `{{.Name}}` filled in. Only those
    start the server; probes and ports concern the kubelet (`pods` waits on the runtime's
    readiness path itself)."""
    (container,) = _runtime(service)["spec"]["containers"]
    model = service["spec"]["predictor"]["model"]
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    env |= {item["name"]: item["value"] for item in model.get("env", [])}
    merged = {
        **container,
        "args": [*container.get("args", []), *model.get("args", [])],
        "env": env,
    }
    rendered = yaml.safe_dump(merged).replace("{{.Name}}", service["metadata"]["name"])
    assert "{{" not in rendered, "a KServe placeholder this test does not fill in"
    return yaml.safe_load(rendered)


def _docker_memory(quantity: str) -> str:
    return quantity.replace("Gi", "g").replace("Mi", "m")


def docker_run_options(
    runtime: dict[str, Any], container: dict[str, Any], config_dir: Path, model_dir: Path
) -> list[str]:
    """`docker run` options for the pod's container: its mounts, env, user and limits."""
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in runtime["spec"]["volumes"] if v["name"] == mount["name"]]
    configmap = _manifest("ConfigMap", volume["configMap"]["name"])
    for name, text in configmap["data"].items():
        (config_dir / name).write_text(text)
    security = container["securityContext"]
    limits = container["resources"]["limits"]
    options = [
        "-v",
        f"{config_dir}:{mount['mountPath']}:ro",
        "-v",
        f"{model_dir}:{MODEL_MOUNT}:ro",
        "--user",
        str(security["runAsUser"]),
        "--cpus",
        str(limits["cpu"]),
        "--memory",
        _docker_memory(limits["memory"]),
    ]
    options += [f"--cap-drop={cap}" for cap in security["capabilities"]["drop"]]
    if security["allowPrivilegeEscalation"] is False:
        options += ["--security-opt", "no-new-privileges"]
    for name, value in container["env"].items():
        options += ["-e", f"{name}={value}"]
    return options


def _readable(folder: Path) -> Path:
    """pytest's folders are the owner's only; the container's user 10001 must read them."""
    folder.chmod(0o755)
    return folder


@dataclass
class Pod:
    """One InferenceService's container, running, with its HTTP and gRPC ports published."""

    name: str
    container: str
    http: str
    grpc: str
    ready_path: str  # the runtime's readinessProbe


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, trained_models: Path) -> Path:
    """What KServe downloads from storageUri: the folder with model.joblib (the example iris)."""
    folder = _readable(tmp_path_factory.mktemp("storage-uri"))
    shutil.copy(trained_models / "iris.joblib", folder / "model.joblib")
    return folder


@pytest.fixture(scope="module")
def pods(
    engine: Engine, images: Images, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Pod]]:
    """Both InferenceServices of deploy/kserve/, started at once, removed at the end."""
    started: dict[str, Pod] = {}
    try:
        for service in _manifests("InferenceService"):
            name = service["metadata"]["name"]
            container = pod_container(service)
            http, grpc = free_port(), free_port()
            config_dir = _readable(tmp_path_factory.mktemp(name))
            options = docker_run_options(_runtime(service), container, config_dir, model_dir)
            ident = engine(
                "run", "-d", "--name", f"{PREFIX}{os.getpid()}-{name}",
                "-p", f"127.0.0.1:{http}:8080", "-p", f"127.0.0.1:{grpc}:8081",
                *options, images.modelport, *container["args"],
            ).strip()  # fmt: skip
            path = container["readinessProbe"]["httpGet"]["path"]
            started[name] = Pod(name, ident, f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc}", path)
        for pod in started.values():
            _wait_ready(engine, pod)
        yield started
    finally:
        for pod in started.values():
            engine("rm", "-f", pod.container)


def _wait_ready(engine: Engine, pod: Pod, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(pod.http + pod.ready_path, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if engine("inspect", "-f", "{{.State.Running}}", pod.container).strip() != "true":
            break
        time.sleep(0.5)
    logs = engine.result("logs", pod.container)
    pytest.fail(f"{pod.name} never became ready:\n{logs.stdout}{logs.stderr}")


def test_the_rest_inferenceservice_serves_its_model_over_v1_and_v2(
    pods: dict[str, Pod], iris_predictions: list[int]
) -> None:
    pod = pods["iris"]
    v1 = requests.post(f"{pod.http}/v1/models/iris:predict", json={"instances": IRIS_ROWS})
    assert v1.status_code == 200, v1.text
    assert v1.json() == {"predictions": iris_predictions}
    v2 = requests.post(f"{pod.http}/v2/models/iris/infer", json=V2_BODY)
    assert v2.status_code == 200, v2.text
    (output,) = [o for o in v2.json()["outputs"] if o["name"] == "predictions"]
    assert output["data"] == iris_predictions
    index = requests.post(f"{pod.http}/v2/repository/index", json={}).json()
    assert [(m["name"], m["state"]) for m in index] == [("iris", "READY")]


def test_the_grpc_inferenceservice_serves_its_model_to_tritonclient(
    pods: dict[str, Pod], iris_predictions: list[int]
) -> None:
    found = run_client("triton_infer.py", pods["iris-grpc"].grpc, "iris", 2)
    assert (found["live"], found["ready"], found["model_ready"]) == (True, True, True)
    assert found["failures"] == []
    assert found["predictions"] == [iris_predictions] * 2


def _refused(engine: Engine, *arguments: str) -> str:
    """Start the image with KServe's arguments that it must refuse; what it said."""
    result = engine.result("run", "--rm", *arguments)
    assert result.returncode == 2, result.stdout + result.stderr
    return result.stderr


def test_a_storage_uri_it_cannot_read_stops_the_container_with_why(
    engine: Engine, images: Images
) -> None:
    # s3://, gs:// and http(s):// are fetched by the server (tests/e2e/test_storage_e2e.py);
    # a scheme it cannot fetch stops the container, pointing at KServe's storage initializer.
    said = _refused(engine, images.modelport, "--model_name=iris", "--model_dir=pvc://claim/iris")
    assert "scheme 'pvc' is not supported" in said and MODEL_MOUNT in said
    said = _refused(
        engine, "-e", "STORAGE_URI=hdfs://nn/iris", images.modelport, "--model_name=iris"
    )
    assert "scheme 'hdfs' is not supported" in said


def test_kserve_args_that_the_config_ignores_stop_the_container(
    engine: Engine, images: Images, model_dir: Path
) -> None:
    # The image's own config serves the examples, not ${MODEL_NAME} from ${MODEL_DIR}.
    said = _refused(
        engine,
        "-v",
        f"{model_dir}:{MODEL_MOUNT}:ro",
        images.modelport,
        "--model_name=iris",
        f"--model_dir={MODEL_MOUNT}",
    )
    assert f"serves no model 'iris' from {MODEL_MOUNT}" in said
