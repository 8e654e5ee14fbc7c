"""Path-dependent TreeSHAP (Lundberg, Erion and Lee 2018, "Consistent Individualized Feature
Attribution for Tree Ensembles", Algorithm 2), vectorised over the rows of a request.

The game explained for a row x is the tree's path-dependent conditional expectation: with the
features of a coalition S fixed to x's values, a split on a feature in S follows x, and a split
on any other feature takes both children, weighted by the share of the training samples (the
cover) that went each way. Algorithm 2 computes the exact Shapley values of that game in one
walk of the tree, carrying along the current root-to-node path the feature of each split, its
"zero fraction" (the cover share when the feature is not in S) and its "one fraction" (1 if x
goes this way, else 0), and the path weights: proportions of the subsets of the path's features,
grouped by size, that reach the node.

Only the one fractions and the weights depend on x; the walk, the features and the zero
fractions are the same for every row. So the walk is a Python recursion over the tree's nodes,
and each path holds its one fractions and weights as `[path length, rows]` arrays: every row of
the request is explained by the same numpy operations, never by a loop over rows or elements.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tree:
    """One fitted decision tree in plain arrays (index = node; children -1 at leaves).

    `value` holds each node's contribution to the ensemble's raw output, one column per target,
    already scaled (a forest's 1 / n_trees, a boosting learning rate). `cover` is the training
    weight that reached each node; it must be positive wherever a split sends samples.
    """

    left: np.ndarray  # int64 [nodes]
    right: np.ndarray  # int64 [nodes]
    feature: np.ndarray  # int64 [nodes]; unused at leaves
    threshold: np.ndarray  # float64 [nodes]: x <= threshold goes left
    missing_left: np.ndarray  # bool [nodes]: where NaN goes
    cover: np.ndarray  # float64 [nodes]
    value: np.ndarray  # float64 [nodes, targets]

    def expected_value(self) -> np.ndarray:
        """The tree's output over its training samples: each leaf weighted by its cover share."""
        leaves = self.left < 0
        shares = self.cover[leaves] / self.cover[0]
        return np.asarray(shares @ self.value[leaves], dtype=np.float64)


@dataclass
class _Path:
    """The unique-feature path from the root to a node (element 0 is the root's placeholder).

    One fractions are exactly 0 or 1: a row either goes the path's way at a split or not.
    """

    features: list[int]  # split feature of each element (-1 for the placeholder)
    zeros: list[float]  # cover share of each element when its feature is not in the coalition
    ones: np.ndarray  # float64 [length, rows]: 1 where the row goes this way, else 0
    weights: np.ndarray  # float64 [length, rows]


def tree_shap(tree: Tree, rows: np.ndarray) -> np.ndarray:
    """Attributions `[rows, features, targets]` of one tree for float64 `rows [n, features]`.

    For every row and target, `tree.expected_value() + attributions.sum(axis=1)` is the tree's
    value for the row.
    """
    phi = np.zeros((rows.shape[0], rows.shape[1], tree.value.shape[1]))
    walk = _Walk(tree, rows, phi)
    ones = np.ones((1, rows.shape[0]))
    walk.recurse(0, _Path([-1], [1.0], ones, ones.copy()))
    return phi


class _Walk:
    """One tree walked for a batch of rows, adding into `phi`."""

    def __init__(self, tree: Tree, rows: np.ndarray, phi: np.ndarray) -> None:
        # Python lists: indexing them in the recursion is several times faster than numpy's.
        self.left = tree.left.tolist()
        self.right = tree.right.tolist()
        self.feature = tree.feature.tolist()
        self.cover = tree.cover.tolist()
        self.tree = tree
        self.rows = rows
        self.missing = np.isnan(rows)
        self.phi = phi

    def recurse(self, node: int, path: _Path) -> None:
        """Algorithm 2's RECURSE, after its EXTEND (the caller extends)."""
        left = self.left[node]
        if left < 0:
            self._leaf(node, path)
            return
        feature = self.feature[node]
        right = self.right[node]
        column = self.rows[:, feature]
        goes_left = column <= self.tree.threshold[node]
        if self.tree.missing_left[node]:
            goes_left |= self.missing[:, feature]
        incoming_zero = 1.0
        incoming_one: np.ndarray | float = 1.0
        if feature in path.features:  # a feature splits twice on a path: undo its first visit
            index = path.features.index(feature)
            incoming_zero = path.zeros[index]
            incoming_one = path.ones[index]
            path = _unwind(path, index)
        cover = self.cover[node]
        for child, goes in ((left, goes_left), (right, ~goes_left)):
            zero = incoming_zero * self.cover[child] / cover
            self.recurse(child, _extend(path, zero, incoming_one * goes, feature))

    def _leaf(self, node: int, path: _Path) -> None:
        """Each path feature gains its unwound weight times (one - zero) times the leaf value."""
        if len(path.features) == 1:
            return  # a tree that is one leaf: nothing to attribute
        weights = _unwound_sums(path)  # [length - 1, rows]
        scale = weights * (path.ones[1:] - np.array(path.zeros[1:])[:, np.newaxis])
        features = path.features[1:]  # unique along a path, so the fancy-index add is safe
        self.phi[:, features, :] += scale.T[:, :, np.newaxis] * self.tree.value[node]


def _extend(path: _Path, zero: float, one: np.ndarray, feature: int) -> _Path:
    """Algorithm 2's EXTEND: the path with one more split, its weights updated in one step.

    With l elements before the call, weight k becomes
    `zero * w[k] * (l - k) / (l + 1) + one * w[k - 1] * k / (l + 1)`: the subsets that do not
    hold the new feature keep their size, those that do grow by one.
    """
    length = len(path.features)
    keep, grow = _extend_factors(length)
    weights = np.empty((length + 1, path.weights.shape[1]))
    weights[:length] = path.weights * (keep * zero)
    weights[length] = 0.0
    weights[1:] += path.weights * grow * one
    ones = np.empty_like(weights)
    ones[:length] = path.ones
    ones[length] = one
    return _Path([*path.features, feature], [*path.zeros, zero], ones, weights)


@functools.cache
def _extend_factors(length: int) -> tuple[np.ndarray, np.ndarray]:
    """`(l - k) / (l + 1)` and `(k + 1) / (l + 1)` for k < l, as columns, for EXTEND."""
    ranks = np.arange(length, dtype=np.float64)[:, np.newaxis]
    return (length - ranks) / (length + 1), (ranks + 1) / (length + 1)


def _unwind(path: _Path, index: int) -> _Path:
    """Algorithm 2's UNWIND: the path without element `index`, its weights restored.

    The one fraction of the removed element differs between rows (0 or 1), so both of the
    algorithm's branches are computed for every row and `np.where` picks one.
    """
    length = len(path.features)
    is_one = path.ones[index] != 0
    zero = path.zeros[index]
    weights = path.weights
    restored = np.empty((length - 1, weights.shape[1]))
    carry = weights[length - 1].copy()
    for j in range(length - 2, -1, -1):
        from_one = carry * (length / (j + 1))
        from_zero = weights[j] * (length / ((zero or 1.0) * (length - 1 - j)))
        restored[j] = np.where(is_one, from_one, from_zero)
        carry = weights[j] - restored[j] * (zero * (length - 1 - j) / length)
    keep = [k for k in range(length) if k != index]
    return _Path(
        [path.features[k] for k in keep], [path.zeros[k] for k in keep], path.ones[keep], restored
    )


def _unwound_sums(path: _Path) -> np.ndarray:
    """For every element i > 0 at once, the total weight of the path unwound at i.

    Algorithm 2 sums `UNWIND(m, i).w` per element; this runs that recursion for all elements
    together, as `[length - 1, rows]` arrays, without building the unwound paths. Where the
    element's one fraction is 0 the recursion has a closed form: a sum of the weights.
    """
    length = len(path.features)
    weights = path.weights
    zeros = np.array(path.zeros[1:])[:, np.newaxis]
    spans = np.arange(length - 1, 0, -1, dtype=np.float64)[:, np.newaxis]  # l - 1 - j
    from_zero = (length * (weights[:-1] / spans).sum(axis=0)) / np.where(zeros != 0, zeros, 1.0)
    carry = np.repeat(weights[-1:], length - 1, axis=0)
    from_one = np.zeros_like(carry)
    for j in range(length - 2, -1, -1):
        step = carry * (length / (j + 1))
        from_one += step
        carry = weights[j] - step * (zeros * ((length - 1 - j) / length))
    return np.where(path.ones[1:] != 0, from_one, from_zero)
