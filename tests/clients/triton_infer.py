"""Many iris ModelInfer calls with tritonclient.grpc over one channel, printing one JSON object.

For the deploy tests, through a load balancer that spreads one channel's calls over replicas.
Run in a child process (tritonclient's protos clash with ours). Usage:
python triton_infer.py GRPC_URL MODEL CALLS. Prints readiness, every call's predictions, and
the failures (status and message) instead of stopping at the first.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


def main(url: str, model: str, calls: int) -> dict[str, Any]:
    client = grpcclient.InferenceServerClient(url)
    found: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "predictions": [],
        "failures": [],
    }
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
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
