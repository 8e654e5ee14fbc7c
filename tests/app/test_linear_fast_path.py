"""The sklearn runtime's numpy `predict` for linear classifiers answers what sklearn answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

from app.runtimes.linear import linear_predict


def _fitted(estimator, classes: int = 3, labels=None):
    x, y = make_classification(200, 5, n_informative=3, n_classes=classes, random_state=0)
    if labels is not None:
        y = np.asarray(labels)[y]
    return estimator.fit(x, y)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("make", [LogisticRegression, SGDClassifier])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_labels_as_sklearn(make, classes: int, dtype) -> None:
    estimator = _fitted(make(), classes, labels=[3, 7, 11][:classes])
    fast = linear_predict(estimator)
    assert fast is not None
    rows = np.random.default_rng(1).normal(scale=3, size=(500, 5)).astype(dtype)
    want = estimator.predict(rows)
    got = fast(rows)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_what_sklearn_would_refuse_goes_to_sklearn() -> None:
    estimator = _fitted(LogisticRegression())
    fast = linear_predict(estimator)
    assert fast is not None
    for rows in (np.full((1, 5), np.nan), np.ones((1, 4)), np.ones((0, 5))):
        with pytest.raises(ValueError) as ours:
            fast(rows)
        with pytest.raises(ValueError) as theirs:
            estimator.predict(rows)
        assert str(ours.value) == str(theirs.value)
    np.testing.assert_array_equal(
        fast(np.ones((2, 5), int)), estimator.predict(np.ones((2, 5), int))
    )


def test_other_estimators_keep_sklearns_predict() -> None:
    assert linear_predict(_fitted(DecisionTreeClassifier())) is None
    assert linear_predict(_fitted(RidgeClassifier())) is None  # its own predict
    assert linear_predict(_fitted(LogisticRegression(), labels=["a", "b", "c"])) is None
    assert linear_predict(LogisticRegression()) is None  # not fitted
