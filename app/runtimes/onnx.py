"""ONNX graphs run by onnxruntime on the CPU."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import onnxruntime
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from app.codec.datatypes import DATATYPE_TO_DTYPE
from app.errors import InvalidInput
from app.model import Model
from app.runtimes.columns import is_columnar, stack_columns
from app.types import TensorSpec

# onnxruntime's type strings for tensors that have an OIP datatype. bfloat16 and the float8
# types have none, so graphs using them are refused (inputs) or do not advertise them (outputs).
ORT_TO_DATATYPE: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def _shape(dims: Any) -> tuple[int, ...]:
    """The graph's shape in OIP words: symbolic (`"batch"`) and unknown (None) dims are -1."""
    return tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in dims or ())


class ONNXModel(Model):
    """An inference session; answers every tensor output unless the request names some."""

    platform = "onnx_onnxv1"

    def load(self) -> None:
        """Open the session single-threaded and read the metadata from the graph."""
        options = onnxruntime.SessionOptions()
        # One thread per request: the server scales with processes, not intra-op threads.
        options.intra_op_num_threads = int(self.parameters.get("intra_op_num_threads", 1))
        self.session = onnxruntime.InferenceSession(
            str(self.uri), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.inputs = []
        for node in self.session.get_inputs():
            datatype = ORT_TO_DATATYPE.get(node.type)
            if datatype is None:
                raise TypeError(f"input '{node.name}' has type {node.type}, which OIP cannot carry")
            self.inputs.append(TensorSpec(node.name, datatype, _shape(node.shape)))
        # Sequences, maps (sklearn's ZipMap) and exotic tensors have no OIP form: never asked for.
        self.outputs = [
            TensorSpec(node.name, ORT_TO_DATATYPE[node.type], _shape(node.shape))
            for node in self.session.get_outputs()
            if node.type in ORT_TO_DATATYPE
        ]
        self.default_outputs = None
        self._dtypes = {spec.name: DATATYPE_TO_DTYPE[spec.datatype] for spec in self.inputs}
        self._graph_inputs = list(self.inputs)
        self._graph_output_specs = list(self.outputs)
        # Triton's `reshape`: tensors the graph takes or gives in another shape than declared.
        self._reshape = dict(self.settings.reshape)

    def check_declared(self) -> None:
        """Declared tensors must be the graph's, in shapes it takes (after any `reshape`).

        A one-input graph takes its tensor under any name, and one matrix input may be declared
        one input per feature (`app.runtimes.columns`, checked per request). Raises ValueError
        naming the tensor.
        """
        graph_outputs = {spec.name: spec for spec in self._graph_output_specs}
        for spec in self.outputs:
            if spec.name not in graph_outputs:
                raise ValueError(
                    f"output '{spec.name}' is declared, but the graph has no such output "
                    f"(outputs: {list(graph_outputs)})"
                )
            self._check_shape("output", spec, graph_outputs[spec.name])
        graph = self._graph_inputs
        if len(graph) == 1 and self.inputs != graph and is_columnar(self.inputs):
            return
        graph_inputs = {spec.name: spec for spec in graph}
        for spec in self.inputs:
            found = graph_inputs.get(spec.name) or (graph[0] if len(graph) == 1 else None)
            if found is None:
                raise ValueError(
                    f"input '{spec.name}' is declared, but the graph has no such input "
                    f"(inputs: {list(graph_inputs)})"
                )
            self._check_shape("input", spec, found)

    def _check_shape(self, kind: str, spec: TensorSpec, graph: TensorSpec) -> None:
        shape = self._reshape.get(spec.name, spec.shape)
        if len(shape) != len(graph.shape) or any(
            want != got and -1 not in (want, got)
            for want, got in zip(shape, graph.shape, strict=True)
        ):
            raise ValueError(
                f"{kind} '{spec.name}' is declared with shape {list(shape)}, but the graph's is "
                f"{list(graph.shape)}"
            )

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Every tensor output of the graph."""
        return self.predict_outputs(inputs, parameters, [spec.name for spec in self.outputs])

    def predict_outputs(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], names: Collection[str]
    ) -> dict[str, np.ndarray]:
        """Run only the requested outputs; onnxruntime prunes the nodes nobody needs."""
        known = {spec.name for spec in self.outputs}
        wanted = [name for name in names if name in known]
        if not wanted:
            return {}
        feed = self._feed(inputs)
        try:
            arrays = self.session.run(wanted, feed)
        except InvalidArgument as exc:  # wrong rank or dimension for the graph: the caller's fault
            raise InvalidInput(f"model '{self.name}': {exc}") from None
        outputs = dict(zip(wanted, (np.asarray(array) for array in arrays), strict=True))
        if self._reshape:
            for spec in self.outputs:
                if spec.name in outputs and spec.name in self._reshape:
                    outputs[spec.name] = _declared_shape(outputs[spec.name], spec.shape)
        return outputs

    def _feed(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Name, cast and lay out the arrays the way the graph declares its inputs."""
        feed = self._named(inputs)
        for name, shape in self._reshape.items():
            if name in feed:
                try:
                    feed[name] = feed[name].reshape(shape)
                except ValueError:
                    raise InvalidInput(
                        f"model '{self.name}': input '{name}' of shape {list(feed[name].shape)} "
                        f"cannot take the shape {list(shape)} the model reshapes it to"
                    ) from None
        return feed

    def _named(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if (
            len(self._dtypes) == 1
            and self.inputs != self._graph_inputs
            and is_columnar(self.inputs)
        ):
            # One matrix in the graph, its features declared one per input in the config.
            ((name, dtype),) = self._dtypes.items()
            return {name: _cast(stack_columns(self.name, self.inputs, inputs), dtype)}
        if len(self._dtypes) == 1 and len(inputs) == 1:
            # A one-input graph takes the one array sent, whatever the client called it.
            ((name, dtype),) = self._dtypes.items()
            return {name: _cast(next(iter(inputs.values())), dtype)}
        missing = [name for name in self._dtypes if name not in inputs]
        unknown = [name for name in inputs if name not in self._dtypes]
        if missing or unknown:
            raise InvalidInput(
                f"model '{self.name}' takes inputs {sorted(self._dtypes)}; "
                f"missing {missing}, unknown {unknown}"
            )
        return {name: _cast(inputs[name], dtype) for name, dtype in self._dtypes.items()}


def _declared_shape(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A graph output reshaped back to its declared shape (batch dimension kept)."""
    if shape[:1] == (-1,) and array.ndim:
        return array.reshape((len(array), *shape[1:]))
    return array.reshape(shape)


def _cast(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert to the graph's element type; onnxruntime wants string tensors as `str` objects."""
    if dtype.kind == "O":
        return np.asarray(_TEXT(np.asarray(array)), dtype=object)
    return np.ascontiguousarray(array, dtype=dtype)


def _text(value: Any) -> str:
    """One BYTES element as the `str` onnxruntime's string tensors hold."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


_TEXT = np.frompyfunc(_text, 1, 1)
