"""The sklearn runtime's numpy `predict` for linear classifiers, and `predict_proba` for
LogisticRegression, answer what sklearn answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

from app.runtimes.linear import linear_predict, logistic_predict_proba


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


@pytest.mark.parametrize("classes", [2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_probabilities_as_sklearn_to_the_bit(classes: int, dtype) -> None:
    estimator = _fitted(LogisticRegression(), classes)
    fast = logistic_predict_proba(estimator)
    assert fast is not None
    rows = np.random.default_rng(2).normal(scale=30, size=(500, 5)).astype(dtype)
    want = estimator.predict_proba(rows)
    got = fast(rows)
    assert got.dtype == want.dtype and got.shape == want.shape == (500, classes)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(fast(rows[:1]), estimator.predict_proba(rows[:1]))


def test_probabilities_sklearn_would_refuse_go_to_sklearn() -> None:
    estimator = _fitted(LogisticRegression())
    fast = logistic_predict_proba(estimator)
    assert fast is not None
    for rows in (np.full((1, 5), np.inf), np.ones((1, 6)), np.ones((0, 5))):
        with pytest.raises(ValueError) as ours:
            fast(rows)
        with pytest.raises(ValueError) as theirs:
            estimator.predict_proba(rows)
        assert str(ours.value) == str(theirs.value)
    ints = np.arange(10).reshape(2, 5)
    np.testing.assert_array_equal(fast(ints), estimator.predict_proba(ints))


def test_other_estimators_keep_sklearns_predict_proba() -> None:
    class Calibrated(LogisticRegression):
        def predict_proba(self, X):  # noqa: N803 - sklearn's name
            return super().predict_proba(X) ** 2

    assert logistic_predict_proba(_fitted(Calibrated())) is None
    assert logistic_predict_proba(_fitted(SGDClassifier(loss="log_loss"))) is None
    assert logistic_predict_proba(_fitted(DecisionTreeClassifier())) is None
    assert logistic_predict_proba(_fitted(LogisticRegression(), labels=["a", "b", "c"])) is None
    assert logistic_predict_proba(LogisticRegression()) is None  # not fitted
