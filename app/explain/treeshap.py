"""Path-dependent TreeSHAP (Lundberg, Erion and Lee 2018, "Consistent Individualized Feature
Attribution for Tree Ensembles", Algorithm 2), vectorised over rows, leaves and trees.

The game explained for a row x is the tree's path-dependent conditional expectation: with the
features of a coalition S fixed to x's values, a split on a feature in S follows x, and a split
on any other feature takes both children, weighted by the share of the training samples (the
cover) that went each way. Algorithm 2 walks the tree carrying the root-to-node path: one
element per feature split on, with its "zero fraction" (the cover share when the feature is not
in S) and "one fraction" (1 if x goes this way, else 0), and the path weights (proportions of
the subsets of the path's features, by size, that reach the node; EXTEND adds an element,
UNWIND removes one). At each leaf every path feature gains its unwound weight times
(one - zero) times the leaf value.

What reaches a leaf depends only on that leaf's path: when a feature is split on again,
Algorithm 2 unwinds its element and extends it again with the product of both zero fractions
and both one fractions, and the weights do not depend on the order of the elements. So each
leaf's path state is built here directly, once per model, from its own splits (`leaf_paths`, a
Python walk over the nodes): per unique feature the product of its cover shares, and the
interval (and the NaN direction) that sends a row down the path. At request time every leaf of
every tree runs EXTEND and the unwound sums together, as `[leaves, elements, rows]` arrays, so
the number of numpy operations grows with the depth of the trees, not with their number, the
number of leaves or the rows. Leaves with fewer features are padded with elements whose zero
and one fractions are both 1: such a feature never changes the path's value, so it is a null
player and changes nobody's Shapley value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Most float64 elements one batch of `[leaves, elements, rows]` may hold (32 MiB); a larger
#: request is explained a slice of rows at a time.
MAX_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Tree:
    """One fitted decision tree in plain arrays (index = node; children -1 at leaves).

    `value` holds each node's contribution to the ensemble's raw output, one column per target,
    already scaled (a forest's 1 / n_trees, a boosting learning rate). `cover` is the training
    weight that reached each node.
    """

    left: np.ndarray  # int64 [nodes]
    right: np.ndarray  # int64 [nodes]
    feature: np.ndarray  # int64 [nodes]; unused at leaves
    threshold: np.ndarray  # float64 [nodes]: x <= threshold goes left
    missing_left: np.ndarray  # bool [nodes]: where NaN goes
    cover: np.ndarray  # float64 [nodes]
    value: np.ndarray  # float64 [nodes, targets]


@dataclass(frozen=True)
class LeafPaths:
    """The path of every leaf of an ensemble: one element per unique feature, padded to depth.

    A row goes down element (p, e) when `lower < x <= upper` (a missing bound is infinite and
    always holds), or, for NaN, when `nan_follows`.
    """

    features: np.ndarray  # int64 [leaves, depth] (0 for padding)
    zeros: np.ndarray  # float64 [leaves, depth]: product of the feature's cover shares
    lower: np.ndarray  # float64 [leaves, depth]; -inf where no split bounds it below
    upper: np.ndarray  # float64 [leaves, depth]; +inf where no split bounds it above
    nan_follows: np.ndarray  # bool [leaves, depth]
    padding: np.ndarray  # bool [leaves, depth]: not a feature, one and zero fractions 1
    values: np.ndarray  # float64 [leaves, targets]

    def expected_value(self) -> np.ndarray:
        """The ensemble's output over its training samples: each leaf by its cover share."""
        return np.asarray(self.zeros.prod(axis=1) @ self.values, dtype=np.float64)


def leaf_paths(trees: Sequence[Tree]) -> LeafPaths:
    """Every leaf's merged path, for all `trees` together (a walk over their nodes)."""
    leaves: list[tuple[list[tuple[int, float, float, float, bool]], np.ndarray]] = []
    for tree in trees:
        _walk(tree, 0, {}, leaves)
    depth = max((len(elements) for elements, _ in leaves), default=0)
    count = len(leaves)
    features = np.zeros((count, depth), np.int64)
    zeros = np.ones((count, depth))
    lower = np.full((count, depth), -np.inf)
    upper = np.full((count, depth), np.inf)
    nan_follows = np.ones((count, depth), bool)
    padding = np.ones((count, depth), bool)
    for index, (elements, _) in enumerate(leaves):
        for position, (feature, zero, low, high, nan) in enumerate(elements):
            features[index, position] = feature
            zeros[index, position] = zero
            lower[index, position] = low
            upper[index, position] = high
            nan_follows[index, position] = nan
            padding[index, position] = False
    values = np.array([value for _, value in leaves], dtype=np.float64)
    return LeafPaths(features, zeros, lower, upper, nan_follows, padding, values)


def _walk(
    tree: Tree,
    node: int,
    path: dict[int, tuple[float, float, float, bool]],
    leaves: list[tuple[list[tuple[int, float, float, float, bool]], np.ndarray]],
) -> None:
    """Collect `(feature, zero, lower, upper, nan_follows)` per unique feature for each leaf."""
    left = int(tree.left[node])
    if left < 0:
        leaves.append(([(f, *state) for f, state in path.items()], tree.value[node]))
        return
    right = int(tree.right[node])
    feature = int(tree.feature[node])
    threshold = float(tree.threshold[node])
    missing_left = bool(tree.missing_left[node])
    zero, low, high, nan = path.get(feature, (1.0, -np.inf, np.inf, True))
    cover = float(tree.cover[node])
    for child, goes_left in ((left, True), (right, False)):
        share = float(tree.cover[child]) / cover if cover > 0 else 0.0
        bounds = (low, min(high, threshold)) if goes_left else (max(low, threshold), high)
        state = (zero * share, *bounds, nan and missing_left == goes_left)
        _walk(tree, child, {**path, feature: state}, leaves)


def shap_values(paths: LeafPaths, rows: np.ndarray) -> np.ndarray:
    """Attributions `[rows, features, targets]` for float64 `rows [n, features]`.

    For every row and target, `paths.expected_value() + attributions.sum(axis=1)` is the
    ensemble's output for the row. Leaves and rows are taken in slices of at most
    `MAX_ELEMENTS` array elements, so a large forest or request stays in bounded memory.
    """
    phi = np.zeros((rows.shape[0], rows.shape[1], paths.values.shape[1]))
    count, depth = paths.features.shape
    if depth == 0:
        return phi  # every tree is one leaf: nothing to attribute
    per_leaf_row = (depth + 1) * paths.values.shape[1]
    leaf_step = max(1, min(count, MAX_ELEMENTS // per_leaf_row))
    row_step = max(1, MAX_ELEMENTS // (leaf_step * per_leaf_row))
    for first in range(0, count, leaf_step):
        part = slice(first, first + leaf_step)
        features = paths.features[part].ravel()
        order = np.argsort(features, kind="stable")
        present, starts = np.unique(features[order], return_index=True)
        values = np.repeat(paths.values[part], depth, axis=0)[order][..., np.newaxis]
        for begin in range(0, len(rows), row_step):
            chunk = rows[begin : begin + row_step]
            contributions = _contributions(paths, part, chunk)  # [leaves, depth, rows]
            flat = contributions.reshape(-1, len(chunk))[order]
            sums = np.add.reduceat(flat[:, np.newaxis, :] * values, starts, axis=0)
            phi[begin : begin + row_step, present, :] += sums.transpose(2, 0, 1)
    return phi


def _contributions(paths: LeafPaths, part: slice, rows: np.ndarray) -> np.ndarray:
    """`unwound weight * (one - zero)` of every element of the leaves in `part`, per row."""
    zeros = paths.zeros[part]
    lower = paths.lower[part, :, np.newaxis]
    x = rows.T[paths.features[part]]  # [leaves, depth, rows]
    inside = ((x > lower) | np.isneginf(lower)) & (x <= paths.upper[part, :, np.newaxis])
    ones = np.where(np.isnan(x), paths.nan_follows[part, :, np.newaxis], inside)
    ones = (ones | paths.padding[part, :, np.newaxis]).astype(np.float64)
    weights = _extended_weights(zeros, ones)
    shares: np.ndarray = _unwound_sums(weights, zeros, ones) * (ones - zeros[..., np.newaxis])
    return shares


def _extended_weights(zeros: np.ndarray, ones: np.ndarray) -> np.ndarray:
    """Algorithm 2's EXTEND of the placeholder by every element in turn: `[leaves, depth+1, rows]`.

    With l elements before a step, weight k becomes
    `zero * w[k] * (l - k) / (l + 1) + one * w[k - 1] * k / (l + 1)`: the subsets that do not
    hold the new feature keep their size, those that do grow by one.
    """
    count, depth, width = ones.shape
    weights = np.zeros((count, depth + 1, width))
    weights[:, 0] = 1.0  # the root's placeholder
    for position in range(depth):
        length = position + 1  # elements so far, the placeholder included
        ranks = np.arange(length + 1, dtype=np.float64)[:, np.newaxis]
        previous = weights[:, : length + 1].copy()  # previous[:, length] is 0
        zero = zeros[:, position, np.newaxis, np.newaxis]
        one = ones[:, np.newaxis, position, :]
        weights[:, : length + 1] = previous * (zero * (length - ranks) / (length + 1))
        weights[:, 1 : length + 1] += previous[:, :length] * (one * ranks[1:] / (length + 1))
    return weights


def _unwound_sums(weights: np.ndarray, zeros: np.ndarray, ones: np.ndarray) -> np.ndarray:
    """For every element at once, the total weight of its path with that element unwound.

    Algorithm 2 sums `UNWIND(m, i).w`; this runs UNWIND's recursion for all elements together,
    without building the unwound paths. Where the element's one fraction is 0 the recursion
    has a closed form, a weighted sum of the path weights.
    """
    length = weights.shape[1]  # elements, the placeholder included
    zero = zeros[..., np.newaxis]  # [leaves, depth, 1]
    spans = np.arange(length - 1, 0, -1, dtype=np.float64)[:, np.newaxis]  # length - 1 - j
    totals = (length * (weights[:, :-1] / spans).sum(axis=1))[:, np.newaxis, :]
    from_zero = totals / np.where(zero != 0, zero, 1.0)
    carry = np.broadcast_to(weights[:, np.newaxis, -1], ones.shape)
    from_one = np.zeros_like(ones)
    for j in range(length - 2, -1, -1):
        step = carry * (length / (j + 1))
        from_one += step
        carry = weights[:, np.newaxis, j] - step * (zero * ((length - 1 - j) / length))
    return np.where(ones != 0, from_one, from_zero)
