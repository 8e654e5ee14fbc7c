"""scikit-learn's linear classifiers' `predict` (and LogisticRegression's `predict_proba`),
without its per-call validation.

For a one-row request, `LogisticRegression.predict` spends about 300 µs on a 2-core bench machine
in input validation, array-API dispatch and dataframe detection, and 5 µs on arithmetic: it was
the largest single cost of an iris request (bench/, py-spy). The arithmetic is the estimator's
own (`LinearClassifierMixin`: `X @ coef_.T + intercept_`, then the sign or the argmax picks a
class), so it is done here in numpy with the same dtypes, and gives the same labels.
Anything sklearn would have to check or convert (not 2-D floats, no rows, the wrong width,
NaN or infinity) goes to the estimator's own `predict`, so its errors stay word for word.

Measured: with sklearn's own `predict`, W1 (iris [1,4] REST JSON, c=8) served 32 % fewer
requests (885 vs 1,309 req/s) and W2 (gRPC raw) 41 % fewer, 12 interleaved rounds of 2 s
(bench/). `predict_proba` is what tritonclient and perf_analyzer ask for when they name every
output: through sklearn it made an iris [1,4] binary request cost 1.55M instructions against
0.63M for `predictions` alone (bench/instructions.py W1-bin); here it is the same softmax (or
logistic function, for two classes) on the same scores. The qualified names it checks are
scikit-learn 1.9.1's (`WRITTEN_FOR`); the pin test fails on any other version, and
tests/app/test_linear_fast_path.py compares the labels and the probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit

Predict = Callable[[np.ndarray], np.ndarray]

_MIXIN = "LinearClassifierMixin"
#: The library version this was written for (tests/app/test_library_pins.py).
WRITTEN_FOR = ("scikit-learn", "1.9.1")


def linear_predict(estimator: Any) -> Predict | None:
    """A fast `predict` for a fitted plain linear classifier, or None for any other estimator.

    Only an estimator whose `predict` and `decision_function` are `LinearClassifierMixin`'s
    own, with dense coefficients, qualifies: a subclass that changes either keeps sklearn's.
    """
    scores = _linear_scores(estimator, estimator.predict if _own(estimator, "predict") else None)
    if scores is None:
        return None
    classes: np.ndarray = estimator.classes_

    def predict(rows: np.ndarray) -> np.ndarray:
        decision = scores(rows)
        if decision is None:
            return np.asarray(estimator.predict(rows))
        if decision.shape[1] == 1:
            indices = (decision[:, 0] > 0).astype(np.intp)
        else:
            indices = decision.argmax(axis=1)
        labels: np.ndarray = classes.take(indices, axis=0)
        return labels

    return predict


def logistic_predict_proba(estimator: Any) -> Predict | None:
    """A fast `predict_proba` for a fitted LogisticRegression, or None for any other estimator.

    sklearn's own is a softmax of `decision_function` for three classes or more, and the
    logistic function of the one score, as `[1 - p, p]`, for two; these do the same numpy
    operations in the same order, so the probabilities are the same to the bit.
    """
    cls = type(estimator)
    if getattr(cls.predict_proba, "__qualname__", "") != "LogisticRegression.predict_proba":
        return None
    scores = _linear_scores(estimator, estimator.predict_proba)
    if scores is None:
        return None

    def predict_proba(rows: np.ndarray) -> np.ndarray:
        decision = scores(rows)
        if decision is None:
            return np.asarray(estimator.predict_proba(rows))
        if decision.shape[1] == 1:
            positive = expit(decision[:, 0])
            return np.stack([1 - positive, positive], axis=1)
        decision -= decision.max(axis=1).reshape(-1, 1)
        np.exp(decision, out=decision)
        decision /= decision.sum(axis=1).reshape(-1, 1)
        return decision

    return predict_proba


def _own(estimator: Any, method: str) -> bool:
    """Whether `method` of the estimator's class is `LinearClassifierMixin`'s own."""
    qualname = getattr(getattr(type(estimator), method, None), "__qualname__", "")
    return bool(qualname == f"{_MIXIN}.{method}")


def _linear_scores(
    estimator: Any, method: Callable[..., Any] | None
) -> Callable[[np.ndarray], np.ndarray | None] | None:
    """`decision_function` as `X @ coef_.T + intercept_`, always 2-D, for rows sklearn would
    take as they are; None (the caller asks sklearn) for anything it would check or convert.

    None instead of a function when the estimator does not qualify (see `linear_predict`).
    """
    if method is None or not _own(estimator, "decision_function"):
        return None
    coef = getattr(estimator, "coef_", None)
    intercept = getattr(estimator, "intercept_", None)
    classes = getattr(estimator, "classes_", None)
    if not all(isinstance(a, np.ndarray) for a in (coef, intercept, classes)):
        return None  # unfitted, sparse (scipy matrices are not ndarrays) or array-API arrays
    assert coef is not None and intercept is not None and classes is not None
    if coef.ndim != 2 or classes.dtype.kind not in "biuf":
        return None  # string labels go through sklearn, which returns them its own way
    coef_t = coef.T
    width = coef.shape[1]

    def scores(rows: np.ndarray) -> np.ndarray | None:
        if (
            rows.ndim != 2
            or rows.dtype.kind != "f"
            or rows.shape[0] == 0
            or rows.shape[1] != width
            or not np.isfinite(rows).all()
        ):
            return None
        decision: np.ndarray = rows @ coef_t + intercept
        return decision

    return scores
