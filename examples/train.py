"""Train the example models from data scikit-learn ships, so the repository holds no binaries.

Run `python -m examples.train --out models`. Every model is trained on float32 numpy arrays (no
feature names, so no library warns about them at predict time), single-threaded and seeded, so two
runs write the same predictions. Each iris model must answer `[1, 1]` for the KServe
documentation rows; the script asserts it, because the docs and tests quote that answer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np

# The two rows of the KServe sklearn example (`iris-input.json`); both are versicolor (class 1).
KSERVE_ROWS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], dtype=np.float32)
KSERVE_ANSWER = [1, 1]
BACKGROUND_ROWS = 50
SEED = 0
FILES = (
    "iris.joblib",
    "iris_v2.joblib",
    "iris.xgboost.json",
    "iris.lightgbm.txt",
    "iris.onnx",
    "iris_background.npy",
    "digits.joblib",
    "digits_background.npy",
)


def _check(name: str, predict: Callable[[np.ndarray], np.ndarray]) -> None:
    """Fail loudly if a model disagrees with the documented answer."""
    got = [int(label) for label in np.asarray(predict(KSERVE_ROWS))]
    assert got == KSERVE_ANSWER, f"{name} predicts {got} for the KServe rows, not {KSERVE_ANSWER}"


def _background(features: np.ndarray) -> np.ndarray:
    """A fixed sample of training rows for explainers to compare against."""
    rows = np.random.default_rng(SEED).choice(len(features), BACKGROUND_ROWS, replace=False)
    return np.ascontiguousarray(features[np.sort(rows)], dtype=np.float32)


def _train_sklearn(out: Path, features: np.ndarray, labels: np.ndarray) -> object:
    """Versions 1 and 2 of `iris`; returns version 1 for the ONNX conversion."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    # To the optimum, whatever the CPU: lbfgs on float32 stops where the machine's arithmetic
    # leads it (three machines gave three probabilities, up to 7e-3 apart, failing the README's
    # answers). The L2-regularised optimum is unique and Newton's method reaches it in 8 steps
    # in float64 (lbfgs and newton-cg agree to 2e-7 there).
    logistic = LogisticRegression(solver="newton-cholesky", max_iter=100, tol=1e-12)
    logistic.fit(features.astype(np.float64), labels)
    _check("iris.joblib", logistic.predict)
    joblib.dump(logistic, out / "iris.joblib")
    forest = RandomForestClassifier(n_estimators=50, random_state=SEED, n_jobs=1)
    forest.fit(features, labels)
    _check("iris_v2.joblib", forest.predict)
    joblib.dump(forest, out / "iris_v2.joblib")
    return logistic


def _train_xgboost(out: Path, features: np.ndarray, labels: np.ndarray) -> None:
    """A multi:softprob booster, the objective the xgboost runtime reads as a classifier."""
    import xgboost

    params = {
        "objective": "multi:softprob",
        "num_class": 3,
        "max_depth": 3,
        "eta": 0.3,
        "nthread": 1,
        "seed": SEED,
    }
    matrix = xgboost.DMatrix(features, label=labels, nthread=1)
    booster = xgboost.train(params, matrix, num_boost_round=20)
    _check("iris.xgboost.json", lambda rows: booster.inplace_predict(rows).argmax(axis=1))
    booster.save_model(str(out / "iris.xgboost.json"))


def _train_lightgbm(out: Path, features: np.ndarray, labels: np.ndarray) -> None:
    """A multiclass booster; 150 rows need a smaller `min_data_in_leaf` than the default 20."""
    import lightgbm

    params = {
        "objective": "multiclass",
        "num_class": 3,
        "num_leaves": 7,
        "learning_rate": 0.2,
        "min_data_in_leaf": 5,
        "num_threads": 1,
        "seed": SEED,
        "deterministic": True,
        "verbose": -1,
    }
    dataset = lightgbm.Dataset(features, label=labels, params={"verbose": -1})
    booster = lightgbm.train(params, dataset, num_boost_round=20)
    _check(
        "iris.lightgbm.txt",
        lambda rows: np.asarray(booster.predict(rows, num_threads=1)).argmax(axis=1),
    )
    booster.save_model(str(out / "iris.lightgbm.txt"))


def _convert_onnx(out: Path, logistic: object) -> None:
    """The logistic regression as ONNX, with the tensor names the other runtimes answer with."""
    import onnxruntime
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

    # skl2onnx turns "input-0" into "input_0", so convert under that name and rename after.
    model = convert_sklearn(
        logistic,
        initial_types=[("input_0", FloatTensorType([None, 4]))],
        final_types=[
            ("predictions", Int64TensorType([None])),
            ("probabilities", FloatTensorType([None, 3])),
        ],
        options={id(logistic): {"zipmap": False}},
    )
    # skl2onnx picks a random graph name and lists opsets in set order; pin both so the file
    # is the same byte for byte on every run.
    opsets = sorted(model.opset_import, key=lambda opset: opset.domain)
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    graph = model.graph
    graph.name = "iris_logistic_regression"
    for tensor in graph.input:
        if tensor.name == "input_0":
            tensor.name = "input-0"
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == "input_0":
                node.input[index] = "input-0"
    path = out / "iris.onnx"
    path.write_bytes(model.SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _check("iris.onnx", lambda rows: session.run(["predictions"], {"input-0": rows})[0])


def _train_digits(out: Path) -> None:
    """The 64-feature classifier behind `examples.digits:DigitsModel`."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    features, labels = load_digits(return_X_y=True)
    features = features.astype(np.float32)
    estimator = LogisticRegression(max_iter=2000).fit(features, labels)
    joblib.dump(estimator, out / "digits.joblib")
    np.save(out / "digits_background.npy", _background(features))


def write_models(out: Path) -> list[Path]:
    """Train every example model into `out` (created if missing) and return the files written."""
    from sklearn.datasets import load_iris
    from threadpoolctl import threadpool_limits

    out.mkdir(parents=True, exist_ok=True)
    features, labels = load_iris(return_X_y=True)
    features = features.astype(np.float32)
    with threadpool_limits(limits=1):
        logistic = _train_sklearn(out, features, labels)
        _train_xgboost(out, features, labels)
        _train_lightgbm(out, features, labels)
        _convert_onnx(out, logistic)
        np.save(out / "iris_background.npy", _background(features))
        _train_digits(out)
    return [out / name for name in FILES]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: `python -m examples.train --out models`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models"), help="folder to write into")
    args = parser.parse_args(argv)
    for path in write_models(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
