"""Drive Modelport's OMI port with the real chassisml client, printing one JSON object.

Run with the python of the chassisml virtual environment (its protobuf pin clashes with ours,
reference omi.md §8). Usage: python omi_client.py SCENARIO HOST PORT
Scenarios: `tour` (Status, a batch Run, a 10 MiB input), `shutdown` (Status then Shutdown),
`explain` (a Run of the iris rows in EXPLAIN_ROWS with explain=True), `descriptor`
(chassisml-protobuf's serialized file descriptor, base64, for the wire test).
Exits non-zero on a transport error, printing it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
from typing import Any

import numpy as np

ROWS = np.arange(3 * 64, dtype=np.float32).reshape(3, 64) % 17
BIG_BYTES = 10 * 1024 * 1024


def _outputs(response: Any) -> list[dict[str, Any]]:
    items = []
    for item in response.outputs:
        entry: dict[str, Any] = {"success": item.success, "keys": sorted(item.output)}
        if "results.json" in item.output:
            entry["results"] = json.loads(item.output["results.json"])
        if "error" in item.output:
            entry["error"] = item.output["error"].decode("utf-8", "replace")
        items.append(entry)
    return items


def _status(response: Any) -> dict[str, Any]:
    return {
        "status_code": response.status_code,
        "status": response.status,
        "message": response.message,
    }


async def tour(host: str, port: int) -> dict[str, Any]:
    from chassis.client import OMIClient

    out: dict[str, Any] = {}
    async with OMIClient(host, port, timeout=20) as client:
        status = await client.status()
        out["status"] = _status(status)
        out["model_name"] = status.model_info.model_name
        out["inputs"] = [i.filename for i in status.inputs]
        out["outputs"] = [o.filename for o in status.outputs]
        batch = [{"input": json.dumps(row.tolist()).encode()} for row in ROWS]
        run = await client.run(batch)
        out["run"] = {**_status(run), "outputs": _outputs(run)}
        buffer = io.BytesIO()
        rows = BIG_BYTES // (64 * 4)
        np.save(buffer, np.ones((rows, 64), dtype=np.float32), allow_pickle=False)
        big = buffer.getvalue()
        run = await client.run([{"input": big}])
        item = run.outputs[0]
        results = json.loads(item.output["results.json"]) if item.success else {}
        out["big"] = {
            **_status(run),
            "input_bytes": len(big),
            "success": item.success,
            "predictions": len(results.get("predictions", [])),
        }
    return out


async def shutdown(host: str, port: int) -> dict[str, Any]:
    from chassis.client import OMIClient

    async with OMIClient(host, port, timeout=20) as client:
        status = await client.status()
        reply = await client.shutdown()
    return {"status": _status(status), "shutdown": _status(reply)}


EXPLAIN_ROWS = [[6.8, 2.8, 4.8, 1.4], [5.0, 3.4, 1.5, 0.2]]


async def explain(host: str, port: int) -> dict[str, Any]:
    """One item per row, each with its `explanation.json` (the v1 explain body) parsed."""
    from chassis.client import OMIClient

    async with OMIClient(host, port, timeout=60) as client:
        items = [{"input": json.dumps([row]).encode()} for row in EXPLAIN_ROWS]
        run = await client.run(items, explain=True)
    outputs = []
    for item in run.outputs:
        entry: dict[str, Any] = {"success": item.success, "keys": sorted(item.output)}
        if "explanation.json" in item.output:
            entry["explanation"] = json.loads(item.output["explanation.json"])
        outputs.append(entry)
    return {**_status(run), "outputs": outputs}


def descriptor() -> dict[str, Any]:
    from chassis.protos.v1 import model_pb2

    return {
        "name": model_pb2.DESCRIPTOR.name,
        "serialized": base64.b64encode(model_pb2.DESCRIPTOR.serialized_pb).decode(),
    }


def main() -> int:
    scenario = sys.argv[1]
    if scenario == "descriptor":
        print(json.dumps(descriptor()))
        return 0
    host, port = sys.argv[2], int(sys.argv[3])
    runner = {"tour": tour, "shutdown": shutdown, "explain": explain}[scenario]
    try:
        result = asyncio.run(runner(host, port))
    except Exception as exc:  # the test reads what failed
        print(json.dumps({"transport_error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
