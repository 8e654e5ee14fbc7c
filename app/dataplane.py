"""The one data plane under every front-end: health, metadata, inference, repository.

REST blueprints and gRPC servicers call these methods with internal types and get internal types
back; readiness checks, statistics and error wrapping happen here once, so no front-end can
forget them.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import Any

import numpy as np

from app import deadlines, explaining, metrics
from app.batching import Batcher, batch_size
from app.binding import bind_inputs, output_names, output_tensor
from app.entries import ModelEntry
from app.errors import (
    InvalidInput,
    ModelFailed,
    ModelNotFound,
    ModelOverloaded,
    ModelportError,
    NotImplementedByModel,
)
from app.gate import Gate
from app.manager import ModelManager
from app.model import Model
from app.stats import ModelStats, StatsRegistry
from app.types import InferRequest, InferResponse, ModelMetadata, ServerMetadata, Tensor
from app.workers import Workers

log = logging.getLogger("modelport.dataplane")

#: Triton's names for the extensions Modelport really serves (reference §2.3), REST and gRPC
#: alike; tests/test_extensions_e2e.py exercises each one. Not served, so not listed:
#: `classification` (a requested output's `classification` parameter is ignored), `sequence` and
#: `schedule_policy` (their parameters are accepted but ignored), the shared-memory extensions
#: (400), `model_repository(unload_dependents)` (no model depends on another), trace, logging.
EXTENSIONS = (
    "binary_tensor_data",
    "model_configuration",
    "model_repository",
    "parameters",
    "statistics",
)


class DataPlane:
    """Protocol-neutral operations on the models of one `ModelManager`."""

    def __init__(
        self,
        manager: ModelManager,
        server_name: str,
        server_version: str,
        workers: Workers | None = None,
    ) -> None:
        self.manager = manager
        #: How repository changes and statistics reach the server's other processes (none by
        #: default; `app.core.workers_for` picks the control channel under gunicorn). It owns
        #: the counters this data plane records into, since it is what adds them up.
        self.workers = workers or Workers(manager, StatsRegistry())
        self.stats = self.workers.stats
        # A batcher holds its model (it calls it), so entries leave only through `_retire`.
        self._batchers: dict[Model, Batcher] = {}
        self._batchers_lock = threading.Lock()
        # Each model's call pool (app/gate.py), made on its first call and left by `_retire`.
        self._gates: dict[Model, Gate] = {}
        manager.on_retire.append(self._retire)
        self._server = ServerMetadata(server_name, server_version, EXTENSIONS)

    # -- server ------------------------------------------------------------------------------

    def live(self) -> bool:
        """The process answers: always true while it can run this code."""
        return True

    def ready(self) -> bool:
        """Initial loading is over (failed models are reported per model)."""
        return self.manager.ready()

    def server_metadata(self) -> ServerMetadata:
        """Name, version and extensions of this server."""
        return self._server

    # -- models ------------------------------------------------------------------------------

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        """Metadata of a ready model version.

        Raises `ModelNotFound` or `ModelUnavailable` (metadata comes from the loaded model).
        """
        model = self.manager.get(name, version)
        entry = self.manager.entry(name, version)
        versions = (
            (entry.version,)
            if version
            else tuple(e.version for e in self.manager.entries(name) if e.ready)
        )
        return ModelMetadata(
            name=model.name,
            versions=versions,
            platform=model.platform,
            inputs=tuple(model.inputs),
            outputs=tuple(model.outputs),
            explanation_outputs=tuple(explaining.explanation_specs(model)),
        )

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether a model version can serve now; raises `ModelNotFound` for an unknown one.

        False while every slot of its call pool is held (overloaded: hung calls, or more
        concurrent requests than `max_concurrency`), as well as when it is not loaded.
        """
        entry = self.manager.entry(name, version)
        if not entry.ready:
            return False
        gate = self._gates.get(entry.model) if entry.model is not None else None
        return gate is None or not gate.full

    def check_model_ready(self, name: str, version: str | None = None) -> None:
        """Raise the error that says why a model version cannot serve now, if it cannot.

        `ModelNotFound`, `ModelUnavailable` (not loaded) or `ModelOverloaded` (pool full).
        """
        model = self.manager.get(name, version)
        gate = self._gates.get(model)
        if gate is not None and gate.full:
            raise ModelOverloaded(
                f"model '{model.name}' version '{model.version}' is overloaded: all "
                f"{gate.max_concurrency} call slots are in use ({gate.abandoned} past a deadline)"
            )

    def model_entry(self, name: str, version: str | None = None) -> ModelEntry:
        """The manager's entry for a model version; raises `ModelNotFound`."""
        return self.manager.entry(name, version)

    def model(self, name: str, version: str | None = None) -> Model:
        """The ready model serving `name`; raises `ModelNotFound` or `ModelUnavailable`."""
        return self.manager.get(name, version)

    # -- inference ---------------------------------------------------------------------------

    def infer(self, request: InferRequest) -> InferResponse:
        """Run one inference request through its model.

        Raises `ModelNotFound`, `ModelUnavailable`, `InvalidInput`, or `ModelFailed` when the
        model itself raised (its traceback goes to the log, its message to the client).
        """
        account = _Account(self.stats)
        model = self.manager.get(request.model_name, request.model_version)
        inputs = bind_inputs(model, request)
        names = output_names(model, request)
        deadline = _deadline(model, request.controls)
        with account.call(model):
            infer_started = time.perf_counter_ns()
            result = self._gate(model).call(
                functools.partial(self._predict, model, inputs, request.parameters, names or ()),
                deadline,
                f"model '{model.name}' version '{model.version}'",
            )
            infer_ns = time.perf_counter_ns() - infer_started
            # An output the model made but that cannot be sent counts as a failure too.
            outputs = self._outputs(model, result, names)
            account.success(batch_size(inputs), infer_ns)
        return InferResponse(
            model_name=model.name,
            model_version=model.version,
            id=request.id,
            outputs=outputs,
        )

    def process(
        self, name: str, version: str | None, item: Mapping[str, bytes]
    ) -> Mapping[str, bytes]:
        """Run one OMI (Chassis) item through the model's own `process(item)`.

        Counted, timed and wrapped as `infer` is, so an OMI item lands in the same statistics
        and metrics as a REST or gRPC request (one item, one inference). The result is the
        model's own bytes, returned as it made them; the OMI codec checks them. Raises
        `ModelNotFound`, `ModelUnavailable`, `NotImplementedByModel` (no `process`), or
        `ModelFailed` when the model raised.
        """
        account = _Account(self.stats)
        model = self.manager.get(name, version)
        process = getattr(model, "process", None)
        if not callable(process):
            raise NotImplementedByModel(f"model '{model.name}' has no process(item) method")
        with account.call(model):
            result: Mapping[str, bytes] = self._gate(model).call(
                functools.partial(process, item),
                _deadline(model, {}),
                f"model '{model.name}' version '{model.version}'",
            )
            account.success(1)
        metrics.observe_batch(model.name, 1)
        return result

    def _predict(
        self,
        model: Model,
        inputs: dict[str, np.ndarray],
        parameters: dict[str, Any],
        names: Collection[str],
    ) -> dict[str, np.ndarray]:
        """Call the model, through its dynamic batcher when `max_batch_size` asks for one."""
        batcher = self._batcher(model) if model.settings.max_batch_size > 0 else None
        if batcher is None:
            result = model.predict_outputs(inputs, parameters, names)
            metrics.observe_batch(model.name, batch_size(inputs))
            return result
        return batcher.predict(inputs, parameters, names)

    def _batcher(self, model: Model) -> Batcher | None:
        """The model's batcher, started on its first request; None once the model is retired."""
        batcher = self._batchers.get(model)
        if batcher is not None:
            return batcher
        with self._batchers_lock:
            batcher = self._batchers.get(model)
            if batcher is None and self._serving(model):
                batcher = self._batchers[model] = Batcher(
                    model.predict_outputs,
                    model.settings.max_batch_size,
                    model.settings.batch_delay_ms,
                    on_batch=functools.partial(metrics.observe_batch, model.name),
                    name=f"modelport-batcher:{model.name}:{model.version}",
                )
        return batcher

    def _gate(self, model: Model) -> Gate:
        """The model's call pool, made on its first call."""
        gate = self._gates.get(model)
        if gate is None:
            with self._batchers_lock:
                gate = self._gates.get(model)
                if gate is None:
                    settings = model.settings
                    gate = Gate(
                        model.name,
                        model.version,
                        # A dynamic batch needs that many requests in the model's batcher.
                        max(settings.max_concurrency, settings.max_batch_size),
                        settings.max_queue,
                    )
                    if self._serving(model):  # a retired model's calls get a pool of their own
                        self._gates[model] = gate
        return gate

    def _serving(self, model: Model) -> bool:
        """Whether the manager still hands this model out (a request may outlive a reload)."""
        try:
            return any(entry.model is model for entry in self.manager.entries(model.name))
        except ModelNotFound:  # its name left the configuration
            return False

    def _retire(self, model: Model) -> None:
        """The manager retired `model`: its batcher answers what it holds, then stops."""
        with self._batchers_lock:
            batcher = self._batchers.pop(model, None)
            gate = self._gates.pop(model, None)
        if batcher is not None:
            batcher.close()
        if gate is not None:
            gate.close()

    def _outputs(
        self, model: Model, result: Mapping[str, object], names: list[str] | None
    ) -> list[Tensor]:
        if not isinstance(result, Mapping):
            raise ModelFailed(f"model '{model.name}' returned {type(result).__name__}, not a dict")
        specs = {spec.name: spec for spec in model.outputs}
        outputs: list[Tensor] = []
        for name in names if names is not None else list(result):
            if name not in result:
                if not specs:
                    # A model that declares no outputs answers what it answers: an output the
                    # client asked for and did not get is the client's guess, not the model's
                    # failure (the gRPC fuzz asked echo for an output named "x").
                    raise InvalidInput(
                        f"model '{model.name}' has no output '{name}' "
                        f"(it answered: {sorted(result)})"
                    )
                raise ModelFailed(f"model '{model.name}' returned no output '{name}'")
            outputs.append(output_tensor(model, name, result[name], specs.get(name)))
        return outputs

    def explain(self, request: InferRequest) -> InferResponse:
        """Predictions plus feature attributions (`app.explaining.explain` has the details).

        Raises what `infer` raises, and `NotImplementedByModel` for a model that cannot explain.
        """
        model = self.manager.get(request.model_name, request.model_version)
        return explaining.explain(model, request, self.infer)

    # -- repository --------------------------------------------------------------------------

    def repository_index(self, ready_only: bool = False) -> list[ModelEntry]:
        """Every configured model version with its state (Triton's repository index).

        The repositories are read again first, so a model dropped into one since is listed
        (not loaded: `load_model` loads it).
        """
        self.manager.rescan()
        return [e for e in self.manager.entries() if e.ready or not ready_only]

    def load_model(self, name: str, parameters: Collection[str] = ()) -> None:
        """Load or reload a model, given the names of the request's load parameters.

        Triton's load overrides (`config`, `file:<version>/<name>`) are refused: Modelport mounts
        models from its config file only. Raises `InvalidInput` for those, `ModelNotFound` or
        `ModelUnavailable` (also when another worker failed to follow).
        """
        overrides = [key for key in parameters if key == "config" or key.startswith("file:")]
        if overrides:
            raise InvalidInput(
                f"load parameter '{overrides[0]}' is not supported: "
                "models come from the config file and its repositories"
            )
        self.workers.load(name)

    def unload_model(self, name: str) -> None:
        """Unload a model; raises `ModelNotFound` (or `WorkersUnresponsive`)."""
        self.workers.unload(name)

    def statistics(self, name: str | None = None, version: str | None = None) -> list[ModelStats]:
        """Statistics of every model version, one model's versions, or one version.

        Summed over the server's workers. Raises `ModelNotFound` (or `WorkersUnresponsive`).
        """
        if not name:
            entries = self.repository_index()
        elif version:
            entries = [self.manager.entry(name, version)]
        else:
            entries = self.manager.entries(name)
        return self.workers.statistics((e.name, e.version) for e in entries)


def _deadline(model: Model, controls: Mapping[str, Any]) -> float | None:
    """When this call must be answered (monotonic s): the earliest of the client's deadline
    (`app.deadlines`), Triton's `timeout` request parameter (microseconds, as Triton reads it;
    0 = none) and the model's `timeout_ms`. Raises `InvalidInput` for a `timeout` that is not a
    whole number of microseconds >= 0."""
    now = time.monotonic()
    timeout_ms = model.settings.timeout_ms
    own = now + timeout_ms / 1000 if timeout_ms else None
    triton = None
    if "timeout" in controls:
        value = controls["timeout"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(
                f"request parameter 'timeout' must be a whole number of microseconds >= 0, "
                f"got {value!r}"
            )
        triton = now + value / 1e6 if value else None
    return deadlines.earliest(deadlines.current(), triton, own)


class _Account:
    """The statistics of one call that reached a model: timed from the request's start.

    `with account.call(model):` counts a failure for anything the model (or its output) raised,
    and turns an exception that is not a `ModelportError` into `ModelFailed` (500, the model's
    message; the traceback goes to the log). Work before `call` (lookup, binding) is not
    counted. The account is its own context manager: a `contextlib.contextmanager` generator
    cost five calls and a generator per request: 1.2 % of a W1 request's instructions in the
    app (callgrind, in-process).
    """

    __slots__ = ("stats", "started", "model")

    def __init__(self, stats: StatsRegistry) -> None:
        self.stats = stats
        self.started = time.perf_counter_ns()
        self.model: Model | None = None

    def call(self, model: Model) -> _Account:
        """Account for the model call inside the `with` block."""
        self.model = model
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        model = self.model
        if exc is None or model is None or not isinstance(exc, Exception):
            return
        self._failure(model)
        if isinstance(exc, ModelportError):
            return
        log.exception("model '%s' version '%s' raised", model.name, model.version, exc_info=exc)
        raise ModelFailed(f"model '{model.name}' failed: {str(exc) or type(exc).__name__}") from exc

    def success(self, rows: int, infer_ns: int | None = None) -> None:
        """The call succeeded with `rows` inferences, `infer_ns` of its time in the model."""
        assert self.model is not None  # only inside `call`
        total = time.perf_counter_ns() - self.started
        self.stats.record_success(
            self.model.name,
            self.model.version,
            rows,
            total,
            total if infer_ns is None else infer_ns,
        )

    def _failure(self, model: Model) -> None:
        self.stats.record_failure(model.name, model.version, time.perf_counter_ns() - self.started)
