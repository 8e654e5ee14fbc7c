"""JSON Schemas of KServe's ServingRuntime and InferenceService, for tests/test_deploy.py.

No PyPI or npm package ships KServe's CRD schemas, so the KServe layer is written here and
everything it embeds from Kubernetes (Container, Volume, Probe, ObjectMeta...) is the strict
schema that `kubernetes-validate` bundles. Field names are those of KServe's API as its Python
SDK (kserve 0.21, `kserve.models.*.attribute_map`) lists them; every object is closed
(`additionalProperties: false`), so a misspelt or misplaced key fails. Fields we do not use are
only named, with any value.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

K8S_VERSION = "1.37.0"
_K8S = "io.k8s.api.core.v1."
PROTOCOL_VERSIONS = ["v1", "v2", "grpc-v1", "grpc-v2"]  # KServe's constants.InferenceProtocol


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _k8s(kind: str) -> dict[str, str]:
    return _ref(_K8S + kind)


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _closed(properties: dict[str, Any], *names: str, required: tuple[str, ...] = ()) -> dict:
    """An object with these typed properties, plus `names` of any value, and nothing else."""
    return {
        "type": "object",
        "properties": properties | {name: {} for name in names if name not in properties},
        "required": list(required),
        "additionalProperties": False,
    }


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_COMMON_POD = {
    "affinity": _k8s("Affinity"),
    "annotations": _STRING_MAP,
    "labels": _STRING_MAP,
    "nodeSelector": _STRING_MAP,
    "imagePullSecrets": _array(_k8s("LocalObjectReference")),
    "tolerations": _array(_k8s("Toleration")),
    "volumes": _array(_k8s("Volume")),
    "hostIPC": {"type": "boolean"},
    "schedulerName": {"type": "string"},
}

SERVING_RUNTIME_SPEC = _closed(
    _COMMON_POD
    | {
        "containers": {**_array(_k8s("Container")), "minItems": 1},
        "supportedModelFormats": _array(
            _closed(
                {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "autoSelect": {"type": "boolean"},
                    "priority": {"type": "integer", "minimum": 1},
                },
                required=("name",),
            )
        ),
        "protocolVersions": _array({"enum": PROTOCOL_VERSIONS}),
        "multiModel": {"type": "boolean"},
        "disabled": {"type": "boolean"},
        "replicas": {"type": "integer"},
    },
    "builtInAdapter",
    "grpcDataEndpoint",
    "grpcEndpoint",
    "httpDataEndpoint",
    "resourceClaims",
    "storageHelper",
    "workerSpec",
    required=("containers", "supportedModelFormats"),
)

# KServe's ModelSpec is a core/v1 Container (minus nothing we use) plus the model's own fields.
MODEL_SPEC = _closed(
    {
        "modelFormat": _closed(
            {"name": {"type": "string"}, "version": {"type": "string"}}, required=("name",)
        ),
        "runtime": {"type": "string"},
        "runtimeVersion": {"type": "string"},
        "protocolVersion": {"enum": PROTOCOL_VERSIONS},
        "storageUri": {"type": "string", "pattern": "^[a-z0-9]+://"},
        "env": _array(_k8s("EnvVar")),
        "ports": _array(_k8s("ContainerPort")),
        "readinessProbe": _k8s("Probe"),
        "livenessProbe": _k8s("Probe"),
        "startupProbe": _k8s("Probe"),
        "resources": _k8s("ResourceRequirements"),
        "securityContext": _k8s("SecurityContext"),
        "volumeMounts": _array(_k8s("VolumeMount")),
        "args": _array({"type": "string"}),
        "command": _array({"type": "string"}),
        "image": {"type": "string"},
    },
    "confidential",
    "envFrom",
    "imagePullPolicy",
    "lifecycle",
    "name",
    "resizePolicy",
    "restartPolicy",
    "restartPolicyRules",
    "storage",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "volumeDevices",
    "workingDir",
    required=("modelFormat",),
)

PREDICTOR_SPEC = _closed(
    _COMMON_POD
    | {
        "model": MODEL_SPEC,
        "minReplicas": {"type": "integer", "minimum": 0},
        "maxReplicas": {"type": "integer", "minimum": 0},
        "containers": _array(_k8s("Container")),
        "serviceAccountName": {"type": "string"},
    },
    *(
        "activeDeadlineSeconds autoScaling automountServiceAccountToken batcher "
        "canaryTrafficPercent containerConcurrency deploymentStrategy dnsConfig dnsPolicy "
        "enableServiceLinks ephemeralContainers hostAliases hostNetwork hostPID hostUsers "
        "hostname hostnameOverride huggingface initContainers lightgbm logger name nodeName "
        "onnx os overhead paddle pmml preemptionPolicy priority priorityClassName pytorch "
        "readinessGates resourceClaims resources restartPolicy runtimeClassName scaleMetric "
        "scaleMetricType scaleTarget schedulingGates schedulingGroup securityContext "
        "serviceAccount setHostnameAsFQDN shareProcessNamespace sklearn storageContainerName "
        "storageUris subdomain tensorflow terminationGracePeriodSeconds timeout "
        "topologySpreadConstraints triton workerSpec xgboost"
    ).split(),
)


def _resource(api_version: str, kinds: list[str], spec: dict[str, Any]) -> dict[str, Any]:
    return _closed(
        {
            "apiVersion": {"const": api_version},
            "kind": {"enum": kinds},
            "metadata": _ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "spec": spec,
        },
        "status",
        required=("apiVersion", "kind", "metadata", "spec"),
    )


@cache
def schemas() -> dict[str, dict[str, Any]]:
    """Kind -> a self-contained schema (Kubernetes' definitions inlined under `$defs`)."""
    folder = (
        files("kubernetes_validate") / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
    )
    definitions = json.loads((folder / "_definitions.json").read_text())["$defs"]
    runtime = _resource(
        "serving.kserve.io/v1alpha1",
        ["ServingRuntime", "ClusterServingRuntime"],
        SERVING_RUNTIME_SPEC,
    )
    service = _resource(
        "serving.kserve.io/v1beta1",
        ["InferenceService"],
        _closed(
            {"predictor": PREDICTOR_SPEC},
            "canary",
            "explainer",
            "tracing",
            "transformer",
            required=("predictor",),
        ),
    )
    return {
        "ServingRuntime": {**runtime, "$defs": definitions},
        "InferenceService": {**service, "$defs": definitions},
    }
