"""Contrib quantized operators (com.microsoft): QLinearAdd, QLinearMul, QLinearSigmoid,
QLinearLeakyRelu, QLinearConcat, QLinearAveragePool, QLinearGlobalAveragePool, QuantizeLinear,
DequantizeLinear, DynamicQuantizeLSTM and GatherBlockQuantized (a Gather from a block-quantized
table, the embedding of weight-only quantized language models).

Every operator dequantizes, computes in float32 and requantizes with round-half-to-even and
saturation, with onnxruntime's order of float operations (a scale ratio first) so that results
agree bit for bit away from exact rounding ties.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ir import DataType
from pyonnx.ops._quantization import INT_RANGES
from pyonnx.ops._common import check_alloc, normalize_axis
from pyonnx.ops._elementwise import FLOAT_TYPES
from pyonnx.ops.contrib.matmul import _unpack_bits  # MatMulNBits's little-end-first packing
from pyonnx.ops._conv import kernel_offsets, offset_slices, pad_spatial, resolve_window
from pyonnx.ops.quantization import dequantize_linear as _onnx_dequantize
from pyonnx.ops.quantization import dynamic_quantize_linear
from pyonnx.ops.quantization import quantize_linear as _onnx_quantize
from pyonnx.ops.registry import KernelContext, kernel

MS = "com.microsoft"
_Q8 = (np.dtype(np.uint8), np.dtype(np.int8))
F32 = np.float32


def _check_q8(op: str, x: np.ndarray, what: str) -> None:
    if x.dtype not in _Q8:
        raise ExecutionError(f"{op}: {what} must be uint8 or int8, got {x.dtype}")


def _scale(op: str, s: np.ndarray, what: str) -> np.float32:
    s = np.asarray(s)
    if s.size != 1 or s.ndim > 1:
        raise ExecutionError(f"{op}: {what} must be a scalar (per-tensor), got shape {s.shape}")
    return F32(s.reshape(()))


def _zero_point(op: str, zp: np.ndarray | None, dtype: np.dtype, what: str) -> np.float32:
    if zp is None:
        return F32(0)
    zp = np.asarray(zp)
    if zp.size != 1 or zp.ndim > 1:
        raise ExecutionError(f"{op}: {what} must be a scalar (per-tensor), got shape {zp.shape}")
    if zp.dtype != dtype:
        raise ExecutionError(f"{op}: {what} is {zp.dtype} but the data is {dtype}")
    return F32(zp.reshape(()))


def _requantize(v: np.ndarray, zp: np.float32, dtype: np.dtype) -> np.ndarray:
    """round_half_even(v) + zp, saturated to ``dtype``."""
    lo, hi = INT_RANGES[np.dtype(dtype)]
    y = np.asarray(np.rint(v))  # an array for a 0-d v, so that out= takes it
    y += zp
    np.clip(y, lo, hi, out=y)
    return y.astype(dtype)


def _lookup(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a function of an 8-bit value through a 256-entry table (what it computes for each
    possible input), which is both exact and fast. (Indexing with a 0-d x gives a NumPy scalar,
    hence the asarray.)"""
    if x.dtype == np.uint8:
        table = fn(np.arange(256, dtype=np.uint8))
        return np.asarray(table[x])
    table = fn(np.arange(-128, 128, dtype=np.int16).astype(np.int8))
    return np.asarray(table[x.astype(np.int16) + 128])


def _unary(op: str, X: np.ndarray, X_scale: np.ndarray, X_zero_point: np.ndarray | None,
           Y_scale: np.ndarray, Y_zero_point: np.ndarray | None,
           f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    _check_q8(op, X, "X")
    xs, xz = _scale(op, X_scale, "X_scale"), _zero_point(op, X_zero_point, X.dtype, "X_zero_point")
    ys, yz = _scale(op, Y_scale, "Y_scale"), _zero_point(op, Y_zero_point, X.dtype, "Y_zero_point")

    def table(q: np.ndarray) -> np.ndarray:
        v = (q.astype(F32) - xz) * xs
        with np.errstate(over="ignore"):
            return _requantize(f(v) / ys, yz, X.dtype)

    return _lookup(X, table)


@kernel("QLinearSigmoid", versions=(1,), domain=MS)
def qlinear_sigmoid(X: np.ndarray, X_scale: np.ndarray, X_zero_point: np.ndarray | None,
                    Y_scale: np.ndarray, Y_zero_point: np.ndarray | None = None
                    ) -> tuple[np.ndarray]:
    """Y = quantize(sigmoid(dequantize(X)))."""
    return (_unary("QLinearSigmoid", X, X_scale, X_zero_point, Y_scale, Y_zero_point,
                   lambda v: F32(1) / (F32(1) + np.exp(-v))),)


@kernel("QLinearLeakyRelu", versions=(1,), domain=MS)
def qlinear_leaky_relu(X: np.ndarray, X_scale: np.ndarray, X_zero_point: np.ndarray | None,
                       Y_scale: np.ndarray, Y_zero_point: np.ndarray | None = None, *,
                       alpha: float = 0.01) -> tuple[np.ndarray]:
    """Y = quantize(leaky_relu(dequantize(X), alpha))."""
    a = F32(alpha)
    return (_unary("QLinearLeakyRelu", X, X_scale, X_zero_point, Y_scale, Y_zero_point,
                   lambda v: np.where(v >= 0, v, v * a)),)


def _binary_params(op: str, A: np.ndarray, A_scale: np.ndarray, A_zero_point: np.ndarray | None,
                   B: np.ndarray, B_scale: np.ndarray, B_zero_point: np.ndarray | None,
                   C_scale: np.ndarray, C_zero_point: np.ndarray | None) -> tuple:
    _check_q8(op, A, "A")
    if B.dtype != A.dtype:
        raise ExecutionError(f"{op}: B is {B.dtype} but A is {A.dtype}; they must match")
    try:
        np.broadcast_shapes(A.shape, B.shape)
    except ValueError:
        raise ExecutionError(f"{op}: A {A.shape} and B {B.shape} do not broadcast") from None
    return (_scale(op, A_scale, "A_scale"), _zero_point(op, A_zero_point, A.dtype, "A_zero_point"),
            _scale(op, B_scale, "B_scale"), _zero_point(op, B_zero_point, A.dtype, "B_zero_point"),
            _scale(op, C_scale, "C_scale"), _zero_point(op, C_zero_point, A.dtype, "C_zero_point"))


@kernel("QLinearAdd", versions=(1,), domain=MS)
def qlinear_add(A: np.ndarray, A_scale: np.ndarray, A_zero_point: np.ndarray | None,
                B: np.ndarray, B_scale: np.ndarray, B_zero_point: np.ndarray | None,
                C_scale: np.ndarray, C_zero_point: np.ndarray | None = None) -> tuple[np.ndarray]:
    """C = quantize(dequantize(A) + dequantize(B)), NumPy broadcasting."""
    sa, za, sb, zb, sc, zc = _binary_params("QLinearAdd", A, A_scale, A_zero_point, B, B_scale,
                                            B_zero_point, C_scale, C_zero_point)
    v = (A.astype(F32) - za) * (sa / sc)
    v = v + (B.astype(F32) - zb) * (sb / sc)
    return (_requantize(v, zc, A.dtype),)


@kernel("QLinearMul", versions=(1,), domain=MS)
def qlinear_mul(A: np.ndarray, A_scale: np.ndarray, A_zero_point: np.ndarray | None,
                B: np.ndarray, B_scale: np.ndarray, B_zero_point: np.ndarray | None,
                C_scale: np.ndarray, C_zero_point: np.ndarray | None = None) -> tuple[np.ndarray]:
    """C = quantize(dequantize(A) * dequantize(B)), NumPy broadcasting."""
    sa, za, sb, zb, sc, zc = _binary_params("QLinearMul", A, A_scale, A_zero_point, B, B_scale,
                                            B_zero_point, C_scale, C_zero_point)
    v = (A.astype(F32) - za) * (B.astype(F32) - zb)
    v *= sa * sb / sc
    return (_requantize(v, zc, A.dtype),)


@kernel("QLinearConcat", versions=(1,), domain=MS)
def qlinear_concat(Y_scale: np.ndarray, Y_zero_point: np.ndarray, *inputs: np.ndarray,
                   axis: int) -> tuple[np.ndarray]:
    """Concatenate quantized tensors along ``axis``, each requantized from its own
    (scale, zero point) to Y's; ``inputs`` is (tensor, scale, zero point) triples."""
    op = "QLinearConcat"
    if not inputs or len(inputs) % 3:
        raise ExecutionError(f"{op}: inputs must be (tensor, scale, zero point) triples, got "
                             f"{len(inputs)} inputs after Y_scale and Y_zero_point")
    yzp_arr = np.asarray(Y_zero_point)
    _check_q8(op, yzp_arr, "Y_zero_point")
    dtype = yzp_arr.dtype
    ys, yz = _scale(op, Y_scale, "Y_scale"), _zero_point(op, yzp_arr, dtype, "Y_zero_point")
    parts = []
    for i in range(0, len(inputs), 3):
        x, s, z = inputs[i:i + 3]
        if x.dtype != dtype:
            raise ExecutionError(f"{op}: input {i // 3} is {x.dtype} but Y is {dtype}")
        xs, xz = _scale(op, s, f"scale of input {i // 3}"), \
            _zero_point(op, z, dtype, f"zero point of input {i // 3}")
        if xs == ys and xz == yz:
            parts.append(x)
        else:
            parts.append(_lookup(x, lambda q, xs=xs, xz=xz: _requantize(
                (q.astype(F32) - xz) * xs / ys, yz, dtype)))
    rank = parts[0].ndim
    if not -rank <= axis < rank:
        raise ExecutionError(f"{op}: axis {axis} is out of range for rank {rank}")
    try:
        return (np.concatenate(parts, axis=axis),)
    except ValueError as e:
        raise ExecutionError(f"{op}: inputs cannot be concatenated on axis {axis}: "
                             f"{[p.shape for p in parts]}") from e


@kernel("QLinearAveragePool", versions=(1,), domain=MS)
def qlinear_average_pool(X: np.ndarray, x_scale: np.ndarray, x_zero_point: np.ndarray | None,
                         y_scale: np.ndarray, y_zero_point: np.ndarray | None = None, *,
                         kernel_shape: Sequence[int], auto_pad: str = "NOTSET",
                         ceil_mode: int = 0, channels_last: int = 0, count_include_pad: int = 0,
                         pads: Sequence[int] | None = None, strides: Sequence[int] | None = None,
                         ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Y = quantize(AveragePool(dequantize(X))), NCHW or (channels_last) NHWC.

    As in onnxruntime, each window sums its dequantized values in row-major order (the float
    sum then rounds the same way), with count_include_pad divides by the full kernel size, and
    rounds after adding the zero point.
    """
    op = "QLinearAveragePool"
    _check_q8(op, X, "X")
    xs, xz = _scale(op, x_scale, "x_scale"), _zero_point(op, x_zero_point, X.dtype, "x_zero_point")
    ys, yz = _scale(op, y_scale, "y_scale"), _zero_point(op, y_zero_point, X.dtype, "y_zero_point")
    if X.ndim < 3:
        raise ExecutionError(f"{op}: X must have a batch, a channel and spatial axes, got shape "
                             f"{X.shape}")
    if not kernel_shape:
        raise ExecutionError(f"{op}: the kernel_shape attribute is required")
    x = (X.astype(F32) - xz) * xs
    if channels_last:
        x = np.moveaxis(x, -1, 1)
    win = resolve_window(x.shape[2:], kernel_shape, strides=strides, pads=pads,
                         auto_pad=auto_pad, ceil_mode=ceil_mode)
    if ctx is not None:
        check_alloc(x.shape[:2] + win.out, F32, ctx.max_tensor_bytes, f"{op} output")
    xp = pad_spatial(x, win, 0.0)
    acc = np.zeros(x.shape[:2] + win.out, F32)
    lead = (slice(None), slice(None))
    for off in kernel_offsets(win.kernel):
        acc += xp[lead + offset_slices(off, win)]
    if count_include_pad:
        count = F32(np.prod(win.kernel))
    else:
        count = np.ones((), F32)
        for ax in range(win.ndim):
            start = np.arange(win.out[ax]) * win.strides[ax] - win.pads_begin[ax]
            end = np.minimum(start + win.effective_kernel[ax], win.in_shape[ax])
            n_ax = ((end - 1 - np.maximum(start, 0)) // win.dilations[ax] + 1) if win.dilations[ax] > 1 \
                else end - np.maximum(start, 0)
            count = np.multiply.outer(count, np.maximum(n_ax, 1).astype(F32))
    y = acc / count
    if channels_last:
        y = np.moveaxis(y, 1, -1)
    # onnxruntime adds the zero point before rounding here (it matters on exact .5 ties).
    y = y / ys
    y += yz
    lo, hi = INT_RANGES[X.dtype]
    return (np.clip(np.rint(y), lo, hi).astype(X.dtype),)


@kernel("QLinearGlobalAveragePool", versions=(1,), domain=MS)
def qlinear_global_average_pool(X: np.ndarray, x_scale: np.ndarray, x_zero_point: np.ndarray,
                                y_scale: np.ndarray, y_zero_point: np.ndarray, *,
                                channels_last: int = 0) -> tuple[np.ndarray]:
    """Y = quantize(mean of dequantize(X) over the spatial axes), spatial dims kept as 1."""
    op = "QLinearGlobalAveragePool"
    _check_q8(op, X, "X")
    xs, xz = _scale(op, x_scale, "x_scale"), _zero_point(op, x_zero_point, X.dtype, "x_zero_point")
    ys, yz = _scale(op, y_scale, "y_scale"), _zero_point(op, y_zero_point, X.dtype, "y_zero_point")
    if X.ndim < 3:
        raise ExecutionError(f"{op}: X must have a batch, a channel and spatial axes, got shape "
                             f"{X.shape}")
    axes = tuple(range(1, X.ndim - 1)) if channels_last else tuple(range(2, X.ndim))
    n = int(np.prod([X.shape[a] for a in axes]))
    # Sum the integers exactly, remove the zero point once, then one float scaling.
    acc = X.astype(np.int64).sum(axis=axes, keepdims=True) - np.int64(xz) * n
    return (_requantize(acc.astype(F32) * (xs / (ys * F32(n))), yz, X.dtype),)


@kernel("QuantizeLinear", versions=(1,), domain=MS)
def quantize_linear(x: np.ndarray, y_scale: np.ndarray, y_zero_point: np.ndarray | None = None,
                    *, axis: int = 1) -> tuple[np.ndarray]:
    """y = saturate(round_half_even(x / y_scale) + y_zero_point), per tensor or per axis."""
    return _onnx_quantize(x, y_scale, y_zero_point, axis=axis)


@kernel("DequantizeLinear", versions=(1,), domain=MS)
def dequantize_linear(x: np.ndarray, x_scale: np.ndarray, x_zero_point: np.ndarray | None = None,
                      *, axis: int = 1) -> tuple[np.ndarray]:
    """y = (x - x_zero_point) * x_scale, per tensor or per axis."""
    return _onnx_dequantize(x, x_scale, x_zero_point, axis=axis)


# --- DynamicQuantizeLSTM ----------------------------------------------------------------------

def _sigmoid(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return F32(1) / (F32(1) + np.exp(-v))


def _dynamic_qgemm(a: np.ndarray, w: np.ndarray, w_scale: np.ndarray, w_zp: np.ndarray
                   ) -> np.ndarray:
    """a @ dequantize(w) as a dynamically quantized product: ``a`` is quantized to uint8 from
    its own range (DynamicQuantizeLinear), the integer product is exact, then scaled."""
    aq, a_scale, a_zp = dynamic_quantize_linear(a)
    acc = (aq.astype(np.float64) - float(a_zp)) @ (w.astype(np.float64) - w_zp.astype(np.float64))
    return acc.astype(F32) * (a_scale * w_scale)


def _lstm_param(p: np.ndarray, nd: int, cols: int, what: str) -> np.ndarray:
    """A per-direction scale or zero point: (num_directions) or (num_directions, 4 * hidden)."""
    p = np.asarray(p)
    if p.shape == (nd,):
        return p.reshape(nd, 1)
    if p.shape == (nd, cols):
        return p
    raise ExecutionError(f"DynamicQuantizeLSTM: {what} must have shape ({nd},) or ({nd}, {cols}), "
                         f"got {p.shape}")


def dynamic_quantize_lstm_kernel(weight_product: Callable[[np.ndarray, np.ndarray],
                                                          Callable[..., np.ndarray]]
                                  ) -> Callable[..., tuple]:
    """The DynamicQuantizeLSTM kernel whose products ``a @ dequantize(w)`` come from
    ``weight_product(w, zero_point)``, a function ``(a, w_scale) -> float32`` that quantizes
    ``a`` dynamically (as :func:`_dynamic_qgemm`): the reference passes its own, the CPU provider
    one that prepares the shifted weights once per call. Checks and step equations are shared."""

    def dynamic_quantize_lstm(X: np.ndarray, W: np.ndarray, R: np.ndarray,
                              B: np.ndarray | None = None, sequence_lens: np.ndarray | None = None,
                              initial_h: np.ndarray | None = None,
                              initial_c: np.ndarray | None = None, P: np.ndarray | None = None,
                              W_scale: np.ndarray | None = None, W_zero_point: np.ndarray | None = None,
                              R_scale: np.ndarray | None = None, R_zero_point: np.ndarray | None = None,
                              *, hidden_size: int | None = None, direction: str = "forward",
                              input_forget: int = 0, clip: float | None = None,
                              activations: list[str] | None = None,
                              activation_alpha: list[float] | None = None,
                              activation_beta: list[float] | None = None,
                              ctx: KernelContext | None = None) -> tuple[np.ndarray | None, ...]:
        """LSTM (gates i, o, f, c; ONNX LSTM equations) whose weights W (dirs, input, 4H) and
        R (dirs, H, 4H) are 8-bit quantized per direction or per column; the input and each step's
        hidden state are quantized dynamically to uint8 for the products, as onnxruntime does."""
        op = "DynamicQuantizeLSTM"
        if X.dtype != np.float32 or X.ndim != 3:
            raise ExecutionError(f"{op}: X must be float32 (seq_length, batch, input_size), got "
                                 f"{X.dtype} {X.shape}")
        if activations and [a.lower() for a in activations] != \
                ["sigmoid", "tanh", "tanh"] * (len(activations) // 3):
            raise UnsupportedOperatorError(f"{op}: only the default activations (Sigmoid, Tanh, Tanh) "
                                           f"are supported, got {activations}")
        dirs = {"forward": [False], "reverse": [True], "bidirectional": [False, True]}.get(direction)
        if dirs is None:
            raise ExecutionError(f"{op}: direction must be forward, reverse or bidirectional, got "
                                 f"{direction!r}")
        nd = len(dirs)
        seq, batch, in_size = X.shape
        if W.ndim != 3 or W.shape[:2] != (nd, in_size) or W.shape[2] % 4:
            raise ExecutionError(f"{op}: W must be ({nd}, input_size {in_size}, 4 * hidden), got "
                                 f"{W.shape}")
        hs = W.shape[2] // 4
        if hidden_size is not None and hidden_size != hs:
            raise ExecutionError(f"{op}: hidden_size {hidden_size} disagrees with W's {W.shape}")
        if R.shape != (nd, hs, 4 * hs):
            raise ExecutionError(f"{op}: R must be ({nd}, {hs}, {4 * hs}), got {R.shape}")
        for t, what in ((W, "W"), (R, "R")):
            _check_q8(op, t, what)
        if W_scale is None or W_zero_point is None or R_scale is None or R_zero_point is None:
            raise ExecutionError(f"{op}: W_scale, W_zero_point, R_scale and R_zero_point are required")
        ws = _lstm_param(W_scale, nd, 4 * hs, "W_scale").astype(F32)
        wz = _lstm_param(W_zero_point, nd, 4 * hs, "W_zero_point")
        rs = _lstm_param(R_scale, nd, 4 * hs, "R_scale").astype(F32)
        rz = _lstm_param(R_zero_point, nd, 4 * hs, "R_zero_point")
        if wz.dtype != W.dtype or rz.dtype != R.dtype:
            raise ExecutionError(f"{op}: zero points must have the type of their weights")
        lens = np.full(batch, seq, np.int64) if sequence_lens is None else \
            np.asarray(sequence_lens).astype(np.int64).reshape(-1)
        if lens.shape != (batch,) or (lens.size and (lens.min() < 0 or lens.max() > seq)):
            raise ExecutionError(f"{op}: sequence_lens must be ({batch},) values in [0, {seq}]")
        zeros = np.zeros((nd, batch, hs), F32)
        h0 = zeros if initial_h is None else initial_h.astype(F32)
        c0 = zeros if initial_c is None else initial_c.astype(F32)
        for t, what in ((h0, "initial_h"), (c0, "initial_c")):
            if t.shape != (nd, batch, hs):
                raise ExecutionError(f"{op}: {what} must be ({nd}, {batch}, {hs}), got {t.shape}")
        lim = None if clip is None else F32(clip)
        Y = np.zeros((seq, nd, batch, hs), F32)
        Yh = np.zeros((nd, batch, hs), F32)
        Yc = np.zeros((nd, batch, hs), F32)
        x2 = X.reshape(seq * batch, in_size)
        for d, rev in enumerate(dirs):
            gx = weight_product(W[d], wz[d])(x2, ws[d]).reshape(seq, batch, 4 * hs)
            r_product = weight_product(R[d], rz[d])
            if B is not None:
                if B.shape != (nd, 8 * hs):
                    raise ExecutionError(f"{op}: B must be ({nd}, {8 * hs}), got {B.shape}")
                gx += B[d, :4 * hs].astype(F32) + B[d, 4 * hs:].astype(F32)
            if P is not None:
                if P.shape != (nd, 3 * hs):
                    raise ExecutionError(f"{op}: P must be ({nd}, {3 * hs}), got {P.shape}")
                pi, po, pf = (P[d, k * hs:(k + 1) * hs].astype(F32) for k in range(3))
            h, c = h0[d].copy(), c0[d].copy()
            for step in range(seq):
                # Each batch entry runs over its own length; reversed entries start at their end.
                idx = np.where(rev, lens - 1 - step, step) if rev else np.full(batch, step)
                live = step < lens
                g = r_product(h, rs[d])
                tt = np.clip(idx, 0, seq - 1)
                g += gx[tt, np.arange(batch)]
                if lim is not None:
                    np.clip(g, -lim, lim, out=g)
                gi, go, gf, gc = (g[:, k * hs:(k + 1) * hs] for k in range(4))
                if P is not None:
                    gi = gi + pi * c
                    gf = gf + pf * c
                    if lim is not None:
                        gi, gf = np.clip(gi, -lim, lim), np.clip(gf, -lim, lim)
                i = _sigmoid(gi)
                f = F32(1) - i if input_forget else _sigmoid(gf)
                c_new = f * c + i * np.tanh(gc)
                if lim is not None:
                    np.clip(c_new, -lim, lim, out=c_new)
                if P is not None:
                    go = go + po * c_new
                    if lim is not None:
                        go = np.clip(go, -lim, lim)
                h_new = _sigmoid(go) * np.tanh(c_new)
                m = live[:, None]
                h = np.where(m, h_new, h)
                c = np.where(m, c_new, c)
                b_live = np.flatnonzero(live)
                Y[idx[b_live], d, b_live] = h_new[b_live]
            Yh[d], Yc[d] = h, c
        out: list[np.ndarray | None] = [Y, Yh, Yc]
        n = ctx.num_outputs if ctx is not None else 3
        return tuple(out[:max(n, 1)])

    return dynamic_quantize_lstm


def _reference_weight_product(w: np.ndarray, zero_point: np.ndarray
                              ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda a, w_scale: _dynamic_qgemm(a, w, w_scale, zero_point)


dynamic_quantize_lstm = kernel("DynamicQuantizeLSTM", versions=(1,), domain=MS)(
    dynamic_quantize_lstm_kernel(_reference_weight_product))


# --- GatherBlockQuantized ------------------------------------------------------------------------

#: Element types whose values are floats already: dequantized as value * scale, no zero point.
_FP_QUANTIZED = frozenset(np.dtype(t.numpy) for t in (
    DataType.FLOAT8E4M3FN, DataType.FLOAT8E4M3FNUZ, DataType.FLOAT8E5M2, DataType.FLOAT8E5M2FNUZ,
    DataType.FLOAT4E2M1))
_INT4 = frozenset(np.dtype(t.numpy) for t in (DataType.INT4, DataType.UINT4))


def _per_value(p: np.ndarray, idx: np.ndarray, ga: int, qa: int, bs: int, qdim: int
               ) -> np.ndarray:
    """The block parameters ``p`` (scales' layout) of each gathered value: gathered like the
    data, then each block repeated over its ``bs`` values along the quantized axis; a size-1
    axis of ``p`` (a broadcast scale) stays size 1 and broadcasts against the output."""
    if ga == qa:
        # gathering along the quantized axis: index i lies in block i // bs
        return np.take(p, idx // bs, axis=ga)
    p = np.take(p, idx if p.shape[ga] != 1 else np.zeros_like(idx), axis=ga)
    out_qa = qa if qa < ga else qa + idx.ndim - 1
    return np.take(np.repeat(p, bs, axis=out_qa), np.arange(qdim), axis=out_qa)


@kernel("GatherBlockQuantized", versions=(1,), domain=MS)
def gather_block_quantized(data: np.ndarray, indices: np.ndarray, scales: np.ndarray,
                           zero_points: np.ndarray | None = None, *, bits: int = 4,
                           block_size: int = 128, gather_axis: int = 0, quantize_axis: int = 1,
                           ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Gather along ``gather_axis`` from ``data`` quantized in blocks of ``block_size`` values
    along ``quantize_axis``, then dequantize what was gathered (only that):
    ``output = (q - zero_point) * scale`` with the scale and zero point of each value's block,
    in float32, cast to the type of ``scales``.

    ``data`` is int4/uint4 (``bits`` 4; zero point 0 when absent), uint8 holding ``bits``
    (2, 4 or 8) values a byte packed along the last axis, low bits first (gather_axis 0,
    quantize_axis last; zero points packed alike; 2^(bits-1) when absent), or a float8/float4
    type (value times scale, no zero point; ``block_size`` 0 means one block for the whole
    axis, and a scales dimension of 1 off the quantized axis is shared along that axis).
    Unlike Gather, an index outside [-s, s-1] yields zeros for its slice.
    """
    op = "GatherBlockQuantized"
    r = data.ndim
    if r < 1:
        raise ExecutionError(f"{op}: data must have rank >= 1, got a scalar")
    ga = normalize_axis(gather_axis, r, f"{op}: gather_axis")
    qa = normalize_axis(quantize_axis, r, f"{op}: quantize_axis")
    if indices.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise ExecutionError(f"{op}: indices must be int32 or int64, got {indices.dtype}")
    if scales.dtype not in FLOAT_TYPES or scales.dtype == np.float64:
        raise ExecutionError(f"{op}: scales must be float, float16 or bfloat16, got "
                             f"{scales.dtype}")
    fp = data.dtype in _FP_QUANTIZED
    per_byte = 1
    if fp:
        if zero_points is not None:
            raise ExecutionError(f"{op}: zero_points must be absent for {data.dtype} data "
                                 f"(float quantization is symmetric)")
        default_zp = 0.0
    elif data.dtype == np.uint8:
        if bits not in (2, 4, 8):
            raise UnsupportedOperatorError(f"{op}: uint8 data takes bits 2, 4 or 8, got {bits}")
        if ga != 0 or qa != r - 1 or r < 2:
            raise ExecutionError(f"{op}: uint8 data needs gather_axis 0 and quantize_axis the "
                                 f"last of at least two axes, got gather_axis {gather_axis}, "
                                 f"quantize_axis {quantize_axis}, rank {r}")
        per_byte = 8 // bits
        default_zp = float(1 << (bits - 1))
    elif data.dtype in _INT4:
        if bits != 4:
            raise ExecutionError(f"{op}: {data.dtype} data needs bits 4, got {bits}")
        default_zp = 0.0
    else:
        raise ExecutionError(f"{op}: data must be int4, uint4, uint8, float8 or float4, got "
                             f"{data.dtype}")
    if not (fp and block_size == 0) and (block_size < 16 or block_size & (block_size - 1)):
        raise ExecutionError(f"{op}: block_size must be a power of two >= 16"
                             f"{' (or 0)' if fp else ''}, got {block_size}")
    shape = list(data.shape)
    shape[-1] *= per_byte                      # the logical (unpacked) shape
    qdim = shape[qa]
    bs = block_size or max(qdim, 1)
    n_blocks = -(-qdim // bs)
    if scales.ndim != r:
        raise ExecutionError(f"{op}: scales must have data's rank {r}, got shape {scales.shape}")
    for i in range(r):
        want = n_blocks if i == qa else shape[i]
        if scales.shape[i] != want and not (fp and i != qa and scales.shape[i] == 1):
            what = "blocks along quantize_axis" if i == qa else "as data"
            raise ExecutionError(f"{op}: scales has shape {scales.shape}; axis {i} must be "
                                 f"{want} ({what}) for data of logical shape {tuple(shape)}, "
                                 f"block_size {bs}")
    if zero_points is not None:
        if zero_points.dtype != data.dtype:
            raise ExecutionError(f"{op}: zero_points is {zero_points.dtype} but data is "
                                 f"{data.dtype}")
        want_zp = list(scales.shape)
        want_zp[-1] = -(-want_zp[-1] // per_byte)
        if list(zero_points.shape) != want_zp:
            raise ExecutionError(f"{op}: zero_points must have shape {tuple(want_zp)} (scales' "
                                 f"{'' if per_byte == 1 else 'packed '}shape), got "
                                 f"{zero_points.shape}")
    out_shape = (*shape[:ga], *indices.shape, *shape[ga + 1:])
    if ctx is not None:
        check_alloc(out_shape, scales.dtype, ctx.max_tensor_bytes, f"{op} output")
    n = shape[ga]
    idx = indices.astype(np.int64)
    valid = (idx >= -n) & (idx < n)
    if n == 0:
        return (np.zeros(out_shape, scales.dtype),)
    idx = np.where(valid, np.where(idx < 0, idx + n, idx), 0)   # invalid rows read row 0
    # the quantized values of the gathered rows only (uint8 packs along the last axis, which
    # is never gather_axis, so its bytes are gathered before unpacking)
    q = np.take(data, idx, axis=ga)
    if per_byte > 1:
        q = _unpack_bits(q, bits, q.shape[-1] * per_byte)
    y = q.astype(F32)
    if zero_points is not None:
        zp = _unpack_bits(zero_points, bits, n_blocks) if per_byte > 1 else zero_points
        y -= _per_value(zp.astype(F32), idx, ga, qa, bs, qdim)
    elif default_zp:
        y -= F32(default_zp)
    y *= _per_value(scales.astype(F32), idx, ga, qa, bs, qdim)
    if not valid.all():
        keep = valid.reshape((1,) * ga + valid.shape + (1,) * (r - ga - 1))
        y = np.where(keep, y, F32(0))
    return (y.astype(scales.dtype, copy=False),)
