"""kserve's own clients (InferenceRESTClient v1/v2, InferenceGRPCClient) against Modelport.

Run in its own virtual environment (kserve pins its own protobuf and registers `inference.*`
messages); prints one JSON object with what each call returned.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from kserve import (
    InferenceGRPCClient,
    InferenceRESTClient,
    InferInput,
    InferRequest,
    RESTConfig,
)

ROWS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], dtype=np.float32)


def request(binary: bool) -> InferRequest:
    tensor = InferInput("input-0", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS, binary_data=binary)
    return InferRequest(model_name="iris", infer_inputs=[tensor], request_id="ks-1")


async def main(http_url: str, grpc_target: str) -> dict[str, object]:
    found: dict[str, object] = {}
    v1 = InferenceRESTClient(RESTConfig(protocol="v1", retries=0))
    found["v1_live"] = await v1.is_server_live(http_url)
    found["v1_model_ready"] = await v1.is_model_ready(http_url, "iris")
    found["v1_broken_ready"] = await v1.is_model_ready(http_url, "broken")
    found["v1_predict"] = await v1.infer(http_url, {"instances": ROWS.tolist()}, model_name="iris")
    explained = await v1.explain(http_url, "iris-xgboost", {"instances": ROWS[:1].tolist()})
    found["v1_explain_keys"] = sorted(explained)
    await v1.close()

    v2 = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    found["v2_live"] = await v2.is_server_live(http_url)
    found["v2_ready"] = await v2.is_server_ready(http_url)
    found["v2_model_ready"] = await v2.is_model_ready(http_url, "iris")
    found["v2_nope_ready"] = await v2.is_model_ready(http_url, "nope")
    for binary in (False, True):
        answer = await v2.infer(http_url, request(binary), model_name="iris")
        found[f"v2_infer_binary_{binary}"] = {
            "id": answer.id,
            "model_name": answer.model_name,
            "predictions": answer.outputs[0].as_numpy().tolist(),
        }
    await v2.close()

    grpc_client = InferenceGRPCClient(grpc_target)
    found["grpc_live"] = await grpc_client.is_server_live()
    found["grpc_ready"] = await grpc_client.is_server_ready()
    found["grpc_model_ready"] = await grpc_client.is_model_ready("iris")
    answer = await grpc_client.infer(request(True))
    found["grpc_infer"] = {
        "model_name": answer.model_name,
        "predictions": answer.outputs[0].as_numpy().tolist(),
    }
    await grpc_client.close()
    return found


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
