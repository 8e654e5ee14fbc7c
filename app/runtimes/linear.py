"""scikit-learn's linear classifiers' `predict`, without its per-call validation.

For a one-row request, `LogisticRegression.predict` spends about 300 µs on a 2-core bench machine
in input validation, array-API dispatch and dataframe detection, and 5 µs on arithmetic: it was
the largest single cost of an iris request (bench/, py-spy). The arithmetic is the estimator's
own (`LinearClassifierMixin`: `X @ coef_.T + intercept_`, then the sign or the argmax picks a
class), so it is done here in numpy with the same dtypes, and gives the same labels.
Anything sklearn would have to check or convert (not 2-D floats, no rows, the wrong width,
NaN or infinity) goes to the estimator's own `predict`, so its errors stay word for word.

Measured: with sklearn's own `predict`, W1 (iris [1,4] REST JSON, c=8) served 32 % fewer
requests (885 vs 1,309 req/s) and W2 (gRPC raw) 41 % fewer, 12 interleaved rounds of 2 s
(bench/). The qualified names it checks are scikit-learn 1.9.1's (`WRITTEN_FOR`); the pin test
fails on any other version, and tests/app/test_linear_fast_path.py compares the labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]

_MIXIN = "LinearClassifierMixin"
#: The library version this was written for (tests/app/test_library_pins.py).
WRITTEN_FOR = ("scikit-learn", "1.9.1")


def linear_predict(estimator: Any) -> Predict | None:
    """A fast `predict` for a fitted plain linear classifier, or None for any other estimator.

    Only an estimator whose `predict` and `decision_function` are `LinearClassifierMixin`'s
    own, with dense coefficients, qualifies: a subclass that changes either keeps sklearn's.
    """
    cls = type(estimator)
    if getattr(cls.predict, "__qualname__", "") != f"{_MIXIN}.predict":
        return None
    if getattr(cls.decision_function, "__qualname__", "") != f"{_MIXIN}.decision_function":
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
    fallback = estimator.predict

    def predict(rows: np.ndarray) -> np.ndarray:
        if (
            rows.ndim != 2
            or rows.dtype.kind != "f"
            or rows.shape[0] == 0
            or rows.shape[1] != width
            or not np.isfinite(rows).all()
        ):
            return np.asarray(fallback(rows))
        scores = rows @ coef_t + intercept
        if scores.shape[1] == 1:
            indices = (scores[:, 0] > 0).astype(np.intp)
        else:
            indices = scores.argmax(axis=1)
        labels: np.ndarray = classes.take(indices, axis=0)
        return labels

    return predict
