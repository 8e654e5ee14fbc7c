"""Other servers' model repositories, built at test time from data scikit-learn ships.

Each builder writes one layout into a folder and returns it: a Triton repository (an ONNX iris
model converted with skl2onnx, as examples/train.py converts it), an MLServer one (sklearn and
xgboost `model-settings.json`), MLflow model folders (an sklearn model saved by mlflow), and a
CatBoost `.cbm` file. The models are the examples' own, so a test compares their answers with
the local models' (the KServe rows are versicolor, class 1, for every one of them).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np

from tests.server import ROOT

MODELS = ROOT / "models"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
KSERVE_ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]

TRITON_CONFIG = """
# The iris logistic regression, batched: rows of 4 features, up to 8 per call.
name: "iris-triton"
platform: "onnxruntime_onnx"
max_batch_size: 8
version_policy: { latest: { num_versions: 2 } }
input [
  { name: "input-0", data_type: TYPE_FP32, dims: [ 4 ] }
]
output [
  { name: "predictions", data_type: TYPE_INT64, dims: [ ] },
  { name: "probabilities", data_type: TYPE_FP32, dims: [ 3 ] }
]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 2000
}
instance_group [ { count: 1, kind: KIND_CPU } ]
"""

# One model per way a Triton entry can be broken; the reason each is listed with.
TRITON_BROKEN = {
    "bad-pbtxt": ("max_batch_size: eight\n", "config.pbtxt does not parse"),
    "python-model": ('backend: "python"\n', "python backend runs a model.py"),
    "tensorrt-model": ('platform: "tensorrt_plan"\n', "platform 'tensorrt_plan' is not supported"),
    "no-file": ('platform: "onnxruntime_onnx"\n', "the model file"),
}


def iris_rows() -> np.ndarray:
    """The KServe documentation's two iris rows, float32."""
    return np.array(KSERVE_ROWS, dtype=np.float32)


def build_triton(root: Path, broken: bool = True) -> Path:
    """`iris-triton` (versions 1 and 2 of models/iris.onnx, batched) and the broken entries."""
    model = root / "iris-triton"
    for version in ("1", "2"):
        (model / version).mkdir(parents=True)
        shutil.copy(MODELS / "iris.onnx", model / version / "model.onnx")
    (model / "config.pbtxt").write_text(TRITON_CONFIG, encoding="utf-8")
    (model / "3-notes").mkdir()  # not a number: not a version
    if broken:
        for name, (config, _) in TRITON_BROKEN.items():
            (root / name / "1").mkdir(parents=True)
            (root / name / "config.pbtxt").write_text(config, encoding="utf-8")
    return root


def build_mlserver(root: Path, broken: bool = True) -> Path:
    """`iris-mlserver` (sklearn, file named by uri) and `iris-mlserver-xgboost` (a well-known
    file name, batching), plus a model of an implementation Modelport does not run."""
    settings = {
        "iris-mlserver": {
            "name": "iris-mlserver",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./iris-model.joblib", "version": "v1.2"},
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}],
        },
        "iris-mlserver-xgboost": {
            "name": "iris-mlserver-xgboost",
            "implementation": "mlserver_xgboost.XGBoostModel",
            "max_batch_size": 8,
            "max_batch_time": 0.002,
        },
    }
    files = {
        "iris-mlserver": ("iris.joblib", "iris-model.joblib"),
        "iris-mlserver-xgboost": ("iris.xgboost.json", "model.json"),
    }
    for folder, content in settings.items():
        (root / folder).mkdir(parents=True)
        source, target = files[folder]
        shutil.copy(MODELS / source, root / folder / target)
        (root / folder / "model-settings.json").write_text(json.dumps(content), encoding="utf-8")
    (root / "settings.json").write_text(json.dumps({"debug": False}), encoding="utf-8")
    if broken:
        (root / "huggingface").mkdir()
        (root / "huggingface" / "model-settings.json").write_text(
            json.dumps({"name": "hf", "implementation": "mlserver_huggingface.HuggingFaceRuntime"}),
            encoding="utf-8",
        )
    return root


def build_mlflow(root: Path, name: str = "iris-mlflow", broken: bool = True) -> Path:
    """`<name>/MLmodel`: the examples' logistic regression, trained on a DataFrame of the four
    features (so its signature has four columns) and saved by mlflow."""
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow's import warns about its own type hints
        import mlflow.sklearn
        from mlflow.models import infer_signature

    features, labels = load_iris(return_X_y=True)
    frame = pd.DataFrame(features.astype(np.float32), columns=FEATURES)
    estimator = LogisticRegression(max_iter=1000).fit(frame, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow's notes on pickle, logged too
        mlflow.sklearn.save_model(
            estimator,
            str(root / name),
            signature=infer_signature(frame, estimator.predict(frame)),
            serialization_format="cloudpickle",
        )
    if broken:
        (root / "no-pyfunc").mkdir()
        (root / "no-pyfunc" / "MLmodel").write_text(
            "flavors:\n  keras: {keras_version: 3.0}\n", encoding="utf-8"
        )
    return root


def train_catboost(path: Path) -> Path:
    """A multiclass CatBoost model of iris, saved as `.cbm`."""
    import catboost
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    model = catboost.CatBoostClassifier(
        iterations=30,
        depth=3,
        thread_count=1,
        random_seed=0,
        verbose=False,
        allow_writing_files=False,
    )
    model.fit(features.astype(np.float32), labels)
    model.save_model(str(path))
    return path
