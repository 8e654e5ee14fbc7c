"""kserve's v1 REST client: `predict` of the KServe rows from each model named; prints JSON.

Run in the kserve client's own virtual environment. Usage: python kserve_v1.py HTTP_URL MODEL...
"""

from __future__ import annotations

import asyncio
import json
import sys

from kserve import InferenceRESTClient, RESTConfig

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


async def main(http_url: str, models: list[str]) -> dict[str, object]:
    client = InferenceRESTClient(RESTConfig(protocol="v1", retries=0))
    found: dict[str, object] = {}
    for model in models:
        found[model] = {
            "ready": await client.is_model_ready(http_url, model),
            "answer": await client.infer(http_url, {"instances": ROWS}, model_name=model),
        }
    await client.close()
    return found


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2:]))))
