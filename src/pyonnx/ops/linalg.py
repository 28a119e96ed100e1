"""Linear algebra kernels: MatMul, Gemm, MatMulInteger, Einsum, Det.

Everything that multiplies matrices ends in one BLAS call through ``np.matmul``: the 16-bit float
types compute in float32 (NumPy has no BLAS for them) and round once at the end; integer products
of 8-bit quantized values are summed in a float type in which they are exact. Einsum maps every
two-operand contraction onto one batched ``np.matmul`` (transposes and reshapes around it) instead
of NumPy's element loop, and validates the equation itself so that a mistake is named.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import as_matrix, check_alloc, compute_dtype, prod
from pyonnx.ops.registry import KernelContext, kernel


def _float_compute(dtype: np.dtype) -> np.dtype:
    """The type a product is computed in: float32 for 16-bit floats, the type itself otherwise."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        return dtype
    return compute_dtype(dtype)


def _broadcast_batch(a: tuple[int, ...], b: tuple[int, ...], what: str) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ExecutionError(f"{what}: batch dimensions {list(a)} and {list(b)} cannot be "
                             f"broadcast together") from None


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...], op: str) -> tuple[int, ...]:
    """Output shape of numpy-style matmul, or an error that names the mismatch."""
    if len(a) == 0 or len(b) == 0:
        raise ExecutionError(f"{op}: inputs must have rank >= 1, got shapes {list(a)} and "
                             f"{list(b)}")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ExecutionError(f"{op}: the inner dimensions do not match: A has shape {list(a)} "
                             f"(K = {a2[-1]}) and B has shape {list(b)} (K = {b2[-2]})")
    batch = _broadcast_batch(a2[:-2], b2[:-2], op)
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


# --------------------------------------------------------------------------------------------
# MatMul
# --------------------------------------------------------------------------------------------

@kernel("MatMul", versions=(1, 9, 13))
def matmul(A: np.ndarray, B: np.ndarray, *, ctx: KernelContext | None = None
           ) -> tuple[np.ndarray]:
    """Y = A @ B with NumPy matmul semantics (1-D operands promoted, batch dims broadcast)."""
    if A.dtype != B.dtype:
        raise ExecutionError(f"MatMul: A is {A.dtype} and B is {B.dtype}; they must be the same")
    shape = _matmul_shape(A.shape, B.shape, "MatMul")
    if ctx is not None:
        check_alloc(shape, A.dtype, ctx.max_tensor_bytes, "MatMul output")
    cdt = _float_compute(A.dtype)
    y = _matmul(A.astype(cdt, copy=False), B.astype(cdt, copy=False))
    return (np.asarray(y).astype(A.dtype, copy=False),)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul, with a stack of matrices times one matrix done as one GEMM.

    (B, M, K) @ (K, N) is (B*M, K) @ (K, N): NumPy would make B separate BLAS calls, each too
    small to use the cores well (the projections of a transformer batch).
    """
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
        return np.matmul(as_matrix(a, a.ndim - 1), b).reshape(a.shape[:-1] + (b.shape[-1],))
    return np.matmul(a, b)


# --------------------------------------------------------------------------------------------
# Gemm
# --------------------------------------------------------------------------------------------

def _scale(y: np.ndarray, factor: float) -> np.ndarray:
    """y * factor keeping y's type (integers: exact when factor is integral)."""
    if factor == 1.0:
        return y
    if y.dtype.kind in "iu":
        if float(factor).is_integer():
            return y * y.dtype.type(int(factor))
        return (y.astype(np.float64) * factor).astype(y.dtype)
    y *= y.dtype.type(factor)
    return y


@kernel("Gemm", versions=(1, 6))
def gemm_legacy(A: np.ndarray, B: np.ndarray, C: np.ndarray | None = None, *, alpha: float = 1.0,
                beta: float = 1.0, broadcast: int = 0, transA: int = 0, transB: int = 0,
                ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Gemm before version 7: C must be (M, N) unless broadcast=1 asks to broadcast it."""
    return _gemm(A, B, C, float(alpha), float(beta), int(transA), int(transB), int(broadcast),
                 ctx)


@kernel("Gemm", versions=(7, 9, 11, 13))
def gemm(A: np.ndarray, B: np.ndarray, C: np.ndarray | None = None, *, alpha: float = 1.0,
         beta: float = 1.0, transA: int = 0, transB: int = 0,
         ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Y = alpha * A' @ B' + beta * C, A' = A or A.T (transA), B' likewise; C (optional from
    version 11) is broadcast to (M, N) in one direction."""
    return _gemm(A, B, C, float(alpha), float(beta), int(transA), int(transB), None, ctx)


def _gemm(A: np.ndarray, B: np.ndarray, C: np.ndarray | None, alpha: float, beta: float,
          transA: int, transB: int, broadcast: int | None, ctx: KernelContext | None,
          product: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.matmul
          ) -> tuple[np.ndarray]:
    """Gemm's checks and arithmetic; ``product(a, b)`` computes A' @ B' (an execution provider
    may pass its own, e.g. for the matrix-vector form)."""
    if A.ndim != 2 or B.ndim != 2:
        raise ExecutionError(f"Gemm: A and B must be 2-D matrices, got shapes {list(A.shape)} and "
                             f"{list(B.shape)}")
    if A.dtype != B.dtype:
        raise ExecutionError(f"Gemm: A is {A.dtype} and B is {B.dtype}; they must be the same")
    a = A.T if transA else A
    b = B.T if transB else B
    if a.shape[1] != b.shape[0]:
        raise ExecutionError(f"Gemm: A{'.T' if transA else ''} has shape {list(a.shape)} and "
                             f"B{'.T' if transB else ''} has shape {list(b.shape)}; the inner "
                             f"dimensions {a.shape[1]} and {b.shape[0]} must be equal")
    m, n = a.shape[0], b.shape[1]
    if ctx is not None:
        check_alloc((m, n), A.dtype, ctx.max_tensor_bytes, "Gemm output")
    if C is not None:
        if broadcast is not None and not broadcast and tuple(C.shape) != (m, n):
            # Versions 1 and 6: without broadcast=1, C must already be (M, N).
            raise ExecutionError(f"Gemm: C has shape {list(C.shape)} but broadcast is 0, so it "
                                 f"must be exactly {[m, n]} (set broadcast=1 to broadcast it)")
        if C.ndim > 2 or any(cd not in (1, od) for cd, od in
                             zip(C.shape[::-1], (n, m))):
            raise ExecutionError(f"Gemm: C of shape {list(C.shape)} cannot be broadcast to the "
                                 f"output shape {[m, n]}")
    cdt = _float_compute(A.dtype)
    y = product(a.astype(cdt, copy=False), b.astype(cdt, copy=False))
    y = _scale(y, alpha)
    if C is not None and beta != 0.0:
        c = C.astype(cdt, copy=False)
        if beta == 1.0:
            y += c
        elif cdt.kind in "iu":
            y = y + _scale(c.copy(), beta)
        else:
            y += c * cdt.type(beta)
    return (np.asarray(y).astype(A.dtype, copy=False),)


# --------------------------------------------------------------------------------------------
# MatMulInteger
# --------------------------------------------------------------------------------------------

def _mmi_zero_point(zp: np.ndarray | None, name: str, x: np.ndarray, per_axis: int,
                    per_len: int) -> np.ndarray:
    """A zero point as int32 broadcastable against x: scalar, 1-D per row/column, or N-D."""
    if zp is None:
        return np.zeros((), np.int32)
    zp = np.asarray(zp)
    if zp.dtype.kind not in "iu":
        raise ExecutionError(f"MatMulInteger: {name} must be an integer tensor, got {zp.dtype}")
    z = zp.astype(np.int32)
    if z.size == 1 and z.ndim <= 1:
        return z.reshape(())
    if z.ndim == 1:
        if z.shape[0] != per_len:
            raise ExecutionError(f"MatMulInteger: {name} has {z.shape[0]} values; a 1-D zero point "
                                 f"needs {per_len} (one per {'row of A' if per_axis == -2 else 'column of B'})")
        return z.reshape(-1, 1) if per_axis == -2 else z
    try:
        np.broadcast_shapes(z.shape, x.shape)
    except ValueError:
        raise ExecutionError(f"MatMulInteger: {name} of shape {list(z.shape)} does not broadcast "
                             f"against the input of shape {list(x.shape)}") from None
    return z


@kernel("MatMulInteger", versions=(10,))
def matmul_integer(A: np.ndarray, B: np.ndarray, a_zero_point: np.ndarray | None = None,
                   b_zero_point: np.ndarray | None = None, *, ctx: KernelContext | None = None
                   ) -> tuple[np.ndarray]:
    """Y (int32) = (A - a_zero_point) @ (B - b_zero_point), matmul semantics."""
    for nm, t in (("A", A), ("B", B)):
        if t.dtype not in (np.int8, np.uint8):
            raise ExecutionError(f"MatMulInteger: {nm} must be int8 or uint8, got {t.dtype}")
    shape = _matmul_shape(A.shape, B.shape, "MatMulInteger")
    if ctx is not None:
        check_alloc(shape, np.int32, ctx.max_tensor_bytes, "MatMulInteger output")
    rows = A.shape[-2] if A.ndim >= 2 else 1
    cols = B.shape[-1] if B.ndim >= 2 else 1
    az = _mmi_zero_point(a_zero_point, "a_zero_point", A, -2, rows)
    bz = _mmi_zero_point(b_zero_point, "b_zero_point", B, -1, cols)
    a = A.astype(np.int32) - (az if A.ndim >= 2 or az.ndim == 0 else az.reshape(-1))
    b = B.astype(np.int32) - bz
    k = A.shape[-1]
    amax = int(np.abs(a).max()) if a.size else 0
    bmax = int(np.abs(b).max()) if b.size else 0
    ft = np.float32 if k * amax * bmax <= (1 << 24) else np.float64
    y = _matmul(a.astype(ft), b.astype(ft))
    return (np.asarray(np.rint(y)).astype(np.int32),)


# --------------------------------------------------------------------------------------------
# Einsum
# --------------------------------------------------------------------------------------------

def _parse_term(term: str, which: str) -> tuple[list[str], bool]:
    """Letters of one term, with '...' kept as one '.' entry; checks the characters."""
    labels: list[str] = []
    i, ell = 0, False
    while i < len(term):
        ch = term[i]
        if ch == ".":
            if term[i:i + 3] != "...":
                raise ExecutionError(f"Einsum: {which} {term!r} has a '.' that is not part of "
                                     f"an ellipsis '...'")
            if ell:
                raise ExecutionError(f"Einsum: {which} {term!r} has more than one ellipsis")
            ell = True
            labels.append(".")
            i += 3
            continue
        if not (ch.isascii() and ch.isalpha()):
            raise ExecutionError(f"Einsum: {which} {term!r} contains {ch!r}; subscripts must be "
                                 f"letters a-z, A-Z (or '...')")
        labels.append(ch)
        i += 1
    return labels, ell


def _einsum_plan(equation: str, shapes: list[tuple[int, ...]]
                 ) -> tuple[list[list[str]], list[str], dict[str, int]]:
    """Validate the equation against the input shapes and make it explicit.

    Returns the labels of each input and of the output, with the ellipsis expanded into labels
    '0', '1', ... (digits never clash with letters), and each label's size.
    """
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        raise ExecutionError(f"Einsum: equation {equation!r} has more than one '->'")
    lhs, arrow, rhs = eq.partition("->")
    if "-" in lhs or ">" in lhs or "-" in rhs or ">" in rhs:
        raise ExecutionError(f"Einsum: equation {equation!r} has a stray '-' or '>'")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ExecutionError(f"Einsum: equation {equation!r} has {len(terms)} input terms but "
                             f"the node has {len(shapes)} inputs")
    ell_rank: int | None = None
    in_labels: list[list[str]] = []
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    for t, (term, shape) in enumerate(zip(terms, shapes)):
        labels, ell = _parse_term(term, f"term {t}")
        letters = [c for c in labels if c != "."]
        if ell:
            r = len(shape) - len(letters)
            if r < 0:
                raise ExecutionError(f"Einsum: term {t} {term!r} names {len(letters)} axes but "
                                     f"input {t} has rank {len(shape)}")
            if ell_rank is not None and r != ell_rank:
                raise ExecutionError(f"Einsum: the ellipsis stands for {ell_rank} axes in one "
                                     f"term and {r} in term {t} {term!r}; it must stand for the "
                                     f"same number everywhere")
            ell_rank = r
        elif len(letters) != len(shape):
            raise ExecutionError(f"Einsum: term {t} {term!r} names {len(letters)} axes but input "
                                 f"{t} has rank {len(shape)} (shape {list(shape)})")
        expanded: list[str] = []
        for c in labels:
            if c == ".":
                expanded.extend(str(j) for j in range(ell_rank or 0))
            else:
                expanded.append(c)
        for c, dim in zip(expanded, shape):
            prev = sizes.get(c)
            if prev is None or prev == 1:
                sizes[c] = int(dim)
            elif dim != prev and dim != 1:
                raise ExecutionError(f"Einsum: subscript {c!r} has size {prev} in one place and "
                                     f"{dim} in term {t} {term!r} (input shape {list(shape)})")
        for c in set(letters):
            counts[c] = counts.get(c, 0) + letters.count(c)
        in_labels.append(expanded)
    ell_labels = [str(j) for j in range(ell_rank or 0)]
    if arrow:
        out, ell_out = _parse_term(rhs, "output term")
        letters = [c for c in out if c != "."]
        for c in letters:
            if c not in counts:
                raise ExecutionError(f"Einsum: output subscript {c!r} does not appear in any "
                                     f"input term of {equation!r}")
        if len(set(letters)) != len(letters):
            raise ExecutionError(f"Einsum: output term {rhs!r} repeats a subscript")
        if ell_rank and not ell_out:
            raise ExecutionError(f"Einsum: the inputs use an ellipsis but the output term {rhs!r} "
                                 f"does not; add '...' to the output")
        out_labels: list[str] = []
        for c in out:
            out_labels.extend(ell_labels if c == "." else [c])
    else:
        # Implicit form: the letters that appear exactly once, in ASCII order, after the ellipsis.
        out_labels = ell_labels + sorted(c for c, k in counts.items() if k == 1)
    return in_labels, out_labels, sizes


def _einsum_two(a: np.ndarray, la: list[str], b: np.ndarray, lb: list[str], lo: list[str]
                ) -> np.ndarray | None:
    """A two-operand einsum as one batched matmul, or None when it is not one (a subscript
    repeated inside a term, or a contracted subscript that broadcasts)."""
    if len(set(la)) != len(la) or len(set(lb)) != len(lb):
        return None
    sa, sb, so = set(la), set(lb), set(lo)
    # Sum away what only one operand has and the output does not.
    a_only = [c for c in la if c not in sb and c not in so]
    if a_only:
        a = a.sum(axis=tuple(la.index(c) for c in a_only))
        la = [c for c in la if c not in a_only]
    b_only = [c for c in lb if c not in sa and c not in so]
    if b_only:
        b = b.sum(axis=tuple(lb.index(c) for c in b_only))
        lb = [c for c in lb if c not in b_only]
    sa, sb = set(la), set(lb)
    batch = [c for c in lo if c in sa and c in sb]
    contract = [c for c in la if c in sb and c not in so]
    keep_a = [c for c in la if c in so and c not in sb]
    keep_b = [c for c in lb if c in so and c not in sa]
    if any(a.shape[la.index(c)] != b.shape[lb.index(c)] for c in contract):
        return None
    a_t = a.transpose([la.index(c) for c in batch + keep_a + contract])
    b_t = b.transpose([lb.index(c) for c in batch + contract + keep_b])
    nb = len(batch)
    ka = a_t.shape[nb:nb + len(keep_a)]
    kb = b_t.shape[nb + len(contract):]
    kc = prod(a_t.shape[nb + len(keep_a):])
    a2 = a_t.reshape(a_t.shape[:nb] + (prod(ka), kc))
    b2 = b_t.reshape(b_t.shape[:nb] + (kc, prod(kb)))
    y = np.matmul(a2, b2)
    y = y.reshape(y.shape[:nb] + tuple(ka) + tuple(kb))
    cur = batch + keep_a + keep_b
    return y.transpose([cur.index(c) for c in lo])


@kernel("Einsum", versions=(12, 28))
def einsum(*Inputs: np.ndarray, equation: str, ctx: KernelContext | None = None
           ) -> tuple[np.ndarray]:
    """Output = the Einstein summation that ``equation`` describes over the inputs."""
    if not Inputs:
        raise ExecutionError("Einsum: needs at least one input")
    dt = Inputs[0].dtype
    for i, x in enumerate(Inputs):
        if x.dtype != dt:
            raise ExecutionError(f"Einsum: input {i} is {x.dtype} but input 0 is {dt}; all inputs "
                                 f"must have the same type")
    in_labels, out_labels, sizes = _einsum_plan(equation, [x.shape for x in Inputs])
    if ctx is not None:
        check_alloc([sizes[c] for c in out_labels], dt, ctx.max_tensor_bytes, "Einsum output")
    cdt = _float_compute(dt)
    ops = [x.astype(cdt, copy=False) for x in Inputs]
    y = None
    if len(ops) == 2:
        y = _einsum_two(ops[0], in_labels[0], ops[1], in_labels[1], out_labels)
    if y is None:
        # NumPy's subscripts: map every label (letters and ellipsis digits) to a letter.
        alphabet = sorted({c for labels in in_labels for c in labels})
        letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        if len(alphabet) > len(letters):
            raise ExecutionError(f"Einsum: equation {equation!r} uses more than {len(letters)} "
                                 f"distinct axes")
        name = dict(zip(alphabet, letters))
        spec = ",".join("".join(name[c] for c in labels) for labels in in_labels) + "->" + \
            "".join(name[c] for c in out_labels)
        y = np.einsum(spec, *ops, optimize=len(ops) > 2)
    y = np.asarray(y)
    if not y.flags.c_contiguous:
        y = y.copy()  # (np.ascontiguousarray would turn a 0-d result into shape (1,))
    return (y.astype(dt, copy=False),)


# --------------------------------------------------------------------------------------------
# Det
# --------------------------------------------------------------------------------------------

@kernel("Det", versions=(11, 22))
def det(X: np.ndarray) -> tuple[np.ndarray]:
    """Y[...] = determinant of each square matrix X[..., :, :]."""
    if X.ndim < 2 or X.shape[-1] != X.shape[-2]:
        raise ExecutionError(f"Det: input must be square matrices (..., M, M), got shape "
                             f"{list(X.shape)}")
    cdt = _float_compute(X.dtype)
    y = np.linalg.det(X.astype(cdt, copy=False))
    return (np.asarray(y).astype(X.dtype, copy=False),)
