"""KServe's side of the benchmark: iris and sum as kserve.Model subclasses, the way KServe's own
sklearnserver serves a joblib file (get_predict_input / get_predict_response).

    python server.py --http_port 8080 --grpc_port 8081 --iris ../../../models/iris.joblib \
        --grpc_max_receive_message_length 268435456 --grpc_max_send_message_length 268435456

(KServe's gRPC server reads its message limits from the command line it parsed at import.)

Per-request logging is off: no latency log line, and uvicorn's access log and KServe's timing
log and its per-call gRPC line are raised to WARNING.
"""

import argparse
import logging

import joblib
import kserve
import numpy as np
from kserve.utils.utils import get_predict_input, get_predict_response


class Iris(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        self._model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        rows = get_predict_input(payload)
        return get_predict_response(payload, self._model.predict(rows), self.name)


class Sum(kserve.Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        rows = np.asarray(get_predict_input(payload))
        sums = rows.sum(axis=-1, dtype=np.float64).astype(np.float32)
        return get_predict_response(payload, sums, self.name)


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--iris", required=True)
    args, _ = parser.parse_known_args()
    server = kserve.ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
        enable_grpc=True,
        enable_docs_url=False,
        enable_latency_logging=False,
    )
    for name in ("uvicorn.access", "kserve.trace", "kserve"):  # "kserve" logs every gRPC call
        logging.getLogger(name).setLevel(logging.WARNING)
    server.start([Iris("iris", args.iris), Sum("sum")])


if __name__ == "__main__":
    main()
