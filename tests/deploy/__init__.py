"""`make deploy-test`: deploy/ run for real on Docker (tests marked `deploy`, run with --deploy)."""

from typing import Any

#: The names of the containers, compose projects and networks the deploy tests make begin so.
PREFIX = "modelport-test-"
#: The rows every deploy test sends to the example iris model (tests/clients/triton_infer.py too).
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
#: The same rows as an Open Inference Protocol REST request.
V2_BODY: dict[str, Any] = {
    "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [2, 4], "data": IRIS_ROWS}]
}
