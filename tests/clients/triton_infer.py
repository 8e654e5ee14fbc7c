"""Many iris ModelInfer calls with tritonclient.grpc over one channel, printing one JSON object.

For the deploy tests, through a load balancer that spreads one channel's calls over replicas.
Run in a child process (tritonclient's protos clash with ours). Usage:
python triton_infer.py GRPC_URL MODEL CALLS [--infer-only]. Prints readiness (unless
--infer-only: then every call is a ModelInfer), every call's predictions, and the failures
(status and message) instead of stopping at the first.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


def main(url: str, model: str, calls: int, infer_only: bool) -> dict[str, Any]:
    client = grpcclient.InferenceServerClient(url)
    found: dict[str, Any] = {"predictions": [], "failures": []}
    if not infer_only:
        found["live"] = client.is_server_live()
        found["ready"] = client.is_server_ready()
        found["model_ready"] = client.is_model_ready(model)
    for _ in range(calls):
        item = grpcclient.InferInput("input-0", list(ROWS.shape), "FP32")
        item.set_data_from_numpy(ROWS)
        try:
            result = client.infer(model, [item], client_timeout=30)
        except InferenceServerException as exc:
            found["failures"].append({"status": str(exc.status()), "message": exc.message()})
            continue
        output = result.get_response().outputs[0].name
        found["predictions"].append(result.as_numpy(output).tolist())
    client.close()
    return found


if __name__ == "__main__":
    url, model, calls, *flags = sys.argv[1:]
    print(json.dumps(main(url, model, int(calls), flags == ["--infer-only"])))
