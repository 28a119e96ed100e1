"""Tree ensembles: TreeEnsembleClassifier / TreeEnsembleRegressor (1, 3, 5) and TreeEnsemble (5).

Every encoding is compiled once into flat NumPy arrays over all nodes of all trees (feature,
threshold, mode, true/false child, missing-value direction, leaf weights), and the compiled form
is kept per node (its memo, prepared when the node is bound). Evaluation is vectorized: all samples descend all trees together,
one level per step, on an [N, n_trees] array of node positions; only the (sample, tree) pairs
that have not reached a leaf yet are advanced. The leaf weights are then aggregated tree by
tree (SUM, AVERAGE, MIN, MAX) over [N, n_targets] arrays.

Numerics follow onnxruntime, which the converters are validated against: the comparison and the
aggregation run in double for double inputs and in float for every other input type (integer
features are compared as float), a NaN feature goes to the true branch only where
``nodes_missing_value_tracks_true`` says so, and the classifier's two-class conventions (a
single scored class, base values, the second score column) are those of onnxruntime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops._common import compute_dtype
from pyonnx.ops.ml._common import (as_2d, check_post_transform, labels_array, logistic,
                                   post_transform)
from pyonnx.ops.registry import NodeMemo, kernel, node_memo

__all__ = ["tree_ensemble_classifier", "tree_ensemble_regressor", "tree_ensemble"]

_ML = "ai.onnx.ml"

# Node modes; the first seven are TreeEnsemble-5's uint8 codes.
_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER, _LEAF = range(8)
_MODE_NAMES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ",
               "BRANCH_MEMBER", "LEAF")
_LEGACY_MODES = {name: code for code, name in enumerate(_MODE_NAMES) if code != _MEMBER}
_COMPARE = {
    _LEQ: np.less_equal, _LT: np.less, _GTE: np.greater_equal, _GT: np.greater,
    _EQ: np.equal, _NEQ: np.not_equal,
}
_AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")  # TreeEnsemble-5 codes 0..3


@dataclasses.dataclass
class _Forest:
    """A compiled tree ensemble: flat arrays indexed by node position (all trees together)."""

    feature: np.ndarray        # int64 feature read by each node (0 at leaves)
    threshold: np.ndarray      # compute dtype
    mode: np.ndarray           # uint8 mode code (_LEAF at leaves)
    true_child: np.ndarray     # int64 node position; a leaf points to itself
    false_child: np.ndarray
    missing_true: np.ndarray | None  # bool, None when no node tracks NaN to the true branch
    is_leaf: np.ndarray        # bool
    roots: np.ndarray          # int64 root position of each tree, in tree order
    leaf_row: np.ndarray       # int64 row of each leaf in weights/has_weight (-1 elsewhere)
    weights: np.ndarray        # [n_leaves, n_targets] compute dtype, combined per aggregate
    has_weight: np.ndarray     # [n_leaves, n_targets] bool
    n_targets: int
    max_feature: int
    branch_modes: tuple[int, ...]  # distinct non-leaf modes present
    member_values: np.ndarray | None = None  # sorted distinct BRANCH_MEMBER values
    member_keys: np.ndarray | None = None    # sorted (member set index * len(values) + value pos)
    member_index: np.ndarray | None = None   # int64 set index per node (-1 when not a member node)
    positive_weights: bool = True            # every leaf weight >= 0 (classifier convention)
    weighted_targets: int = 0                # distinct target/class ids that carry weights
    leaf_target: np.ndarray | None = None    # per leaf row: its only target (-1: none), when
    leaf_value: np.ndarray | None = None     # no leaf has two weights; and that weight

    def __post_init__(self) -> None:
        per_leaf = self.has_weight.sum(axis=1)
        if per_leaf.size and per_leaf.max() <= 1:
            self.leaf_target = np.where(per_leaf > 0, self.has_weight.argmax(axis=1), -1)
            self.leaf_value = self.weights[np.arange(per_leaf.size),
                                           np.maximum(self.leaf_target, 0)].astype(np.float64)


def _cached(prepared: NodeMemo | None, key: tuple, build: Any) -> _Forest:
    """The node's forest compiled for ``key`` (compute dtype and the settings it folds in),
    built once per node and kept in the node's memo (``prepared``, see
    :mod:`pyonnx.ops.bind`); built on every call when the kernel is called without one."""
    forest = prepared.get(key) if prepared is not None else None
    if forest is None:
        forest = build()
        if prepared is not None:
            prepared.remember(key, forest)
    return forest


def _ints(op: str, name: str, v: Any) -> np.ndarray:
    if v is None:
        return np.zeros(0, np.int64)
    return np.asarray(v, dtype=np.int64).reshape(-1)


def _floats(op: str, plain: Any, as_tensor: Any, name: str, dtype: np.dtype) -> np.ndarray:
    """``name`` or ``name_as_tensor`` (v3+: double precision), whichever the node sets."""
    has_plain = plain is not None and len(plain) > 0
    has_tensor = as_tensor is not None and np.asarray(as_tensor).size > 0
    if has_plain and has_tensor:
        raise ExecutionError(f"{op}: only one of {name} and {name}_as_tensor may be set")
    if has_tensor:
        return np.asarray(as_tensor).reshape(-1).astype(dtype)
    if has_plain:
        return np.asarray(plain, dtype=np.float32).astype(dtype)
    return np.zeros(0, dtype)


def _leaf_tables(op: str, n_nodes: int, is_leaf: np.ndarray, w_node: np.ndarray,
                 w_target: np.ndarray, w_value: np.ndarray, n_targets: int, aggregate: str,
                 dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-leaf weight rows; several weights of one leaf for one target are summed (SUM,
    AVERAGE) or reduced by min/max (MIN, MAX), as adding them one by one would."""
    if w_target.size and (w_target.min() < 0 or w_target.max() >= n_targets):
        bad = int(w_target.min()) if w_target.min() < 0 else int(w_target.max())
        raise ExecutionError(f"{op}: a leaf weight is for target/class id {bad}, outside "
                             f"[0, {n_targets - 1}]")
    leaf_row = np.full(n_nodes, -1, np.int64)
    leaf_pos = np.flatnonzero(is_leaf)
    leaf_row[leaf_pos] = np.arange(leaf_pos.size)
    # Weights attached to interior nodes are ignored (old onnxmltools models carry them).
    keep = is_leaf[w_node]
    rows, tgt, val = leaf_row[w_node[keep]], w_target[keep], w_value[keep].astype(dtype)
    shape = (leaf_pos.size, n_targets)
    if aggregate == "MIN":
        weights = np.full(shape, np.inf, dtype)
        np.minimum.at(weights, (rows, tgt), val)
    elif aggregate == "MAX":
        weights = np.full(shape, -np.inf, dtype)
        np.maximum.at(weights, (rows, tgt), val)
    else:
        weights = np.zeros(shape, dtype)
        np.add.at(weights, (rows, tgt), val)
    has = np.zeros(shape, bool)
    has[rows, tgt] = True
    weights[~has] = 0
    return leaf_row, weights, has


def _build_legacy(op: str, *, nodes_treeids: Any, nodes_nodeids: Any, nodes_featureids: Any,
                  thresholds: np.ndarray, nodes_modes: Any, nodes_truenodeids: Any,
                  nodes_falsenodeids: Any, nodes_missing_value_tracks_true: Any,
                  w_treeids: Any, w_nodeids: Any, w_ids: Any, w_values: np.ndarray,
                  n_targets: int, aggregate: str, dtype: np.dtype) -> _Forest:
    """Compile the (tree id, node id) encoding of TreeEnsembleClassifier/Regressor."""
    treeids = _ints(op, "nodes_treeids", nodes_treeids)
    nodeids = _ints(op, "nodes_nodeids", nodes_nodeids)
    n = treeids.size
    if n == 0:
        raise ExecutionError(f"{op}: the ensemble has no nodes (nodes_treeids is empty)")
    featureids = _ints(op, "nodes_featureids", nodes_featureids)
    trueids = _ints(op, "nodes_truenodeids", nodes_truenodeids)
    falseids = _ints(op, "nodes_falsenodeids", nodes_falsenodeids)
    modes_in = list(nodes_modes or [])
    for name, arr in (("nodes_nodeids", nodeids), ("nodes_featureids", featureids),
                      ("nodes_truenodeids", trueids), ("nodes_falsenodeids", falseids),
                      ("nodes_modes", modes_in), ("nodes_values", thresholds)):
        if len(arr) != n:
            raise ExecutionError(f"{op}: {name} has {len(arr)} entries but nodes_treeids has {n}")
    try:
        mode = np.fromiter((_LEGACY_MODES[m] for m in modes_in), np.uint8, n)
    except KeyError as e:
        raise UnsupportedOperatorError(
            f"{op}: node mode {e.args[0]!r} is not supported (expected one of "
            f"{', '.join(_LEGACY_MODES)})") from None
    missing = _ints(op, "nodes_missing_value_tracks_true", nodes_missing_value_tracks_true)
    if missing.size not in (0, n):
        raise ExecutionError(f"{op}: nodes_missing_value_tracks_true has {missing.size} entries "
                             f"but nodes_treeids has {n}")
    if nodeids.min() < 0 or treeids.min() < 0:
        raise ExecutionError(f"{op}: tree and node ids must be non-negative")
    # One integer key per (tree id, node id); sorted keys give the node position by search.
    span = int(max(nodeids.max(), trueids.max(initial=0), falseids.max(initial=0))) + 1
    if (int(treeids.max()) + 1) * span >= 2 ** 62:
        raise ExecutionError(f"{op}: tree/node ids are too large")
    keys = treeids * span + nodeids
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    dup = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if dup.size:
        i = order[dup[0]]
        raise ExecutionError(f"{op}: node {int(nodeids[i])} of tree {int(treeids[i])} is defined "
                             f"twice")

    def locate(tree: np.ndarray, node: np.ndarray, what: str) -> np.ndarray:
        k = tree * span + node
        pos = np.searchsorted(sorted_keys, k)
        pos = np.minimum(pos, n - 1)
        bad = (sorted_keys[pos] != k) | (node < 0)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ExecutionError(f"{op}: {what} refers to node {int(node[j])} of tree "
                                 f"{int(tree[j])}, which does not exist")
        return order[pos]

    is_leaf = mode == _LEAF
    inner = ~is_leaf
    self_pos = np.arange(n, dtype=np.int64)
    true_child = self_pos.copy()
    false_child = self_pos.copy()
    true_child[inner] = locate(treeids[inner], trueids[inner], "nodes_truenodeids")
    false_child[inner] = locate(treeids[inner], falseids[inner], "nodes_falsenodeids")
    if ((true_child[inner] == self_pos[inner]).any()
            or (false_child[inner] == self_pos[inner]).any()):
        raise ExecutionError(f"{op}: a node has itself as a child")
    feature = np.where(inner, featureids, 0)
    if inner.any() and feature[inner].min() < 0:
        raise ExecutionError(f"{op}: nodes_featureids contains a negative feature id "
                             f"{int(feature[inner].min())}")
    # A tree's root is its first listed node; trees are taken in order of first appearance.
    _, first = np.unique(treeids, return_index=True)
    roots = np.sort(first).astype(np.int64)

    wt, wn, wi = _ints(op, "", w_treeids), _ints(op, "", w_nodeids), _ints(op, "", w_ids)
    if not (wt.size == wn.size == wi.size == w_values.size):
        raise ExecutionError(f"{op}: the leaf weight attributes (tree ids, node ids, target/class "
                             f"ids, weights) must have equal lengths, got {wt.size}, {wn.size}, "
                             f"{wi.size}, {w_values.size}")
    w_node = locate(wt, wn, "a leaf weight") if wt.size else np.zeros(0, np.int64)
    leaf_row, weights, has = _leaf_tables(op, n, is_leaf, w_node, wi, w_values, n_targets,
                                          aggregate, dtype)
    track = missing.astype(bool) if missing.size and missing.any() else None
    return _Forest(
        feature=feature.astype(np.int64), threshold=thresholds.astype(dtype), mode=mode,
        true_child=true_child, false_child=false_child, missing_true=track, is_leaf=is_leaf,
        roots=roots, leaf_row=leaf_row, weights=weights, has_weight=has, n_targets=n_targets,
        max_feature=int(feature[inner].max()) if inner.any() else -1,
        branch_modes=tuple(int(m) for m in np.unique(mode[inner])),
        positive_weights=bool((w_values >= 0).all()),
        weighted_targets=int(np.unique(wi).size))


def _descend(op: str, forest: _Forest, x: np.ndarray) -> np.ndarray:
    """Node position of the leaf reached by each sample in each tree: [N, n_trees].

    While most (sample, tree) pairs are still inside their trees, every pair takes a step (a
    leaf is its own child, so finished pairs stay put); once most have arrived, only the pairs
    still descending are gathered and advanced.
    """
    n_samples, n_features = x.shape
    if forest.max_feature >= n_features:
        raise ExecutionError(f"{op}: the trees read feature {forest.max_feature} but X has "
                             f"{n_features} features per row (shape {list(x.shape)})")
    n_trees = forest.roots.size
    flat = np.tile(forest.roots, n_samples)
    xflat = np.ascontiguousarray(x).reshape(-1)
    row_offset = np.repeat(np.arange(n_samples, dtype=np.int64) * n_features, n_trees)
    # children[2 * node + cond]: the false child at even, the true child at odd positions.
    children = np.stack([forest.false_child, forest.true_child], axis=1).reshape(-1)
    uniform = forest.branch_modes[0] if len(forest.branch_modes) == 1 else None
    active: np.ndarray | None = None  # None: step all pairs
    limit = forest.is_leaf.size + 1
    for _ in range(limit):
        if active is None:
            inside = ~forest.is_leaf[flat]
            n_inside = int(np.count_nonzero(inside))
            if n_inside == 0:
                return flat.reshape(n_samples, n_trees)
            if n_inside * 2 < flat.size:
                active = np.flatnonzero(inside)
        elif active.size == 0:
            return flat.reshape(n_samples, n_trees)
        nd = flat if active is None else flat[active]
        off = row_offset if active is None else row_offset[active]
        xv = xflat[off + forest.feature[nd]]
        if uniform is not None and uniform != _MEMBER:
            cond = _COMPARE[uniform](xv, forest.threshold[nd])
        else:
            cond = np.zeros(nd.size, bool)
            md = forest.mode[nd]
            for m in forest.branch_modes:
                sel = md == m
                if m == _MEMBER:
                    cond[sel] = _member(forest, nd[sel], xv[sel])
                else:
                    cond[sel] = _COMPARE[m](xv[sel], forest.threshold[nd[sel]])
        if forest.missing_true is not None:
            cond |= forest.missing_true[nd] & np.isnan(xv)
        nxt = children[2 * nd + cond]
        if active is None:
            flat = nxt
        else:
            flat[active] = nxt
            active = active[~forest.is_leaf[nxt]]
    raise ExecutionError(f"{op}: a tree contains a cycle (descent did not reach a leaf)")


def _member(forest: _Forest, nd: np.ndarray, xv: np.ndarray) -> np.ndarray:
    """BRANCH_MEMBER: whether each value lies in its node's membership set."""
    values, keys = forest.member_values, forest.member_keys
    if values is None or values.size == 0:
        return np.zeros(nd.size, bool)
    pos = np.minimum(np.searchsorted(values, xv), values.size - 1)
    found = values[pos] == xv
    k = forest.member_index[nd] * values.size + pos
    kp = np.minimum(np.searchsorted(keys, k), keys.size - 1)
    return found & (keys[kp] == k)


def _aggregate(op: str, forest: _Forest, x: np.ndarray, aggregate: str,
               dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample target scores and whether any reached leaf carried a weight for the target."""
    leaves = _descend(op, forest, x)
    n_samples, n_trees = leaves.shape
    n_targets = forest.n_targets
    scores = np.zeros((n_samples, n_targets), dtype)
    has = np.zeros((n_samples, n_targets), bool)
    rows = forest.leaf_row[leaves]
    if aggregate in ("SUM", "AVERAGE"):
        if forest.leaf_target is not None:
            # At most one weight per leaf (boosted trees, single-target forests): one bincount
            # over (sample, target) slots, accumulated in double.
            tg = forest.leaf_target[rows]
            ok = tg >= 0
            slot = (np.arange(n_samples, dtype=np.int64)[:, None] * n_targets + tg)[ok]
            size = n_samples * n_targets
            total = np.bincount(slot, weights=forest.leaf_value[rows][ok], minlength=size)
            counts = np.bincount(slot, minlength=size)
            return (total.astype(dtype).reshape(n_samples, n_targets),
                    (counts > 0).reshape(n_samples, n_targets))
        # Gather trees in chunks of about 4M weights, tree-major so that each chunk reduces
        # over its outer axis (contiguous slabs).
        step = max(1, (1 << 22) // max(1, n_samples * n_targets))
        rows_t = np.ascontiguousarray(rows.T)
        for t0 in range(0, n_trees, step):
            r = rows_t[t0:t0 + step]
            scores += np.add.reduce(forest.weights[r], axis=0, dtype=dtype)
            has |= np.logical_or.reduce(forest.has_weight[r], axis=0)
        return scores, has
    for t in range(n_trees):  # MIN / MAX: tree by tree, in order
        w, h = forest.weights[rows[:, t]], forest.has_weight[rows[:, t]]
        if aggregate == "MIN":
            scores = np.where(h & (~has | (w < scores)), w, scores)
        else:
            scores = np.where(h & (~has | (w > scores)), w, scores)
        has |= h
    return scores, has


def _finalize_regression(scores: np.ndarray, has: np.ndarray, base: np.ndarray, aggregate: str,
                         n_trees: int, transform: str) -> np.ndarray:
    """Base values, averaging and the post transform of a regression ensemble (float32 out for
    the legacy operators; TreeEnsemble casts to its T)."""
    n_targets = scores.shape[1]
    dtype = scores.dtype
    if n_targets == 1:
        origin = dtype.type(base[0]) if base.size == 1 else dtype.type(0)
        if aggregate == "SUM":
            out = scores + origin
        elif aggregate == "AVERAGE":
            out = scores / dtype.type(n_trees) + origin
        else:
            out = np.where(has, scores + origin, origin)
    else:
        out = scores / dtype.type(n_trees) if aggregate == "AVERAGE" else scores
        if base.size == n_targets:
            out = out + base.astype(dtype)
        # A target that no reached leaf scored reads as 0 (base values included).
        out = np.where(has, out, dtype.type(0))
    if transform == "NONE":
        return out
    return post_transform(out.astype(np.float32), transform)


def _check_aggregate(op: str, value: str) -> str:
    if value not in _AGGREGATES:
        raise UnsupportedOperatorError(f"{op}: aggregate_function {value!r} is not supported "
                                       f"(expected one of {', '.join(_AGGREGATES)})")
    return value


@kernel("TreeEnsembleRegressor", versions=(1, 3, 5), domain=_ML, prepare=node_memo)
def tree_ensemble_regressor(
        X: np.ndarray, *, aggregate_function: str = "SUM",
        base_values: Sequence[float] | None = None,
        base_values_as_tensor: np.ndarray | None = None, n_targets: int | None = None,
        nodes_falsenodeids: Sequence[int] | None = None,
        nodes_featureids: Sequence[int] | None = None,
        nodes_hitrates: Sequence[float] | None = None,
        nodes_hitrates_as_tensor: np.ndarray | None = None,
        nodes_missing_value_tracks_true: Sequence[int] | None = None,
        nodes_modes: Sequence[str] | None = None, nodes_nodeids: Sequence[int] | None = None,
        nodes_treeids: Sequence[int] | None = None, nodes_truenodeids: Sequence[int] | None = None,
        nodes_values: Sequence[float] | None = None,
        nodes_values_as_tensor: np.ndarray | None = None, post_transform: str = "NONE",
        target_ids: Sequence[int] | None = None, target_nodeids: Sequence[int] | None = None,
        target_treeids: Sequence[int] | None = None, target_weights: Sequence[float] | None = None,
        target_weights_as_tensor: np.ndarray | None = None,
        prepared: NodeMemo | None = None) -> tuple[np.ndarray]:
    """Y[N, n_targets] (float) = aggregate of the leaf weights reached in every tree."""
    op = "TreeEnsembleRegressor"
    transform = check_post_transform(op, post_transform)
    aggregate = _check_aggregate(op, aggregate_function)
    x = as_2d(op, X)
    dtype = compute_dtype(x.dtype)
    if n_targets is None or int(n_targets) < 1:
        raise ExecutionError(f"{op}: n_targets must be a positive number, got {n_targets}")
    targets = int(n_targets)

    def build() -> _Forest:
        return _build_legacy(
            op, nodes_treeids=nodes_treeids, nodes_nodeids=nodes_nodeids,
            nodes_featureids=nodes_featureids,
            thresholds=_floats(op, nodes_values, nodes_values_as_tensor, "nodes_values", dtype),
            nodes_modes=nodes_modes, nodes_truenodeids=nodes_truenodeids,
            nodes_falsenodeids=nodes_falsenodeids,
            nodes_missing_value_tracks_true=nodes_missing_value_tracks_true,
            w_treeids=target_treeids, w_nodeids=target_nodeids, w_ids=target_ids,
            w_values=_floats(op, target_weights, target_weights_as_tensor, "target_weights", dtype),
            n_targets=targets, aggregate=aggregate, dtype=dtype)

    forest = _cached(prepared, (dtype.str, aggregate, targets), build)
    base = _floats(op, base_values, base_values_as_tensor, "base_values", dtype)
    if base.size not in (0, targets):
        raise ExecutionError(f"{op}: base_values has {base.size} values; expected 0 or "
                             f"n_targets = {targets}")
    scores, has = _aggregate(op, forest, x.astype(dtype, copy=False), aggregate, dtype)
    out = _finalize_regression(scores, has, base, aggregate, forest.roots.size, transform)
    return (out.astype(np.float32),)


@kernel("TreeEnsembleClassifier", versions=(1, 3, 5), domain=_ML, prepare=node_memo)
def tree_ensemble_classifier(
        X: np.ndarray, *, base_values: Sequence[float] | None = None,
        base_values_as_tensor: np.ndarray | None = None, class_ids: Sequence[int] | None = None,
        class_nodeids: Sequence[int] | None = None, class_treeids: Sequence[int] | None = None,
        class_weights: Sequence[float] | None = None,
        class_weights_as_tensor: np.ndarray | None = None,
        classlabels_int64s: Sequence[int] | None = None,
        classlabels_strings: Sequence[str] | None = None,
        nodes_falsenodeids: Sequence[int] | None = None,
        nodes_featureids: Sequence[int] | None = None,
        nodes_hitrates: Sequence[float] | None = None,
        nodes_hitrates_as_tensor: np.ndarray | None = None,
        nodes_missing_value_tracks_true: Sequence[int] | None = None,
        nodes_modes: Sequence[str] | None = None, nodes_nodeids: Sequence[int] | None = None,
        nodes_treeids: Sequence[int] | None = None, nodes_truenodeids: Sequence[int] | None = None,
        nodes_values: Sequence[float] | None = None,
        nodes_values_as_tensor: np.ndarray | None = None,
        post_transform: str = "NONE", prepared: NodeMemo | None = None
        ) -> tuple[np.ndarray, np.ndarray]:
    """Y[N] = top class label, Z[N, n_classes] (float) = class scores after the transform."""
    op = "TreeEnsembleClassifier"
    transform = check_post_transform(op, post_transform)
    if classlabels_strings:
        labels: list[Any] = list(classlabels_strings)
        if classlabels_int64s:
            raise ExecutionError(f"{op}: only one of classlabels_int64s and classlabels_strings "
                                 f"may be set")
    elif classlabels_int64s:
        labels = [int(v) for v in classlabels_int64s]
    else:
        raise ExecutionError(f"{op}: one of classlabels_int64s or classlabels_strings must be set")
    x = as_2d(op, X)
    dtype = compute_dtype(x.dtype)
    n_classes = len(labels)

    def build() -> _Forest:
        return _build_legacy(
            op, nodes_treeids=nodes_treeids, nodes_nodeids=nodes_nodeids,
            nodes_featureids=nodes_featureids,
            thresholds=_floats(op, nodes_values, nodes_values_as_tensor, "nodes_values", dtype),
            nodes_modes=nodes_modes, nodes_truenodeids=nodes_truenodeids,
            nodes_falsenodeids=nodes_falsenodeids,
            nodes_missing_value_tracks_true=nodes_missing_value_tracks_true,
            w_treeids=class_treeids, w_nodeids=class_nodeids, w_ids=class_ids,
            w_values=_floats(op, class_weights, class_weights_as_tensor, "class_weights", dtype),
            n_targets=n_classes, aggregate="SUM", dtype=dtype)

    forest = _cached(prepared, (dtype.str, "CLASSIFIER", n_classes), build)
    base = _floats(op, base_values, base_values_as_tensor, "base_values", dtype)
    # One base value for two classes is tolerated (onnxruntime adds it to the first class).
    if base.size not in (0, n_classes) and not (n_classes == 2 and base.size == 1):
        raise ExecutionError(f"{op}: base_values has {base.size} values; expected 0 or one per "
                             f"class ({n_classes})")
    scores, has = _aggregate(op, forest, x.astype(dtype, copy=False), "SUM", dtype)
    label_idx, z = _finalize_classifier(forest, scores, has, base, transform)
    return labels_array(labels, label_idx), z


def _finalize_classifier(forest: _Forest, scores: np.ndarray, has: np.ndarray, base: np.ndarray,
                         transform: str) -> tuple[np.ndarray, np.ndarray]:
    """Class index and score matrix, with onnxruntime's conventions for two classes.

    A score never written by a leaf (nor by a base value) reads as 0. With more than two
    classes the base values are added and the label is the first best scored class. With two
    classes of which only one carries weights ("binary case"), the single score decides the
    label (> 0.5 when all weights are positive, else > 0) and the second column is derived from
    it: [1 - s, s] for positive weights, [-s, s] for mixed signs, and
    [logistic(-s), logistic(s)] under LOGISTIC (SOFTMAX does not apply to a lone score).
    """
    n, n_classes = scores.shape
    s = scores.copy()
    h = has.copy()
    if n_classes > 2 or n_classes == 1:
        k = min(base.size, n_classes)
        if k:
            s[:, :k] = np.where(h[:, :k], s[:, :k] + base[:k].astype(s.dtype),
                                base[:k].astype(s.dtype))
            h[:, :k] = True
        masked = np.where(h, s, -np.inf)
        idx = np.argmax(masked, axis=1)
        idx = np.where(h.any(axis=1), idx, 0)
        z = np.where(h, s, 0).astype(np.float32)
        return idx, post_transform(z, transform) if n_classes > 1 else z

    binary_case = forest.weighted_targets == 1
    # single[i]: the sample's scores shrink to one column (class 1 unscored).
    second_class = -1 * np.ones(n, np.int64)
    if base.size == 2:
        b0, b1 = s.dtype.type(base[0]), s.dtype.type(base[1])
        h1 = h[:, 1]
        new1 = np.where(h1, b1 + s[:, 0], s[:, 1] + b1)
        new0 = np.where(h1, -(b1 + s[:, 0]), s[:, 0] + b0)
        s[:, 0], s[:, 1] = new0, new1
        single = np.zeros(n, bool)
    elif base.size == 1:
        s[:, 0] = s[:, 0] + s.dtype.type(base[0])
        single = ~h[:, 1]
    else:
        single = ~h[:, 1] if base.size == 0 else np.zeros(n, bool)
        if base.size == 0:
            second_class[:] = 3
    v = np.where(h, s, 0).astype(s.dtype)  # what onnxruntime reads from a score slot
    pos_weight = np.where(~single & h[:, 1], v[:, 1], v[:, 0])
    if binary_case:
        if forest.positive_weights:
            positive = pos_weight > 0.5
            second_class = np.where(positive, 0, 1)
        else:
            positive = pos_weight > 0
            second_class = np.where(positive, 2, 3)
    else:
        positive = pos_weight > 0
    idx = positive.astype(np.int64)

    z = np.zeros((n, 2), np.float32)
    two = ~single
    if two.any():
        z[two] = post_transform(v[two].astype(np.float32), transform)
    if single.any():
        s0 = v[single, 0].astype(np.float32)
        add = second_class[single]
        zs = np.zeros((s0.size, 2), np.float32)
        if transform == "PROBIT":
            # onnxruntime transforms the lone score only; its second column is left unset.
            zs[:, 0] = post_transform(s0.reshape(-1, 1), "PROBIT")[:, 0]
        elif transform == "LOGISTIC":
            scored = add >= 0
            zs[scored, 0] = logistic(-s0[scored])
            zs[scored, 1] = logistic(s0[scored])
            zs[~scored, 0] = s0[~scored]
        else:
            prob = (add == 0) | (add == 1)  # all weights positive: a probability
            mixed = (add == 2) | (add == 3)  # mixed signs: a margin
            zs[prob, 0] = np.float32(1) - s0[prob]
            zs[prob, 1] = s0[prob]
            zs[mixed, 0] = -s0[mixed]
            zs[mixed, 1] = s0[mixed]
            none = add < 0
            zs[none, 0] = s0[none]
        z[single] = zs
    return idx, z


# ---------------------------------------------------------------------------------------------
# TreeEnsemble (ai.onnx.ml 5)


def _build_v5(op: str, *, nodes_featureids: Any, nodes_splits: np.ndarray, nodes_modes: Any,
              nodes_truenodeids: Any, nodes_trueleafs: Any, nodes_falsenodeids: Any,
              nodes_falseleafs: Any, nodes_missing_value_tracks_true: Any, tree_roots: Any,
              leaf_targetids: Any, leaf_weights: np.ndarray, membership_values: Any,
              n_targets: int, aggregate: str, dtype: np.dtype) -> _Forest:
    """Compile the TreeEnsemble-5 encoding: interior nodes by position, leaves appended."""
    feature = _ints(op, "nodes_featureids", nodes_featureids)
    n = feature.size
    splits = np.asarray(nodes_splits).reshape(-1)
    modes = np.asarray(nodes_modes).reshape(-1).astype(np.int64)
    trueids = _ints(op, "nodes_truenodeids", nodes_truenodeids)
    falseids = _ints(op, "nodes_falsenodeids", nodes_falsenodeids)
    trueleafs = _ints(op, "nodes_trueleafs", nodes_trueleafs).astype(bool)
    falseleafs = _ints(op, "nodes_falseleafs", nodes_falseleafs).astype(bool)
    for name, arr in (("nodes_splits", splits), ("nodes_modes", modes),
                      ("nodes_truenodeids", trueids), ("nodes_falsenodeids", falseids),
                      ("nodes_trueleafs", trueleafs), ("nodes_falseleafs", falseleafs)):
        if arr.size != n:
            raise ExecutionError(f"{op}: {name} has {arr.size} entries but nodes_featureids "
                                 f"has {n}")
    if modes.size and (modes.min() < 0 or modes.max() > _MEMBER):
        bad = int(modes.min()) if modes.min() < 0 else int(modes.max())
        raise UnsupportedOperatorError(f"{op}: node mode {bad} is not supported (expected 0 to 6:"
                                       f" {', '.join(_MODE_NAMES[:7])})")
    if n and feature.min() < 0:
        raise ExecutionError(f"{op}: nodes_featureids contains a negative feature id "
                             f"{int(feature.min())}")
    targets = _ints(op, "leaf_targetids", leaf_targetids)
    weights = np.asarray(leaf_weights).reshape(-1)
    n_leaves = targets.size
    if weights.size != n_leaves:
        raise ExecutionError(f"{op}: leaf_weights has {weights.size} entries but leaf_targetids "
                             f"has {n_leaves}")

    def child(ids: np.ndarray, leaf: np.ndarray, what: str) -> np.ndarray:
        limit = np.where(leaf, n_leaves, n)
        bad = (ids < 0) | (ids >= limit)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            kind = "leaf" if leaf[j] else "node"
            raise ExecutionError(f"{op}: {what}[{j}] = {int(ids[j])} is not a valid {kind} index "
                                 f"(there are {int(limit[j])})")
        return np.where(leaf, ids + n, ids)

    true_child = np.concatenate([child(trueids, trueleafs, "nodes_truenodeids"),
                                 np.arange(n, n + n_leaves)])
    false_child = np.concatenate([child(falseids, falseleafs, "nodes_falsenodeids"),
                                  np.arange(n, n + n_leaves)])
    roots = _ints(op, "tree_roots", tree_roots)
    if roots.size and (roots.min() < 0 or roots.max() >= n):
        raise ExecutionError(f"{op}: tree_roots contains {int(roots.max())}, outside the "
                             f"{n} nodes")
    is_leaf = np.concatenate([np.zeros(n, bool), np.ones(n_leaves, bool)])
    mode = np.concatenate([modes.astype(np.uint8), np.full(n_leaves, _LEAF, np.uint8)])
    missing = _ints(op, "nodes_missing_value_tracks_true", nodes_missing_value_tracks_true)
    if missing.size not in (0, n):
        raise ExecutionError(f"{op}: nodes_missing_value_tracks_true has {missing.size} entries "
                             f"but there are {n} nodes")
    track = (np.concatenate([missing.astype(bool), np.zeros(n_leaves, bool)])
             if missing.size and missing.any() else None)
    threshold = np.concatenate([splits.astype(dtype), np.zeros(n_leaves, dtype)])
    leaf_row, w, has = _leaf_tables(op, n + n_leaves, is_leaf, np.arange(n, n + n_leaves),
                                    targets, weights, n_targets, aggregate, dtype)
    forest = _Forest(
        feature=np.concatenate([feature, np.zeros(n_leaves, np.int64)]), threshold=threshold,
        mode=mode, true_child=true_child, false_child=false_child, missing_true=track,
        is_leaf=is_leaf, roots=roots, leaf_row=leaf_row, weights=w, has_weight=has,
        n_targets=n_targets, max_feature=int(feature.max()) if n else -1,
        branch_modes=tuple(int(m) for m in np.unique(modes)))
    member_nodes = np.flatnonzero(modes == _MEMBER)
    if member_nodes.size:
        vals = (np.zeros(0) if membership_values is None
                else np.asarray(membership_values).reshape(-1).astype(dtype))
        # Sets are listed in node order, each ended by a NaN (the last one may omit it).
        sep = np.isnan(vals)
        set_of_value = np.cumsum(sep) - sep
        n_sets = int(sep.sum()) + (0 if vals.size == 0 or sep[-1] else 1)
        if n_sets != member_nodes.size:
            raise ExecutionError(f"{op}: membership_values holds {n_sets} sets but "
                                 f"{member_nodes.size} nodes have mode BRANCH_MEMBER")
        members, set_ids = vals[~sep], set_of_value[~sep]
        uniq = np.unique(members)
        keys = np.unique(set_ids * max(uniq.size, 1) + np.searchsorted(uniq, members))
        index = np.full(n + n_leaves, -1, np.int64)
        index[member_nodes] = np.arange(member_nodes.size)
        forest.member_values, forest.member_keys, forest.member_index = uniq, keys, index
    return forest


_V5_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))


@kernel("TreeEnsemble", versions=(5,), domain=_ML, prepare=node_memo)
def tree_ensemble(
        X: np.ndarray, *, aggregate_function: int = 1, leaf_targetids: Sequence[int] | None = None,
        leaf_weights: np.ndarray | None = None, membership_values: np.ndarray | None = None,
        n_targets: int | None = None, nodes_falseleafs: Sequence[int] | None = None,
        nodes_falsenodeids: Sequence[int] | None = None,
        nodes_featureids: Sequence[int] | None = None, nodes_hitrates: np.ndarray | None = None,
        nodes_missing_value_tracks_true: Sequence[int] | None = None,
        nodes_modes: np.ndarray | None = None, nodes_splits: np.ndarray | None = None,
        nodes_trueleafs: Sequence[int] | None = None,
        nodes_truenodeids: Sequence[int] | None = None, post_transform: int = 0,
        tree_roots: Sequence[int] | None = None, prepared: NodeMemo | None = None
        ) -> tuple[np.ndarray]:
    """Y[N, n_targets] (same type as X) = aggregate of the leaf weights reached in every tree."""
    op = "TreeEnsemble"
    if not 0 <= int(post_transform) <= 4:
        raise UnsupportedOperatorError(f"{op}: post_transform {post_transform} is not supported "
                                       f"(expected 0 NONE, 1 SOFTMAX, 2 LOGISTIC, 3 SOFTMAX_ZERO "
                                       f"or 4 PROBIT)")
    transform = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")[int(post_transform)]
    if not 0 <= int(aggregate_function) <= 3:
        raise UnsupportedOperatorError(f"{op}: aggregate_function {aggregate_function} is not "
                                       f"supported (expected 0 AVERAGE, 1 SUM, 2 MIN or 3 MAX)")
    aggregate = _AGGREGATES[int(aggregate_function)]
    for name, v in (("nodes_splits", nodes_splits), ("nodes_modes", nodes_modes),
                    ("leaf_weights", leaf_weights), ("tree_roots", tree_roots),
                    ("leaf_targetids", leaf_targetids)):
        if v is None:
            raise ExecutionError(f"{op}: required attribute {name} is missing")
    x = as_2d(op, X)
    if x.dtype not in _V5_DTYPES:
        raise ExecutionError(f"{op}: X must be float, double or float16, got {x.dtype}")
    dtype = compute_dtype(x.dtype)
    if n_targets is None or int(n_targets) < 1:
        raise ExecutionError(f"{op}: n_targets must be a positive number, got {n_targets}")
    targets = int(n_targets)

    def build() -> _Forest:
        return _build_v5(
            op, nodes_featureids=nodes_featureids, nodes_splits=nodes_splits,
            nodes_modes=nodes_modes, nodes_truenodeids=nodes_truenodeids,
            nodes_trueleafs=nodes_trueleafs, nodes_falsenodeids=nodes_falsenodeids,
            nodes_falseleafs=nodes_falseleafs,
            nodes_missing_value_tracks_true=nodes_missing_value_tracks_true,
            tree_roots=tree_roots, leaf_targetids=leaf_targetids, leaf_weights=leaf_weights,
            membership_values=membership_values, n_targets=targets, aggregate=aggregate,
            dtype=dtype)

    forest = _cached(prepared, (dtype.str, aggregate, targets), build)
    scores, has = _aggregate(op, forest, x.astype(dtype, copy=False), aggregate, dtype)
    out = _finalize_regression(scores, has, np.zeros(0, dtype), aggregate, forest.roots.size,
                               transform)
    return (np.asarray(out).astype(x.dtype),)
