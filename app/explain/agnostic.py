"""Model-agnostic Shapley values against background rows, with a bounded cost.

The value of a coalition S of features for a row x is the mean model output over the background
rows with the features in S replaced by x's (interventional Shapley values, as KernelSHAP and
shap's permutation explainer estimate them). With few features every coalition is enumerated and
the values are exact; otherwise antithetic permutation sampling estimates them. Either way the
attributions plus the base value add up to the model's output exactly, because every permutation
telescopes from "no feature" (the background mean) to "all features" (the row's own output).

Cost is counted in model rows: rows × coalitions per row × background rows. A request above
`MAX_MODEL_ROWS` is refused before the model runs, and a request still running after
`explain.time_limit_ms` stops; both answer 400 with what to change.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from app.codec.datatypes import DATATYPE_TO_DTYPE
from app.errors import InvalidInput
from app.explain.base import ATTRIBUTIONS, BASE_VALUES, Explainer, attribution_specs, feature_rows
from app.model import Model
from app.types import TensorSpec

#: Most model rows one explain request may evaluate (rows × coalitions × background rows).
MAX_MODEL_ROWS = 1 << 22
#: Model rows per `predict_outputs` call: bounds memory for wide inputs, lets the time limit act.
CHUNK_ROWS = 4096
#: Coalitions are enumerated (exact values) up to this many features, if `samples` allows 2^n.
EXACT_MAX_FEATURES = 12
#: Permutations are drawn from a fixed seed, so the same rows get the same attributions from
#: every front door and every worker.
SEED = 0
_NUMERIC = frozenset("biuf")


class ShapleyExplainer(Explainer):
    """Shapley values of one model output for the rows of its one tabular input."""

    def __init__(
        self,
        background: np.ndarray,
        input_spec: TensorSpec,
        output: TensorSpec,
        samples: int,
        time_limit_ms: float,
    ) -> None:
        self.background = background  # float64 [rows, features]
        self.input_name = input_spec.name
        self.dtype = DATATYPE_TO_DTYPE[input_spec.datatype]
        self.output = output.name
        self.explained_output = output.name
        self.targets = output.shape[1] if len(output.shape) == 2 else 1
        self.time_limit_ms = time_limit_ms
        features = background.shape[1]
        self.exact = features <= EXACT_MAX_FEATURES and 2**features <= max(samples, 2)
        self.method = "shapley_exact" if self.exact else "shapley_permutation"
        if self.exact:
            self.coalitions = 2**features - 2  # the empty and full coalitions are computed once
            self._weights = _exact_weights(features)
        else:
            self.pairs = max(1, (samples - 2) // (2 * (features - 1)))
            self.coalitions = 2 * self.pairs * (features - 1)

    def outputs(self) -> list[TensorSpec]:
        """`attributions` and `base_values` for every column of the explained output."""
        return attribution_specs(self.targets, self.background.shape[1])

    def explain(
        self, model: Model, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> Mapping[str, np.ndarray]:
        """Attributions `[batch, targets, features]` and the background mean as base values.

        Raises `InvalidInput` when the request would cost more than `MAX_MODEL_ROWS` model rows
        or runs past the time limit.
        """
        rows = feature_rows(inputs)
        features = self.background.shape[1]
        if rows.shape[1] != features:
            raise InvalidInput(
                f"explain: rows have {rows.shape[1]} features; the background has {features}"
            )
        self._check_budget(model.name, len(rows))
        evaluate = _Evaluator(model, self, parameters)
        base = evaluate(self.background).mean(axis=0)  # [targets]
        full = evaluate(rows)  # [batch, targets]
        if self.exact:
            attributions = self._exact(evaluate, rows, base, full)
        else:
            attributions = self._permutation(evaluate, rows, base, full)
        return {
            ATTRIBUTIONS: attributions,
            BASE_VALUES: np.ascontiguousarray(np.broadcast_to(base, full.shape)),
        }

    def _check_budget(self, name: str, batch: int) -> None:
        background = len(self.background)
        cost = batch * self.coalitions * background
        if cost <= MAX_MODEL_ROWS:
            return
        most = max(MAX_MODEL_ROWS // (self.coalitions * background), 0)
        raise InvalidInput(
            f"explaining {batch} rows of model '{name}' needs {batch} rows x {self.coalitions} "
            f"coalitions x {background} background rows = {cost} model rows, more than the "
            f"budget of {MAX_MODEL_ROWS}; send at most {most} rows, or lower explain.samples "
            "or the number of explain.background rows"
        )

    def _exact(
        self, evaluate: _Evaluator, rows: np.ndarray, base: np.ndarray, full: np.ndarray
    ) -> np.ndarray:
        """Every coalition's value, combined with the Shapley weights in one product."""
        features = rows.shape[1]
        shifts = np.arange(features)

        def masks(row: np.ndarray, coalition: np.ndarray) -> np.ndarray:
            masks: np.ndarray = ((coalition[:, np.newaxis] + 1) >> shifts) & 1 == 1
            return masks

        middle = self._coalition_values(evaluate, rows, masks, len(base))  # codes 1 .. 2^n - 2
        values = np.concatenate(
            [np.broadcast_to(base, (len(rows), 1, len(base))), middle, full[:, np.newaxis, :]],
            axis=1,
        )
        weighted: np.ndarray = np.einsum("nkt,km->ntm", values, self._weights)
        return weighted

    def _permutation(
        self, evaluate: _Evaluator, rows: np.ndarray, base: np.ndarray, full: np.ndarray
    ) -> np.ndarray:
        """Mean marginal contribution of each feature over antithetic permutations."""
        batch, features = rows.shape
        order = np.broadcast_to(np.arange(features), (batch, self.pairs, features))
        drawn = np.random.default_rng(SEED).permuted(order, axis=2)
        orders = np.concatenate([drawn, drawn[:, :, ::-1]], axis=1)  # [batch, P, features]
        ranks = np.argsort(orders, axis=2)  # where each feature comes in each permutation
        steps = features - 1

        def masks(row: np.ndarray, coalition: np.ndarray) -> np.ndarray:
            permutation, prefix = np.divmod(coalition, steps)
            before: np.ndarray = ranks[row, permutation] <= prefix[:, np.newaxis]
            return before

        middle = self._coalition_values(evaluate, rows, masks, len(base))
        middle = middle.reshape(batch, orders.shape[1], steps, -1)
        ends = (batch, orders.shape[1], 1, middle.shape[-1])
        chain = np.concatenate(
            [
                np.broadcast_to(base, ends),
                middle,
                np.broadcast_to(full[:, np.newaxis, np.newaxis, :], ends),
            ],
            axis=2,
        )
        marginal = np.diff(chain, axis=2)  # [batch, P, position, targets]
        by_feature = np.take_along_axis(marginal, ranks[..., np.newaxis], axis=2)
        return np.ascontiguousarray(by_feature.mean(axis=1).transpose(0, 2, 1))

    def _coalition_values(
        self,
        evaluate: _Evaluator,
        rows: np.ndarray,
        masks: Callable[[np.ndarray, np.ndarray], np.ndarray],
        targets: int,
    ) -> np.ndarray:
        """Values `[batch, coalitions, targets]`, evaluated `CHUNK_ROWS` model rows at a time.

        (row, coalition) pairs are flattened, so many cheap rows share one model call and a
        wide input never builds more than one chunk of mixed rows at once.
        """
        background = self.background
        step = max(1, CHUNK_ROWS // len(background))
        total = len(rows) * self.coalitions
        if total == 0:  # one feature: the empty and full coalitions are all there is
            return np.empty((len(rows), 0, targets))
        parts = []
        for start in range(0, total, step):
            row, coalition = np.divmod(np.arange(start, min(start + step, total)), self.coalitions)
            keep = masks(row, coalition)  # [pairs, features]: True = the row's own value
            mixed = np.where(keep[:, np.newaxis, :], rows[row][:, np.newaxis, :], background)
            values = evaluate(mixed.reshape(-1, background.shape[1]))
            parts.append(values.reshape(len(row), len(background), -1).mean(axis=1))
        return np.concatenate(parts).reshape(len(rows), self.coalitions, -1)


class _Evaluator:
    """Calls the model on float64 rows, cast to its input type, within the time limit."""

    def __init__(self, model: Model, explainer: ShapleyExplainer, parameters: dict[str, Any]):
        self.model = model
        self.explainer = explainer
        self.parameters = parameters
        self.deadline = time.monotonic() + explainer.time_limit_ms / 1000

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        explainer = self.explainer
        if time.monotonic() > self.deadline:
            raise InvalidInput(
                f"explaining model '{self.model.name}' took longer than explain.time_limit_ms "
                f"({explainer.time_limit_ms:g} ms); send fewer rows, or lower explain.samples "
                "or the number of explain.background rows"
            )
        result = self.model.predict_outputs(
            {explainer.input_name: rows.astype(explainer.dtype)},
            self.parameters,
            (explainer.output,),
        )
        return np.asarray(result[explainer.output], dtype=np.float64).reshape(len(rows), -1)


def _exact_weights(features: int) -> np.ndarray:
    """`[2^n, n]` weights turning coalition values into Shapley values in one product.

    phi_j = sum over S containing j of w(|S| - 1) v(S)  -  sum over S without j of w(|S|) v(S),
    with w(s) = s! (n - s - 1)! / n!; coalition k holds feature j when bit j of k is set.
    """
    codes = np.arange(2**features)
    members = (codes[:, np.newaxis] >> np.arange(features)) & 1 == 1
    sizes = members.sum(axis=1)
    weight = np.array(
        [1.0 / (features * math.comb(features - 1, s)) for s in range(features)] + [0.0]
    )
    return np.where(members, weight[np.maximum(sizes - 1, 0)][:, np.newaxis], 0.0) - np.where(
        members, 0.0, weight[np.minimum(sizes, features)][:, np.newaxis]
    )


def explained_output(model: Model) -> TensorSpec | None:
    """The output a model-agnostic explanation explains: `probabilities` if the model has them
    (a distance in probability is comparable across features), else its first numeric output.
    """
    numeric = [
        spec
        for spec in model.outputs
        if spec.datatype in DATATYPE_TO_DTYPE
        and DATATYPE_TO_DTYPE[spec.datatype].kind in _NUMERIC
        and 1 <= len(spec.shape) <= 2
    ]
    for spec in numeric:
        if spec.name == "probabilities":
            return spec
    return numeric[0] if numeric else None


def tabular_input(model: Model) -> TensorSpec | str:
    """The model's one `[batch, features]` numeric input, or why it has none."""
    if len(model.inputs) != 1:
        count = "declares no inputs" if not model.inputs else f"has {len(model.inputs)} inputs"
        return f"it {count}, and a model-agnostic explanation needs one [-1, features] input"
    spec = model.inputs[0]
    dtype = DATATYPE_TO_DTYPE.get(spec.datatype)
    if len(spec.shape) != 2 or dtype is None or dtype.kind not in _NUMERIC:
        return (
            f"its input '{spec.name}' is {spec.datatype} {list(spec.shape)}, and a "
            "model-agnostic explanation needs numeric rows of features [-1, features]"
        )
    return spec
