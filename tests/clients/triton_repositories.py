"""tritonclient (gRPC and HTTP) against models mounted from repositories; prints one JSON object.

Run in a child process (tritonclient's protos clash with ours). Usage:
`python triton_repositories.py answers GRPC_URL HTTP_URL MODEL[:VERSION] ...` infers the KServe
rows from every model over both protocols (one matrix tensor, or one tensor per input when the
metadata declares the inputs one per feature) and reads every model's config and the repository
index; `load GRPC_URL MODEL` loads a model (its error, if any) and infers it on new connections.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

ROWS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], dtype=np.float32)


def _error(exc: Exception) -> dict[str, str]:
    return {"status": str(exc.status()), "message": exc.message()}  # type: ignore[attr-defined]


def _inputs(module: Any, metadata: dict[str, Any]) -> list[Any]:
    specs = metadata["inputs"]
    if len(specs) == 1:
        arrays = {specs[0]["name"]: ROWS}
    else:  # one input per feature, in the declared order
        arrays = {spec["name"]: ROWS[:, i] for i, spec in enumerate(specs)}
    tensors = []
    for name, array in arrays.items():
        tensor = module.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(np.ascontiguousarray(array))
        tensors.append(tensor)
    return tensors


def _metadata(client: Any, model: str, version: str) -> dict[str, Any]:
    found = client.get_model_metadata(model, version, **_as_json(client))
    return {
        "inputs": [
            {"name": i["name"], "shape": [int(d) for d in i["shape"]]} for i in found["inputs"]
        ],
        "outputs": [o["name"] for o in found["outputs"]],
        "versions": found.get("versions", []),
    }


def _as_json(client: Any) -> dict[str, bool]:
    return {"as_json": True} if type(client).__module__.startswith("tritonclient.grpc") else {}


def answers(grpc_url: str, http_url: str, models: list[str]) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    clients = {
        "grpc": (grpcclient, grpcclient.InferenceServerClient(grpc_url)),
        "http": (httpclient, httpclient.InferenceServerClient(http_url)),
    }
    out: dict[str, Any] = {}
    for label, (module, client) in clients.items():
        found: dict[str, Any] = {}
        for spec in models:
            model, _, version = spec.partition(":")
            metadata = _metadata(client, model, version)
            outputs = [module.InferRequestedOutput(name) for name in metadata["outputs"]]
            result = client.infer(model, _inputs(module, metadata), version, outputs=outputs)
            found[spec] = {
                "metadata": metadata,
                "outputs": {
                    name: result.as_numpy(name).astype(np.float64).tolist()
                    for name in metadata["outputs"]
                },
                "config": client.get_model_config(model, version, **_as_json(client)),
            }
        index = client.get_model_repository_index(**_as_json(client))
        found["index"] = index["models"] if isinstance(index, dict) else index
        out[label] = found
    return out


def load(grpc_url: str, model: str, connections: int = 6) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(grpc_url)
    out: dict[str, Any] = {"index": client.get_model_repository_index(as_json=True)["models"]}
    try:
        client.load_model(model)
    except InferenceServerException as exc:
        out["error"] = _error(exc)
        return out
    predictions = []
    for _ in range(connections):  # new channels: the kernel hands them to either worker
        fresh = grpcclient.InferenceServerClient(grpc_url)
        metadata = _metadata(fresh, model, "")
        result = fresh.infer(model, _inputs(grpcclient, metadata))
        predictions.append(result.as_numpy(metadata["outputs"][0]).tolist())
        fresh.close()
    out["predictions"] = predictions
    return out


def main() -> int:
    scenario, grpc_url = sys.argv[1], sys.argv[2]
    if scenario == "answers":
        result = answers(grpc_url, sys.argv[3], sys.argv[4:])
    elif scenario == "load":
        result = load(grpc_url, sys.argv[3])
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
