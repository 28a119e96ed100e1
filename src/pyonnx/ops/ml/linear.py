"""Linear and kernel models: LinearClassifier, LinearRegressor, SVMClassifier, SVMRegressor.

Inputs of any allowed type are converted to float32 and the products run in float32, as in
onnxruntime; the one-vs-one SVM decision sums and the Platt-scaled pairwise probabilities
follow libsvm's method (pairwise coupling by the iterative method of Wu, Lin and Weng) in
float32, so probabilities agree with onnxruntime to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops.ml._common import as_2d, attr_array, check_post_transform, labels_array, logistic
from pyonnx.ops.ml._common import post_transform as _transform
from pyonnx.ops.ml._common import probit
from pyonnx.ops.registry import kernel

__all__ = ["linear_classifier", "linear_regressor", "svm_classifier", "svm_regressor"]

_ML = "ai.onnx.ml"
_KERNELS = ("LINEAR", "POLY", "RBF", "SIGMOID")


def _float_input(op: str, X: np.ndarray) -> np.ndarray:
    x = as_2d(op, X)
    if x.dtype.kind not in "fiu":
        raise ExecutionError(f"{op}: X must be a numeric tensor, got {x.dtype}")
    return x.astype(np.float32, copy=False)


def _class_labels(op: str, ints: Sequence[int] | None, strings: Sequence[str] | None,
                  ints_name: str) -> list[Any]:
    if ints and strings:
        raise ExecutionError(f"{op}: only one of {ints_name} and classlabels_strings may be set")
    if strings:
        return list(strings)
    if ints:
        return [int(v) for v in ints]
    return []


def _weights(op: str, coefficients: Any, rows: int, features: int, what: str) -> np.ndarray:
    """Coefficients as a [rows, features] float32 matrix; a size mismatch names both counts."""
    coef = attr_array(coefficients, np.float32)
    if coef.size != rows * features:
        raise ExecutionError(
            f"{op}: {what} has {coef.size} values, which does not match {rows} row(s) of "
            f"{features} features (X has {features} features per row)")
    return coef.reshape(rows, features)


@kernel("LinearClassifier", versions=(1,), domain=_ML)
def linear_classifier(X: np.ndarray, *, coefficients: Sequence[float] | None = None,
                      intercepts: Sequence[float] | None = None,
                      classlabels_ints: Sequence[int] | None = None,
                      classlabels_strings: Sequence[str] | None = None, multi_class: int = 0,
                      post_transform: str = "NONE") -> tuple[np.ndarray, np.ndarray]:
    """Y[N] = best class, Z[N, C] = X @ coefficients^T + intercepts, post-transformed.

    One score column with two class labels is a binary model: the label is the second class
    when the score is > 0, and Z gets the two columns [1 - s, s], or [logistic(-s), logistic(s)]
    under LOGISTIC (as onnxruntime writes them; SOFTMAX does not apply to a lone score).
    """
    op = "LinearClassifier"
    transform = check_post_transform(op, post_transform)
    labels = _class_labels(op, classlabels_ints, classlabels_strings, "classlabels_ints")
    x = _float_input(op, X)
    n_features = x.shape[1]
    b = attr_array(intercepts, np.float32)
    coef_size = attr_array(coefficients, np.float32).size
    if coef_size == 0:
        raise ExecutionError(f"{op}: coefficients must be set")
    n_targets = b.size if b.size else coef_size // max(n_features, 1)
    w = _weights(op, coefficients, n_targets, n_features, "coefficients")
    if not b.size:
        b = np.zeros(n_targets, np.float32)
    scores = (x @ w.T + b).astype(np.float32)
    if n_targets == 1:
        # One score column is a binary model: it needs exactly the two class labels.
        if len(labels) != 2:
            raise ExecutionError(f"{op}: one score column (binary classification) needs exactly "
                                 f"2 class labels, got {len(labels)}")
        y = labels_array(labels, (scores[:, 0] > 0).astype(np.int64))
        s = scores[:, 0]
        if transform == "LOGISTIC":
            return y, np.stack([logistic(-s), logistic(s)], axis=1).astype(np.float32)
        if transform == "PROBIT":
            s = probit(s)
        return y, np.stack([np.float32(1) - s, s], axis=1).astype(np.float32)
    if len(labels) != n_targets:
        raise ExecutionError(f"{op}: {n_targets} score columns but {len(labels)} class labels")
    idx = np.argmax(scores, axis=1)
    return labels_array(labels, idx), _transform(scores, transform)


@kernel("LinearRegressor", versions=(1,), domain=_ML)
def linear_regressor(X: np.ndarray, *, coefficients: Sequence[float] | None = None,
                     intercepts: Sequence[float] | None = None, targets: int = 1,
                     post_transform: str = "NONE") -> tuple[np.ndarray]:
    """Y[N, targets] = X @ coefficients^T + intercepts (float), post-transformed."""
    op = "LinearRegressor"
    transform = check_post_transform(op, post_transform)
    x = _float_input(op, X)
    n_targets = int(targets)
    if n_targets < 1:
        raise ExecutionError(f"{op}: targets must be >= 1, got {n_targets}")
    w = _weights(op, coefficients, n_targets, x.shape[1], "coefficients")
    b = attr_array(intercepts, np.float32)
    if b.size not in (0, n_targets):
        raise ExecutionError(f"{op}: intercepts has {b.size} values for {n_targets} targets")
    y = x @ w.T
    if b.size:
        y = y + b
    return (_transform(y.astype(np.float32), transform),)


def _kernel_params(op: str, kernel_type: str, kernel_params: Any) -> tuple[float, float, float]:
    if kernel_type not in _KERNELS:
        raise UnsupportedOperatorError(f"{op}: kernel_type {kernel_type!r} is not supported "
                                       f"(expected one of {', '.join(_KERNELS)})")
    p = attr_array(kernel_params, np.float32)
    if p.size == 0:
        return 0.0, 0.0, 0.0
    if p.size != 3:
        raise ExecutionError(f"{op}: kernel_params must hold gamma, coef0 and degree, got "
                             f"{p.size} values")
    return float(p[0]), float(p[1]), float(p[2])


def _kernel(x: np.ndarray, sv: np.ndarray, kernel_type: str, gamma: float, coef0: float,
            degree: float) -> np.ndarray:
    """[N, V] kernel values between the rows of ``x`` and the support vectors (float32)."""
    if kernel_type == "RBF":
        # Squared distances accumulated feature by feature in float32: decision values near 0
        # (OneClassSVM's sign) depend on this rounding, which onnxruntime's loop has.
        d2 = np.zeros((x.shape[0], sv.shape[0]), np.float32)
        for f in range(x.shape[1]):
            diff = x[:, f:f + 1] - sv[None, :, f]
            d2 += diff * diff
        return np.exp(-np.float32(gamma) * d2).astype(np.float32)
    dot = (x @ sv.T).astype(np.float32)
    if kernel_type == "LINEAR":
        return dot
    k = np.float32(gamma) * dot + np.float32(coef0)
    if kernel_type == "POLY":
        # Small integer degrees as repeated products, the rounding onnxruntime's kernels have.
        if degree == 2:
            return (k * k).astype(np.float32)
        if degree == 3:
            return (k * k * k).astype(np.float32)
        return np.power(k, np.float32(degree)).astype(np.float32)
    return np.tanh(k).astype(np.float32)


def _pairwise_coupling(r: np.ndarray) -> np.ndarray:
    """Class probabilities [N, C] from pairwise ones r[N, C, C] (r[i, j] = P(i | i or j)).

    The iterative method of Wu, Lin and Weng (2004, method 2) as libsvm and onnxruntime run
    it in float32: at most 100 sweeps, stopping per sample once max |Qp - pQp| < 0.005 / C.
    """
    n, c, _ = r.shape
    f32 = np.float32
    q = np.zeros((n, c, c), f32)
    for i in range(c):
        for j in range(c):
            if j != i:
                q[:, i, i] += r[:, j, i] * r[:, j, i]
                q[:, i, j] = -r[:, j, i] * r[:, i, j]
    p = np.full((n, c), f32(1) / f32(c), f32)
    eps = f32(0.005) / f32(c)
    active = np.arange(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(100):
            if not active.size:
                break
            qa, pa = q[active], p[active]
            qp = np.einsum("nij,nj->ni", qa, pa).astype(f32)
            pqp = np.sum(pa * qp, axis=1).astype(f32)
            err = np.max(np.abs(qp - pqp[:, None]), axis=1)
            todo = err >= eps
            active = active[todo]
            if not active.size:
                break
            qa, pa, qp, pqp = qa[todo], pa[todo], qp[todo], pqp[todo]
            for i in range(c):
                qii = qa[:, i, i]
                diff = ((-qp[:, i] + pqp) / qii).astype(f32)
                pa[:, i] += diff
                one = f32(1) + diff
                pqp = ((pqp + diff * (diff * qii + f32(2) * qp[:, i])) / one / one).astype(f32)
                qp = ((qp + diff[:, None] * qa[:, i, :]) / one[:, None]).astype(f32)
                pa = (pa / one[:, None]).astype(f32)
            p[active] = pa
    return p


@kernel("SVMClassifier", versions=(1,), domain=_ML)
def svm_classifier(X: np.ndarray, *, classlabels_ints: Sequence[int] | None = None,
                   classlabels_strings: Sequence[str] | None = None,
                   coefficients: Sequence[float] | None = None,
                   kernel_params: Sequence[float] | None = None, kernel_type: str = "LINEAR",
                   post_transform: str = "NONE", prob_a: Sequence[float] | None = None,
                   prob_b: Sequence[float] | None = None, rho: Sequence[float] | None = None,
                   support_vectors: Sequence[float] | None = None,
                   vectors_per_class: Sequence[int] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Y[N] = predicted class, Z = class probabilities (with prob_a/prob_b), else the scores.

    With support vectors this is libsvm's one-vs-one SVC: one decision value per class pair,
    the label by majority vote (ties to the lower class index), and with prob_a/prob_b the
    Platt-scaled pairwise probabilities coupled into class probabilities. Without support
    vectors it is a linear model (liblinear): one score per class, the label the best score.
    """
    op = "SVMClassifier"
    transform = check_post_transform(op, post_transform)
    gamma, coef0, degree = _kernel_params(op, kernel_type, kernel_params)
    labels = _class_labels(op, classlabels_ints, classlabels_strings, "classlabels_ints")
    if not labels:
        raise ExecutionError(f"{op}: one of classlabels_ints or classlabels_strings must be set")
    x = _float_input(op, X)
    n, n_features = x.shape
    n_classes = len(labels)
    coef = attr_array(coefficients, np.float32)
    if coef.size == 0:
        raise ExecutionError(f"{op}: coefficients must be set")
    rho_a = attr_array(rho, np.float32)
    pa, pb = attr_array(prob_a, np.float32), attr_array(prob_b, np.float32)
    if pa.size != pb.size:
        raise ExecutionError(f"{op}: prob_a has {pa.size} values but prob_b has {pb.size}")
    have_proba = pa.size > 0
    per_class = attr_array(vectors_per_class, np.int64)
    n_vectors = int(per_class.sum())
    all_positive = bool((coef >= 0).all())
    n_pairs = n_classes * (n_classes - 1) // 2
    votes = None
    if n_vectors > 0:
        if per_class.size != n_classes:
            raise ExecutionError(f"{op}: vectors_per_class has {per_class.size} entries for "
                                 f"{n_classes} classes")
        sv = _weights(op, support_vectors, n_vectors, n_features, "support_vectors")
        if coef.size != (n_classes - 1) * n_vectors:
            raise ExecutionError(f"{op}: coefficients has {coef.size} values, expected "
                                 f"(classes - 1) * vectors = {(n_classes - 1) * n_vectors}")
        if rho_a.size < n_pairs:
            raise ExecutionError(f"{op}: rho has {rho_a.size} values for {n_pairs} class pairs")
        if have_proba and pa.size < n_pairs:
            raise ExecutionError(f"{op}: prob_a has {pa.size} values for {n_pairs} class pairs")
        k = _kernel(x, sv, kernel_type, gamma, coef0, degree)
        cmat = coef.reshape(n_classes - 1, n_vectors)
        start = np.concatenate([[0], np.cumsum(per_class)])
        scores = np.zeros((n, n_pairs), np.float32)
        votes = np.zeros((n, n_classes), np.int64)
        pair = 0
        for i in range(n_classes - 1):
            si = slice(start[i], start[i + 1])
            for j in range(i + 1, n_classes):
                sj = slice(start[j], start[j + 1])
                # float32 products summed in double, as libsvm-style loops do.
                total = ((k[:, si] * cmat[j - 1, si]).astype(np.float64).sum(axis=1)
                         + (k[:, sj] * cmat[i, sj]).astype(np.float64).sum(axis=1)
                         + float(rho_a[pair]))
                scores[:, pair] = total
                votes[:, i] += total > 0
                votes[:, j] += total <= 0
                pair += 1
        if have_proba:
            r = np.zeros((n, n_classes, n_classes), np.float32)
            pair = 0
            for i in range(n_classes - 1):
                for j in range(i + 1, n_classes):
                    v = np.float32(1) - logistic(scores[:, pair] * pa[pair] + pb[pair])
                    v = np.clip(v, np.float32(1e-7), np.float32(1 - 1e-7)).astype(np.float32)
                    r[:, i, j] = v
                    r[:, j, i] = np.float32(1) - v
                    pair += 1
            z = _transform(_pairwise_coupling(r), transform)
        elif n_classes <= 2:
            s = scores[:, 0]
            if transform == "PROBIT":
                z = np.stack([probit(s), np.zeros_like(s)], axis=1)
            elif transform == "NONE":
                z = np.stack([-s, s], axis=1)
            else:
                z = np.stack([np.float32(1) - s, s], axis=1)
            z = z.astype(np.float32)
        else:
            z = _transform(scores, transform)
        maxclass = np.argmax(votes, axis=1)
        max_weight = np.zeros(n, np.float32)
    else:
        w = _weights(op, coefficients, n_classes, n_features, "coefficients")
        bias = np.float32(rho_a[0]) if rho_a.size else np.float32(0)
        raw = (x @ w.T + bias).astype(np.float32)
        maxclass = np.argmax(raw, axis=1)
        max_weight = raw[np.arange(n), maxclass] if n else np.zeros(0, np.float32)
        z = _transform(raw, transform)
    if n_pairs == 1 and not have_proba:
        # Two classes scored by one decision value (onnxruntime's binary convention).
        second = ((all_positive & (max_weight >= 0.5)) | ((max_weight > 0) & (not all_positive)))
        maxclass = np.where(second, 1, maxclass)
    return labels_array(labels, maxclass), z


@kernel("SVMRegressor", versions=(1,), domain=_ML)
def svm_regressor(X: np.ndarray, *, coefficients: Sequence[float] | None = None,
                  kernel_params: Sequence[float] | None = None, kernel_type: str = "LINEAR",
                  n_supports: int = 0, one_class: int = 0, post_transform: str = "NONE",
                  rho: Sequence[float] | None = None,
                  support_vectors: Sequence[float] | None = None) -> tuple[np.ndarray]:
    """Y[N, 1] = sum_v coefficients[v] * K(x, sv_v) + rho[0]; one_class maps it to +1 / -1.

    With ``n_supports`` = 0 the model is linear: Y = X @ coefficients + rho[0].
    """
    op = "SVMRegressor"
    transform = check_post_transform(op, post_transform)
    gamma, coef0, degree = _kernel_params(op, kernel_type, kernel_params)
    x = _float_input(op, X)
    n_features = x.shape[1]
    rho_a = attr_array(rho, np.float32)
    bias = np.float64(rho_a[0]) if rho_a.size else np.float64(0)
    n_vectors = int(n_supports)
    if n_vectors > 0:
        sv = _weights(op, support_vectors, n_vectors, n_features, "support_vectors")
        c = _weights(op, coefficients, 1, n_vectors, "coefficients")[0]
        k = _kernel(x, sv, kernel_type, gamma, coef0, degree)
        y = (k @ c + np.float32(bias)).astype(np.float32)
    else:
        c = _weights(op, coefficients, 1, n_features, "coefficients")[0]
        y = (x @ c + np.float32(bias)).astype(np.float32)
    y = y.reshape(-1, 1)
    if one_class:
        y = np.where(y > 0, np.float32(1), np.float32(-1)).astype(np.float32)
    return (_transform(y, transform),)
