"""MLflow models of any flavor with a pyfunc form (a folder holding an `MLmodel` file).

The model's signature is its metadata. A column signature (a pandas DataFrame of named columns,
what MLflow records for a DataFrame) becomes one input per column, `[-1]` each, in the
signature's order (`app.runtimes.columns`: v2 tensors per column, `infer_dict` rows keyed by the
column names, v1 rows of all columns); each request is handed to the model as a DataFrame of
those columns. A tensor signature keeps its tensors' names, shapes and dtypes, and the model gets
the array (or a dict of them for several). A model saved without a signature takes whatever
tensors a request sends. Outputs: a tensor signature's tensors; named columns one output each;
otherwise one output, `predictions`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from app.codec.datatypes import datatype_from_dtype
from app.model import Model
from app.runtimes.classifier import PREDICTIONS
from app.runtimes.columns import checked_columns
from app.types import TensorSpec

#: MLflow's column types -> OIP datatypes (what a column of that type holds).
COLUMN_TYPES: dict[str, str] = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
}


def _pyfunc() -> ModuleType:
    """`mlflow.pyfunc`, imported once without the warnings its import emits about itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.pyfunc

    return mlflow.pyfunc


class MLflowModel(Model):
    """A pyfunc model; `predict` hands it a DataFrame (columns) or arrays (tensors)."""

    platform = "mlflow_pyfunc"

    def load(self) -> None:
        """Load the pyfunc model and turn its signature into the metadata.

        Raises TypeError for a column whose type has no OIP datatype (datetime, arrays, ...).
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version and dependency notes, logged by MLflow too
            self.pyfunc = _pyfunc().load_model(str(self.uri))
        metadata = self.pyfunc.metadata
        inputs = metadata.get_input_schema()
        #: Column names, when the signature is a DataFrame's: requests become DataFrames.
        self.columns: list[str] | None = None
        if inputs is None:
            self.inputs = []
        elif inputs.is_tensor_spec():
            self.inputs = _tensor_specs(inputs.inputs, "input")
        else:
            self.inputs = _column_specs(inputs.inputs, "input")
            self.columns = [spec.name for spec in self.inputs]
            self.features = list(self.columns)
        outputs = metadata.get_output_schema()
        if outputs is None:
            self.outputs = []
        elif outputs.is_tensor_spec():
            self.outputs = _tensor_specs(outputs.inputs, "output")
        else:
            self.outputs = _column_specs(outputs.inputs, "output")
        self.default_outputs = None
        self._strings = {spec.name for spec in self.inputs if spec.datatype == "BYTES"}

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """The model's answer to one request, as named arrays."""
        return self._answer(self.pyfunc.predict(self._data(inputs)))

    def _data(self, inputs: dict[str, np.ndarray]) -> Any:
        """What the pyfunc model takes: a DataFrame of the columns, or the arrays."""
        if self.columns is not None:
            columns = checked_columns(self.name, self.inputs, inputs)
            return pd.DataFrame(
                {name: self._column(name, c) for name, c in zip(self.columns, columns, strict=True)}
            )
        if len(inputs) == 1 and len(self.inputs) <= 1:
            return next(iter(inputs.values()))
        return dict(inputs)

    def _column(self, name: str, values: np.ndarray) -> Any:
        column = values.reshape(len(values)) if values.ndim > 1 else values
        if name in self._strings:  # BYTES elements are bytes; a string column holds str
            return pd.Series(column, dtype=object).str.decode("utf-8")
        return column

    def _answer(self, result: Any) -> dict[str, np.ndarray]:
        """Named arrays of whatever predict returned: array, Series, DataFrame, dict or list."""
        declared = [spec.name for spec in self.outputs]
        if isinstance(result, pd.DataFrame):
            if declared and all(name in result.columns for name in declared):
                return {name: result[name].to_numpy() for name in declared}
            if len(result.columns) == 1:
                return {declared[0] if declared else PREDICTIONS: result.iloc[:, 0].to_numpy()}
            return {str(column): result[column].to_numpy() for column in result.columns}
        if isinstance(result, dict):
            return {str(name): np.asarray(value) for name, value in result.items()}
        if isinstance(result, pd.Series):
            result = result.to_numpy()
        return {declared[0] if declared else PREDICTIONS: np.asarray(result)}


def _tensor_specs(specs: Sequence[Any], kind: str) -> list[TensorSpec]:
    """A tensor signature's tensors; unnamed ones are `input-0`... (or `predictions` alone)."""
    found = []
    for index, spec in enumerate(specs):
        default = PREDICTIONS if kind == "output" and len(specs) == 1 else f"{kind}-{index}"
        found.append(
            TensorSpec(
                spec.name or default,
                datatype_from_dtype(np.dtype(spec.type)),
                tuple(int(dim) for dim in spec.shape),
            )
        )
    return found


def _column_specs(specs: Sequence[Any], kind: str) -> list[TensorSpec]:
    """A column signature's columns, one `[-1]` tensor each (one unnamed output: predictions)."""
    found = []
    for index, spec in enumerate(specs):
        type_name = getattr(spec.type, "name", str(spec.type))
        datatype = COLUMN_TYPES.get(type_name)
        default = PREDICTIONS if kind == "output" and len(specs) == 1 else f"{kind}-{index}"
        name = spec.name or default
        if datatype is None:
            raise TypeError(
                f"{kind} column '{name}' has type {type_name}, which has no OIP datatype "
                f"(served: {', '.join(COLUMN_TYPES)})"
            )
        found.append(TensorSpec(name, datatype, (-1,)))
    return found
