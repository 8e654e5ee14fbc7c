"""deploy/ without a Docker engine: each file against its published schema, and each command the
Dockerfile runs, run here.

Schemas come from installed packages, never from the network: the compose-spec schema that
check-jsonschema vendors, Kubernetes' schemas that kubernetes-validate bundles, and KServe's
resources as tests/kserve_schema.py writes them on top of those.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import requests
import yaml

from blueprints.factory import create_app
from config import entrypoint
from config.settings import load_settings
from tests import kserve_schema
from tests.server import ROOT, GunicornServer, free_port

DEPLOY = ROOT / "deploy"
KSERVE = DEPLOY / "kserve"
MAKEFILE = (ROOT / "Makefile").read_text()


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _errors(schema: dict[str, Any], document: Any) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


# -- Dockerfile ----------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped.removesuffix("\\").strip() + " "
        if not stripped.endswith("\\"):
            keyword, _, arguments = pending.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
            pending = ""
    return instructions


def _arguments(keyword: str) -> list[str]:
    return [arguments for name, arguments in dockerfile() if name == keyword]


def _exec_form(arguments: str) -> list[str]:
    """A JSON-array instruction argument (CMD ["gunicorn", ...])."""
    return json.loads(arguments[arguments.index("[") :])


def _runs() -> list[list[str]]:
    """Every RUN, split into its `&&`-joined commands, without RUN's own flags (`--mount`) and
    the variables set for one command (`PIP_CERT=... pip`)."""
    runs = []
    for arguments in _arguments("RUN"):
        for command in arguments.split("&&"):
            words = shlex.split(command)
            while words and re.match(r"^(--\w|\w+=)", words[0]):
                words.pop(0)
            runs.append(words)
    return runs


def _makefile_commands() -> set[str]:
    """The Makefile's recipe lines with the venv paths written as the image has them."""
    recipes = re.findall(r"^\t(.+)$", MAKEFILE, flags=re.MULTILINE)
    return {
        re.sub(r"\$\(VENV\)/bin/", "", line.replace("$(PY)", "python")).strip() for line in recipes
    }


def test_dockerfile_builds_from_python_311_slim_as_a_non_root_user() -> None:
    # The base is a build argument (tests/deploy/ builds on a local Debian where no registry
    # answers); its default is the official image.
    assert _arguments("FROM") == ["${BASE_IMAGE}"]
    assert dockerfile()[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    users = _arguments("USER")
    assert users and users[-1] not in ("0", "root")
    keywords = [name for name, _ in dockerfile()]
    assert keywords.index("USER") < keywords.index("CMD")
    uid = users[-1]
    assert any(run[:1] == ["useradd"] and "--uid" in run and uid in run for run in _runs())


def test_dockerfile_exposes_the_ports_of_the_default_config() -> None:
    server = load_settings(ROOT / "config" / "models.yaml", environ={}).server
    exposed = {int(port) for arguments in _arguments("EXPOSE") for port in arguments.split()}
    assert exposed == {server.http.port, server.grpc.port, server.omi.port}


def test_dockerfile_copies_what_exists_and_the_ignore_file_keeps_it() -> None:
    ignored = {
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for arguments in _arguments("COPY"):
        *sources, _destination = arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") not in ignored, source
    # What the package build reads (setup.cfg: long_description = file: README.md).
    copied = " ".join(_arguments("COPY"))
    for needed in ("pyproject.toml", "setup.cfg", "README.md", "wsgi.py", "gunicorn.conf.py"):
        assert needed in copied, needed


def test_dockerfile_installs_the_all_extra_the_makefile_installs() -> None:
    installs = [run for run in _runs() if run[:2] == ["pip", "install"]]
    # The dependencies from the metadata alone, then the code without them (a cached layer).
    assert [run[2:] for run in installs] == [[".[all]"], ["--no-deps", "."]]
    assert re.search(r"install .*-e '\.\[all,test\]'", MAKEFILE)
    assert re.search(r"^all =$", (ROOT / "setup.cfg").read_text(), flags=re.MULTILINE)


def test_dockerfile_trains_the_examples_as_make_does(tmp_path: Path) -> None:
    trains = [run for run in _runs() if run[:3] == ["python", "-m", "examples.train"]]
    assert [shlex.join(run) for run in trains] == ["python -m examples.train --out models"]
    assert shlex.join(trains[0]) in _makefile_commands()
    out = tmp_path / "models"
    subprocess.run(
        [sys.executable, *trains[0][1:-1], str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    settings = load_settings(ROOT / "config" / "models.yaml", environ={})
    for model in settings.models:
        if model.uri is not None:
            assert (out / model.uri.name).is_file(), model.uri.name


def test_pip_trusts_the_ca_bundle_the_build_secret_may_replace() -> None:
    """pip's steps share a download cache and read the optional `ca-certificates` secret."""
    pip_steps = [arguments for arguments in _arguments("RUN") if " pip install " in arguments]
    assert len(pip_steps) == 2
    for arguments in pip_steps:
        mounts = dict(re.findall(r"--mount=type=(\w+),(\S+)", arguments))
        assert mounts["cache"] == "target=/root/.cache/pip"
        secret = dict(item.split("=") for item in mounts["secret"].split(","))
        assert secret["id"] == "ca-certificates" and "required" not in secret  # optional
        assert f"PIP_CERT={secret['target']} pip install" in arguments


def test_every_run_command_is_known() -> None:
    """A new RUN step needs a check here (and, if it builds something, a Makefile target)."""
    checked = {"apt-get", "rm", "groupadd", "useradd", "python3", "pip", "python"}
    assert {run[0] for run in _runs()} <= checked
    assert ["apt-get", "install", "-y", "--no-install-recommends", "libgomp1"] in _runs()


def test_dockerfile_cmd_is_make_run_and_its_config_checks(tmp_path: Path) -> None:
    command = _exec_form(_arguments("CMD")[-1])
    assert command == ["gunicorn", "wsgi:app"] == list(entrypoint.SERVE)
    # The entrypoint runs CMD as given, and KServe's arguments in its place (test_entrypoint).
    assert _exec_form(_arguments("ENTRYPOINT")[-1]) == ["python", "-m", entrypoint.__name__]
    assert shlex.join(command) in _makefile_commands()
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gunicorn")), "--check-config", *command[1:]],
        cwd=ROOT,
        env={**os.environ, "MODELPORT_GRPC_PORT": "0", "MODELPORT_OMI_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    arguments = _arguments("HEALTHCHECK")[-1]
    command = _exec_form(arguments.partition("CMD")[2])
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]],
        env={**os.environ, "MODELPORT_HTTP_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.e2e
def test_healthcheck_passes_on_a_ready_server_and_fails_without_one(
    server: GunicornServer,
) -> None:
    assert "/v2/health/ready" in _arguments("HEALTHCHECK")[-1]
    ready = _healthcheck(server.http_port)
    assert ready.returncode == 0, ready.stderr
    assert _healthcheck(free_port()).returncode != 0


# The image's /app holds only what COPY puts there, and pip installs the package from it
# (`--no-deps .`): a package the server imports but the Dockerfile forgets only shows on a Docker
# engine, as workers that fail to boot. Here: /app laid out from the COPY steps, and gunicorn
# started in it by a Python that sees the tree, the standard library and the installed
# dependencies, without .pth files (this checkout's editable install is one of them).
# (`python -S` skips site.py, which is also what puts a venv's site-packages on the path.)
IMAGE_PATH = f"import sys; sys.path[:] = ['', *sys.path[1:], {sysconfig.get_paths()['purelib']!r}];"
IMAGE_PYTHON = IMAGE_PATH + "sys.argv[0] = 'gunicorn'; from gunicorn.app.wsgiapp import run; run()"


def _image_tree(app: Path) -> Path:
    """/app as the Dockerfile's COPY steps leave it, with the models `RUN python -m
    examples.train` writes there (this checkout's, which make trains the same way)."""
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
    for arguments in _arguments("COPY"):
        *sources, target = arguments.split()
        for source in sources:
            destination = app / target / source if target.endswith("/") else app / target
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, destination, ignore=ignored)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, destination)
    (app / "models").symlink_to(ROOT / "models", target_is_directory=True)
    return app


def _imports_in(tree: Path, module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-S", "-c", IMAGE_PATH + f"import {module}"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_package_the_server_imports_is_copied_into_the_image(tmp_path: Path) -> None:
    app = _image_tree(tmp_path / "app")
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert {path.parent.name for path in app.glob("*/__init__.py")} == packages
    # The check can fail: outside the tree, this checkout's packages are not importable.
    assert _imports_in(tmp_path, "streams").returncode != 0
    assert _imports_in(app, "streams").returncode == 0


@pytest.mark.e2e
def test_the_image_tree_boots_every_worker_and_the_grpc_sidecar(tmp_path: Path) -> None:
    app = _image_tree(tmp_path / "app")
    command = _exec_form(_arguments("CMD")[-1])
    with GunicornServer(
        config=app / "config" / "models.yaml",
        workers=2,
        grpc=True,
        args=("-S", "-c", IMAGE_PYTHON, *command[1:]),
        cwd=app,
    ) as server:
        ready = requests.get(f"{server.url}/v2/health/ready", timeout=10)
        models = requests.post(f"{server.url}/v2/repository/index", json={}, timeout=10).json()
        log = server.log()
    assert ready.status_code == 200
    assert models and all(model["state"] == "READY" for model in models), models
    assert "Traceback" not in log and "failed to boot" not in log.lower(), log[-3000:]


# -- docker-compose ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml(DEPLOY / "docker-compose.yml")


def test_compose_file_follows_the_compose_spec(compose: dict[str, Any]) -> None:
    vendored = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    assert _errors(json.loads(vendored.read_text()), compose) == []


def test_compose_mounts_files_that_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert (DEPLOY / volume["source"]).exists(), (name, volume["source"])
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


def test_compose_runs_replicas_behind_a_balancer_for_http_and_grpc(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    replicas = services["modelport"]
    assert replicas["deploy"]["replicas"] >= 2
    assert "ports" not in replicas  # replicas cannot share host ports; the balancer publishes
    balancer = services["loadbalancer"]
    assert {port.split(":")[-1] for port in balancer["ports"]} == {"8080", "8081", "45000"}
    assert balancer["depends_on"]["modelport"]["condition"] == "service_healthy"

    # Each server block proxies to a variable naming the service, so nginx resolves it per
    # request (Docker's DNS: one address per replica); tests/deploy/ runs it for real.
    nginx = re.sub(r"#.*", "", (DEPLOY / "nginx.conf").read_text())  # directives only
    servers = re.findall(
        r"listen (\d+)( http2)?;\s+set \$(\w+) (\S+);.*?(proxy|grpc)_pass (\w+)://\$(\w+);",
        nginx,
        flags=re.DOTALL,
    )
    found = {}
    for port, http2, variable, target, kind, scheme, used in servers:
        assert used == variable, port
        found[port] = (http2, target, kind, scheme)
    assert found == {
        "8080": ("", "modelport:8080", "proxy", "http"),
        "8081": (" http2", "modelport:8081", "grpc", "grpc"),
        "45000": (" http2", "modelport:45000", "grpc", "grpc"),
    }
    # Nothing newer than Debian 12's nginx 1.22: `resolve` came in 1.27.3, `http2 on` in 1.25.1.
    assert not re.search(r"\sresolve\b|http2 on", nginx)
    assert re.search(r"resolver 127\.0\.0\.11 ", nginx)  # Docker's DNS


def test_compose_replicas_run_one_worker_per_cpu_of_their_limit(compose: dict[str, Any]) -> None:
    # gunicorn.conf.py's default counts the CPUs a process may run on, which in a container with
    # only a CPU quota is every CPU of the host: the stack pins the count to its quota instead.
    service = compose["services"]["modelport"]
    workers = int(service["environment"]["MODELPORT_WORKERS"])
    assert workers == float(service["deploy"]["resources"]["limits"]["cpus"])


def test_compose_config_serves_on_the_ports_the_stack_uses(compose: dict[str, Any]) -> None:
    service = compose["services"]["modelport"]
    mount = next(v for v in service["volumes"] if v["target"] == "/app/config/models.yaml")
    server = load_settings(DEPLOY / mount["source"], environ={}).server
    assert {server.http.port, server.grpc.port, server.omi.port} == {
        int(port) for port in service["expose"]
    }


def test_prometheus_scrapes_every_replica_on_the_metrics_route(compose: dict[str, Any]) -> None:
    config = _yaml(DEPLOY / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["modelport"] and discovery["port"] == 8080
    assert "modelport" in compose["services"]
    app = create_app(ROOT / "tests" / "data" / "openapi.yaml", {"TESTING": True})
    assert "/metrics" in {rule.rule for rule in app.url_map.iter_rules()}


# -- KServe --------------------------------------------------------------------------------------


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, document)
        for path in sorted(KSERVE.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


@pytest.mark.parametrize(("name", "manifest"), _manifests(), ids=lambda v: v)
def test_kserve_manifest_is_valid(name: str, manifest: dict[str, Any]) -> None:
    kind = manifest["kind"]
    if kind in kserve_schema.schemas():
        assert _errors(kserve_schema.schemas()[kind], manifest) == [], name
    else:
        kubernetes_validate.validate(manifest, kserve_schema.K8S_VERSION, strict=True)


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [manifest for _, manifest in _manifests() if manifest["kind"] == kind]


def test_kserve_runtime_runs_the_image_with_the_configmap() -> None:
    (runtime,) = _by_kind("ServingRuntime")
    (configmap,) = _by_kind("ConfigMap")
    spec = runtime["spec"]
    assert set(spec["protocolVersions"]) == {"v1", "v2", "grpc-v2"}
    (container,) = spec["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    mount = next(
        m for m in container["volumeMounts"] if env["MODELPORT_CONFIG"].startswith(m["mountPath"])
    )
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert Path(env["MODELPORT_CONFIG"]).name in configmap["data"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["securityContext"]["runAsUser"] == int(_arguments("USER")[-1])
    assert {port["containerPort"] for port in container["ports"]} == {8080}


def test_kserve_config_serves_the_storage_uri_model(tmp_path: Path) -> None:
    (configmap,) = _by_kind("ConfigMap")
    config = tmp_path / "models.yaml"
    config.write_text(configmap["data"]["models.yaml"])
    settings = load_settings(config, environ={"MODEL_NAME": "iris"})
    (model,) = settings.models
    assert model.error is None
    assert (model.name, model.runtime) == ("iris", "sklearn")
    assert model.uri == Path("/mnt/models/model.joblib")  # where storageUri is downloaded
    (runtime,) = _by_kind("ServingRuntime")
    (container,) = runtime["spec"]["containers"]
    assert container["args"] == ["--model_name={{.Name}}", "--model_dir=/mnt/models"]
    assert (settings.server.http.port, settings.server.grpc.port) == (8080, 8081)


def test_kserve_services_use_the_runtime_over_rest_and_grpc() -> None:
    (runtime,) = _by_kind("ServingRuntime")
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    protocols = {}
    for service in _by_kind("InferenceService"):
        model = service["spec"]["predictor"]["model"]
        assert model["runtime"] == runtime["metadata"]["name"]
        assert model["modelFormat"]["name"] in formats
        assert model["storageUri"]
        protocols[model["protocolVersion"]] = {p["containerPort"] for p in model.get("ports", [])}
    assert protocols == {"v2": set(), "grpc-v2": {8081}}


# -- make deploy-test's engine (tests/deploy/engine.py), where CI decides to run it --------------


def test_ci_skips_deploy_test_with_the_reason_when_no_docker_can_be_had() -> None:
    # No dockerd and no apt-get to install it on this PATH: `available` says so, with status 3,
    # which .ci/run turns into its skip line; any other failure fails CI.
    result = subprocess.run(
        [sys.executable, "-m", "tests.deploy.engine", "available"],
        cwd=ROOT,
        env={**os.environ, "PATH": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == (
        "no Docker daemon can be started here: docker.io missing, and no root apt-get to install it"
    )
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make test") < ci.index("tests.deploy.engine available")
    assert '"$status" -eq 3' in ci and "deploy-test SKIPPED: $reason" in ci
