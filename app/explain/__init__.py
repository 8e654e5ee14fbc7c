"""Feature attributions for served models: which explainer fits a model, built once per model.

The choice, most specific first:

1. a model class with its own `explain(inputs, parameters)` method (`own.ModelExplainer`);
2. xgboost, lightgbm and CatBoost models: exact TreeSHAP from the libraries (`tree`);
3. scikit-learn tree models (single trees, forests, gradient boosting): exact path-dependent
   TreeSHAP of our own (`sklearn_trees`, `treeshap`);
4. scikit-learn estimators that are affine in their input: exact linear attributions against
   the mean of `explain.background` (`linear`);
5. any other model with one tabular input and `explain.background`: Shapley values against the
   background rows, exact for few features, sampled otherwise (`agnostic`).

Tree explainers need no background (the trees' covers stand in for the data) and ignore one
that is configured, as the libraries' own TreeSHAP does.

A model that fits none answers 501 with what to configure.
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import TYPE_CHECKING, cast

from app.codec.datatypes import DATATYPE_TO_DTYPE
from app.errors import NotImplementedByModel
from app.explain.agnostic import ShapleyExplainer, explained_output, tabular_input
from app.explain.background import BackgroundError, load_background
from app.explain.base import ATTRIBUTIONS, BASE_VALUES, Explainer
from app.explain.linear import linear_explainer
from app.explain.own import ModelExplainer
from app.model import Model

if TYPE_CHECKING:  # optional libraries: imported only when a model of theirs is loaded
    from app.runtimes.catboost import CatBoostModel
    from app.runtimes.lightgbm import LightGBMModel
    from app.runtimes.xgboost import XGBoostModel

__all__ = ["ATTRIBUTIONS", "BASE_VALUES", "Explainer", "explainer_for", "require_explainer"]

# Keyed weakly by the model object: a reloaded model gets a new explainer, an unloaded one
# takes its explainer with it. A value is the explainer, or why the model has none.
_CACHE: weakref.WeakKeyDictionary[Model, Explainer | str] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def explainer_for(model: Model) -> Explainer | None:
    """The explainer of a loaded model, or None when it cannot be explained."""
    found = _cached(model)
    return found if isinstance(found, Explainer) else None


def require_explainer(model: Model) -> Explainer:
    """The explainer of a loaded model.

    Raises `NotImplementedByModel` (501) with what to configure when it has none.
    """
    found = _cached(model)
    if isinstance(found, str):
        raise NotImplementedByModel(found)
    return found


def _cached(model: Model) -> Explainer | str:
    with _LOCK:
        found = _CACHE.get(model)
    if found is None:
        # Built outside the lock: a linear check calls the model. Two threads racing here build
        # two equal explainers and one wins, which is harmless.
        found = _build(model)
        with _LOCK:
            _CACHE[model] = found
    return found


def _build(model: Model) -> Explainer | str:
    """The explainer that fits, or the message a 501 answers with."""
    own = getattr(type(model), "explain", None)
    if callable(own) and own is not getattr(Model, "explain", None):  # a default never counts
        return ModelExplainer(model)
    xgboost_model = _runtime_class("app.runtimes.xgboost", "XGBoostModel")
    if xgboost_model is not None and isinstance(model, xgboost_model):
        from app.explain.tree import XGBoostExplainer

        return XGBoostExplainer(cast("XGBoostModel", model))
    lightgbm_model = _runtime_class("app.runtimes.lightgbm", "LightGBMModel")
    if lightgbm_model is not None and isinstance(model, lightgbm_model):
        from app.explain.tree import LightGBMExplainer

        return LightGBMExplainer(cast("LightGBMModel", model))
    catboost_model = _runtime_class("app.runtimes.catboost", "CatBoostModel")
    if catboost_model is not None and isinstance(model, catboost_model):
        from app.explain.tree import CatBoostExplainer

        return CatBoostExplainer(cast("CatBoostModel", model))
    sklearn_model = _runtime_class("app.runtimes.sklearn", "SKLearnModel")
    estimator = None
    if sklearn_model is not None and isinstance(model, sklearn_model):
        from app.explain.sklearn_trees import sklearn_tree_explainer

        estimator = model.estimator  # type: ignore[attr-defined]  # an SKLearnModel, checked above
        trees = sklearn_tree_explainer(estimator)
        if trees is not None:
            return trees
    method = "give its class an `explain(inputs, parameters)` method"
    spec = tabular_input(model)
    if isinstance(spec, str):
        return f"model '{model.name}' cannot be explained: {spec}; {method}"
    settings = model.settings.explain
    if settings.background is None and hasattr(estimator, "coef_"):
        return (
            f"model '{model.name}' is a linear model ({type(estimator).__name__}), explained "
            "by how far each feature is from the mean of background rows: set "
            "`explain.background` in its config entry to a .npy or CSV file of typical input "
            "rows (tree models need none), or " + method
        )
    if settings.background is None:
        return (
            f"model '{model.name}' has no explainer: set `explain.background` in its config "
            "entry to a .npy or CSV file of typical input rows, which the explanation compares "
            f"against, or {method}"
        )
    features = spec.shape[1] if spec.shape[1] > 0 else None
    try:
        background = load_background(settings.background, features)
    except BackgroundError as exc:
        return f"model '{model.name}' cannot be explained: {exc}"
    if estimator is not None:
        linear = linear_explainer(estimator, background, DATATYPE_TO_DTYPE[spec.datatype])
        if linear is not None:
            return linear
    output = explained_output(model)
    if output is None:
        return f"model '{model.name}' declares no numeric output to explain; {method}"
    return ShapleyExplainer(background, spec, output, settings.samples, settings.time_limit_ms)


def _runtime_class(module: str, name: str) -> type | None:
    """A built-in runtime class if its module is loaded (no model can be one otherwise).

    Runtimes import optional libraries, so the explainers never import a runtime themselves.
    """
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None
