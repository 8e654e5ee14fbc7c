"""Built-in runtimes by name; each is imported only when a model uses it (optional extras)."""

from __future__ import annotations

import importlib

from app.model import Model

RUNTIME_CLASSES: dict[str, str] = {
    "sklearn": "app.runtimes.sklearn:SKLearnModel",
    "xgboost": "app.runtimes.xgboost:XGBoostModel",
    "lightgbm": "app.runtimes.lightgbm:LightGBMModel",
    "onnx": "app.runtimes.onnx:ONNXModel",
    "catboost": "app.runtimes.catboost:CatBoostModel",
    "mlflow": "app.runtimes.mlflow:MLflowModel",
}


def import_class(spec: str) -> type[Model]:
    """Import `module:Class` and check that it is a `Model`.

    Raises ImportError (with the package to install, for an optional runtime) or TypeError.
    """
    module_name, _, class_name = spec.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ImportError(f"module '{module_name}' has no class '{class_name}'")
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise TypeError(f"'{spec}' is not a subclass of app.model.Model")
    return cls
