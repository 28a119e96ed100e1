"""The CPU provider's fused kernels: pyonnx's internal domain ``pyonnx`` (version 1), emitted by
the graph optimizer (:mod:`pyonnx.optimizer.passes`) at session creation, after anything is
written, so models never contain them; and the fast variant of com.microsoft ``FusedConv``,
which has the same definition (its reference is :mod:`pyonnx.ops.contrib.fused_conv`).

* ``FusedConv(X, W, B, Z)``: Conv, plus an optional tensor ``Z`` (a residual Add folded in),
  followed by an optional activation.
* ``FusedGemm(A, B, C)``: Gemm followed by an activation.
* ``FusedMatMul(A, B, bias)``: MatMul, plus an optional constant bias (an ``Add`` folded in),
  followed by an optional activation.
* ``DotProductAttention(Q, Kt, V, M)``: ``Softmax(Q @ Kt + M, axis=-1) @ V`` (``M`` optional),
  with ``nan_to_zero=1`` the softmax's NaNs set to zero before the second product (the guard
  torch exports as ``Where(IsNaN(P), 0, P)``): attention's core, as
  :mod:`pyonnx.optimizer.passes.fuse_attention` finds it.
* com.microsoft ``MultiHeadAttention`` (the fast variant of :mod:`pyonnx.ops.contrib.attention`'s)
  for self or cross attention on 3-D Q, K, V with an optional attention bias, as the optimizer's
  :mod:`~pyonnx.optimizer.passes.fuse_multi_head_attention` writes it: the heads are strided
  views of the projections, the work is cut into blocks of query rows of one head whose scores
  stay in cache (product, scaled and biased softmax, product) and split over the intra-op
  threads, and the second product writes straight into the ``[B, S, H*D]`` output.
* ``FoldBatchNormIntoConv(W, B, scale, bias, mean, var)``: the weight and bias of a Conv with
  an inference-mode BatchNormalization after it folded in, for parameters that are known only at
  run time (the optimizer folds constant ones itself).

Each first runs the CPU provider's kernel of the standard op (so every check and numeric rule of
Conv, Gemm and MatMul applies unchanged) and then applies the activation *in place* on the
freshly computed result, which saves one full pass that allocates an output. FusedConv without
``Z`` adds the bias and applies the activation in one epilogue (:func:`bias_activation`): with
the ``fast`` extra one compiled pass (``jit/act_loops.bias_activation``), whose sigmoid (for
Sigmoid and Swish) has its own vectorized exponential, within a few units in the last place of
NumPy's; without it the bias add and NumPy's in-place activation, bit for bit the unfused
graph's.

``activation`` is the standard op_type
(``Relu``, ``LeakyRelu``, ``Sigmoid``, ``Tanh``, ``HardSigmoid``, ``Clip``) or ``""`` for none;
``activation_params`` holds its attributes in order (LeakyRelu: alpha; HardSigmoid: alpha, beta;
Clip: min, max). The ``pyonnx`` domain's kernels also take ``HardSwish`` and ``Swish`` (alpha;
``Swish`` with alpha 1 is SiLU, a ``Sigmoid`` and a ``Mul`` of the same input), which
onnxruntime's com.microsoft FusedConv does not have: files never carry them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod

import numpy as np
from numpy.lib.stride_tricks import as_strided

from pyonnx.backends.cpu import jit, pointwise, threads
from pyonnx.backends.cpu.conv import (conv, conv_forward, packed_pointwise, short_product,
                                      tiles_plan)
from pyonnx.backends.cpu.elementwise import loop_input, softmax as _softmax, softmax_loop
# large products split over the pool
from pyonnx.backends.cpu.gemm import MIN_BLOCK_MACS, gemm, matmul, matmul2d
from pyonnx.backends.cpu.pointwise import IDENTITY, pointwise_product, store_activation
from pyonnx.backends.cpu.pool import global_average_pool
from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.errors import ExecutionError
from pyonnx.ops import activation as _act
from pyonnx.ops.contrib.attention import _DEFAULT_MASK_FILTER
from pyonnx.ops.contrib.fused_conv import ACTIVATIONS, check_activation
from pyonnx.ops._conv import Window
from pyonnx.ops.conv import _add_bias, conv_window
from pyonnx.ops.registry import KernelContext, NodeMemo, get_kernel, kernel, node_memo

__all__ = ["apply_activation", "bias_activation", "check_private_activation",
           "PRIVATE_ACTIVATIONS"]

# The session-private domain. Its kernels register in the reference table (there is no other
# definition of them) from here, so only sessions, which import the CPU provider, know them.
DOMAIN = "pyonnx"

_INPLACE = (np.dtype(np.float32), np.dtype(np.float64))

#: The activations of the session-private kernels: com.microsoft's, plus two that the mobile
#: CNNs use after most convolutions (their attributes as the standard ops': Swish has alpha).
PRIVATE_ACTIVATIONS = {**ACTIVATIONS, "HardSwish": 0, "Swish": 1}


def check_private_activation(activation: str, params: Sequence[float] | None) -> list[float]:
    """The activation's parameters, checked against :data:`PRIVATE_ACTIVATIONS`."""
    return check_activation(activation, params, PRIVATE_ACTIVATIONS)


def apply_activation(y: np.ndarray, activation: str, params: Sequence[float]) -> np.ndarray:
    """``activation(y)``; float32/float64 results that the caller owns are updated in place."""
    if not activation:
        return y
    own = y.dtype in _INPLACE and y.flags.writeable and y.ndim > 0
    if activation == "Relu":
        if own:
            return _clip_into(y, y.dtype.type(0), y.dtype.type(np.inf))  # max(y, 0)
        return _act.Relu(y)[0]
    if activation == "Tanh":
        if own:
            return np.tanh(y, out=y)
        return _act.Tanh(y)[0]
    if activation == "Sigmoid":
        if own:
            if _loop_epilogue(y, None, activation, params):
                return y
            return _sigmoid_into(y, 1.0)
        return _act.Sigmoid(y)[0]
    if activation == "LeakyRelu":
        return _act.LeakyRelu(y, alpha=float(params[0]))[0]
    if activation == "HardSigmoid":
        if own:
            if _hard_loop(y, float(params[0]), float(params[1]), 0):
                return y
            return _hard_sigmoid_into(y, float(params[0]), float(params[1]))
        return _act.HardSigmoid(y, alpha=float(params[0]), beta=float(params[1]))[0]
    if activation == "HardSwish":
        if own:
            if _hard_loop(y, 1 / 6, 0.5, 1):
                return y
            # y * max(0, min(1, y / 6 + 0.5)): the reference's operations, one temporary
            typ = y.dtype.type
            t = np.multiply(y, typ(1 / 6))
            t += typ(0.5)
            y *= _clip_into(t, typ(0), typ(1))
            return y
        return _act.HardSwish(y)[0]
    if activation == "Swish":
        alpha = float(params[0])
        if own:
            if _loop_epilogue(y, None, activation, params):
                return y
            y *= _sigmoid_into(y, alpha, np.empty_like(y))
            return y
        return _act.Swish(y, alpha=alpha)[0]
    if activation == "Clip":
        typ = y.dtype.type
        if y.dtype.kind != "f":
            raise ExecutionError(f"fused Clip: expected a float result, got {y.dtype}")
        with np.errstate(all="ignore"):
            lo, hi = typ(params[0]), typ(params[1])
            if own:
                return _clip_into(y, lo, hi)
            return np.clip(y, lo, hi)
    raise ExecutionError(f"unknown fused activation {activation!r} (known: "
                         f"{', '.join(a for a in PRIVATE_ACTIVATIONS if a)})")


def bias_activation(y: np.ndarray, bias: np.ndarray | None, activation: str,
                    params: Sequence[float]) -> np.ndarray:
    """``activation(y + bias)`` for a result ``y`` (N, M, ...) that the caller owns and a
    ``bias`` of one value per channel (axis 1) or None: a convolution's epilogue. In float32
    and float64 where the compiled loops run it is one pass over ``y`` (the bias added and the
    activation applied per chunk of a channel's row while it is in cache); otherwise the bias
    is added in place and :func:`apply_activation` runs, as in the unfused graph."""
    if _loop_epilogue(y, bias, activation, params):
        return y
    return apply_activation(_add_bias(y, bias), activation, params)


# the loop's bias argument where there is none (it reads no element of it)
_NO_BIAS = {t: np.zeros(1, t) for t in _INPLACE}

#: The ``code`` values of the compiled epilogue ``act_loops.bias_activation`` (which takes
#: them from here: this module must not import the loops' modules, which import numba), and
#: the elements per chunk of its rows (its two scratch arrays, 8 KiB each in float32, stay in
#: the first-level cache while one chunk is processed).
NONE, RELU, SIGMOID, SWISH, HARD_SIGMOID, HARD_SWISH, CLIP = range(7)
CHUNK = 2048

#: The activations of the compiled epilogue ``act_loops.bias_activation``, by its codes.
_LOOP_CODES = {"": NONE, "Relu": RELU, "Sigmoid": SIGMOID, "Swish": SWISH,
               "HardSigmoid": HARD_SIGMOID, "HardSwish": HARD_SWISH, "Clip": CLIP}


def _loop_epilogue(y: np.ndarray, bias: np.ndarray | None, activation: str,
                   params: Sequence[float]) -> bool:
    """:func:`bias_activation` (``bias`` per channel of axis 1, or None) by the compiled loop,
    in place; False (nothing done) where the loop does not run. The sigmoid-based activations
    take it in float32 only: the loop's exponential has float32's precision (within a few
    units in the last place of NumPy's)."""
    if y.size < jit.MIN_ELEMENTS:  # jit.call would refuse it: spare the setup below
        return False
    code = _LOOP_CODES.get(activation)
    if code is None or y.dtype not in _INPLACE or not y.flags.writeable or y.size == 0 \
            or (bias is None and not activation):
        return False
    if code in (SIGMOID, SWISH) and y.dtype != np.float32:
        return False
    if bias is not None and (y.ndim < 2 or bias.shape != (y.shape[1],)):
        return False
    if y.flags.c_contiguous:
        flat = y.reshape(-1)
        rows = 1 if bias is None else y.shape[0] * y.shape[1]
        length = ld = y.size // rows
    else:
        band = _row_band(y)
        if band is None:
            return False
        flat, rows, length, ld = band
    alpha_t, beta_t = _loop_values(code, params, y.dtype.type)
    if bias is None:
        m, b = 0, _NO_BIAS[y.dtype]
    else:
        m, b = y.shape[1], bias.astype(y.dtype, copy=False)
    if code in (SIGMOID, SWISH) and threads.budget() > 1 \
            and y.size >= MIN_SHARED_SIGMOID:
        # pieces of rows (or of the one row's chunks) claimed by this thread and the idle pool
        # threads
        parts = min(threads.MAX_PIECES, rows if rows > 1 else -(-length // CHUNK))
        if parts > 1:
            return threads.shared_loop(
                "act_loops.bias_activation_claimed",
                (flat, rows, length, ld, b, m, code, alpha_t, beta_t, np.zeros(2, np.int64),
                 parts), parts, elements=y.size)
    kbits, poly = np.empty(CHUNK, np.int32), np.empty(CHUNK, y.dtype)
    return jit.call("act_loops.bias_activation", flat, rows, length, ld, b, m, code,
                    alpha_t, beta_t, kbits, poly, elements=y.size)


def _loop_values(code: int, params: Sequence[float], typ: type) -> tuple:
    """The compiled epilogue's ``alpha`` and ``beta`` for activation ``code`` and its
    ``params``, in element type ``typ``: the sigmoid's scale (Sigmoid, Swish), HardSigmoid's
    and HardSwish's slope and offset, Clip's bounds."""
    alpha = beta = 0.0
    if code == SIGMOID:
        alpha = 1.0
    elif code == SWISH:
        alpha = float(params[0])
    elif code == HARD_SIGMOID:
        alpha, beta = float(params[0]), float(params[1])
    elif code == HARD_SWISH:
        alpha, beta = 1 / 6, 0.5
    if code == CLIP:
        with np.errstate(over="ignore"):  # a bound beyond float32's range becomes +-inf
            return typ(params[0]), typ(params[1])
    return typ(alpha), typ(beta)


#: Epilogues with a sigmoid (Sigmoid, Swish) of at least this many elements are shared with the
#: idle intra-op threads, in ``threads.MAX_PIECES`` pieces at most: the sigmoid costs about
#: 0.75 ns an element on one core, so these take 0.1 ms and more (efficientnet_b0's depthwise
#: convolutions end in one of 33K to 451K elements). Measured in that model (two threads,
#: per-node profiles alternating run by run, medians): its depthwise nodes 3.87 -> 3.60 ms, all
#: nodes 17.57 -> 17.29; 401K elements alone 277 -> 193 µs.
MIN_SHARED_SIGMOID = 1 << 17


def _row_band(y: np.ndarray) -> tuple[np.ndarray, int, int, int] | None:
    """For ``y`` (N, M, ...) whose channels' rows (the trailing axes) are each contiguous and
    evenly spaced, ``ld`` elements apart (a band of output columns of a larger result, as the
    threads of a split convolution finish it): (a 1-D view from its first element over its
    last, rows, row length, ld). None for any other layout."""
    it = y.itemsize
    if y.ndim < 2:
        return None
    length = y.size // (y.shape[0] * y.shape[1])
    expect = it
    for n, s in zip(y.shape[:1:-1], y.strides[:1:-1]):
        if n > 1 and s != expect:
            return None
        expect *= n
    s0, s1 = y.strides[:2]
    if s1 % it or s1 < length * it or (y.shape[0] > 1 and s0 != y.shape[1] * s1):
        return None
    rows, ld = y.shape[0] * y.shape[1], s1 // it
    flat = as_strided(y, shape=((rows - 1) * ld + length,), strides=(it,), writeable=True)
    return flat, rows, length, ld


def _tiles_then(X: np.ndarray, W: np.ndarray, group: int, win: Window, B: np.ndarray | None,
                stored: tuple[float, float, float, float, int] | None, activation: str,
                params: Sequence[float]
                ) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray | None] | None:
    """``run(X, None)``: the depthwise convolution by the register tiles where
    :func:`conv_forward` takes them, with the activation applied as they store where they can
    (``stored``), else by the epilogue's pass after them (Sigmoid, Swish, the activations that
    have no stored form); None where another path computes it."""
    tiles = tiles_plan(X, W, group, win, B, stored)
    if tiles is not None:
        return lambda x, z: tiles.run(x)
    tiles = tiles_plan(X, W, group, win, B, IDENTITY)
    if tiles is None:
        return None

    def run(x: np.ndarray, z: np.ndarray | None) -> np.ndarray | None:
        y = tiles.run(x)
        return None if y is None else bias_activation(y, None, activation, params)

    return run


def _short_then(W: np.ndarray, B: np.ndarray | None, win: Window, activation: str,
                params: Sequence[float]
                ) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    """``run(X, None)``: :func:`conv_forward`'s short product (see
    :func:`~pyonnx.backends.cpu.conv.short_product`) and its epilogue, with the weights as a
    matrix once."""
    m, c = W.shape[:2]
    w2 = W.reshape(m, c)
    length = prod(win.out)
    out = (1, m) + tuple(win.out)

    def run(x: np.ndarray, z: np.ndarray | None) -> np.ndarray:
        y = matmul2d(w2, x.reshape(c, length)).reshape(out)
        return bias_activation(y, B, activation, params)

    return run


class _NodeCall:
    """A FusedConv node's call, kept in its memo (``prepared``) after a run for the next ones
    with the same inputs' shapes and type: ``run(X, Z)`` gives Y, or None where its compiled
    loop did not run. The arguments that the call derives from the weights, the bias and the
    shapes (packed weights, the activation's values, the pieces for the intra-op threads, the
    weights as a matrix) are made once: they cost about 20 µs a call in Python, a quarter of a
    small convolution's time.
    Kept only for constant weights and bias (arrays that cannot change: a session's
    initializers), and used only for the same arrays and the same intra-op budget."""

    __slots__ = ("w", "b", "budget", "run")

    def __init__(self, w: np.ndarray, b: np.ndarray | None,
                 run: Callable[[np.ndarray, np.ndarray | None], np.ndarray | None]) -> None:
        self.w, self.b, self.budget, self.run = w, b, threads.budget(), run


def _keep(prepared: NodeMemo | None, key: tuple | None, w: np.ndarray, b: np.ndarray | None,
          run: Callable[[np.ndarray, np.ndarray | None], np.ndarray | None]) -> None:
    """Keep ``run`` as the node's call for ``key`` (see :class:`_NodeCall`) where its weights
    and bias cannot change."""
    if key is not None and not w.flags.writeable and (b is None or not b.flags.writeable):
        prepared.remember(key, _NodeCall(w, b, run))


def _hard_loop(y: np.ndarray, alpha: float, beta: float, swish: int) -> bool:
    """HardSigmoid (``swish`` 0) or HardSwish (1) of ``y`` in place by the compiled loop, in one
    pass; False (nothing done) where the loop does not run (the caller takes the NumPy path)."""
    if not y.flags.c_contiguous:
        return False
    typ = y.dtype.type
    return jit.call("act_loops.hard_sigmoid", y.reshape(-1), typ(alpha), typ(beta), swish,
                    elements=y.size)


def _sigmoid_into(w: np.ndarray, alpha: float, out: np.ndarray | None = None) -> np.ndarray:
    """``sigmoid(alpha * w)`` written into ``out`` (default: ``w`` itself), with the
    reference's operations in its order."""
    typ = w.dtype.type
    t = w if out is None else out
    with np.errstate(all="ignore"):  # exp overflowing to inf gives exactly 0, as intended
        if alpha == 1:
            np.negative(w, out=t)
        else:
            np.multiply(w, typ(-alpha), out=t)
        np.exp(t, out=t)
        t += typ(1)
        return np.divide(typ(1), t, out=t)


def _hard_sigmoid_into(t: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """``t = max(0, min(1, alpha * t + beta))`` in place, as the reference computes it."""
    typ = t.dtype.type
    with np.errstate(all="ignore"):
        np.multiply(t, typ(alpha), out=t)
        t += typ(beta)
        return _clip_into(t, typ(0), typ(1))


def _clip_into(t: np.ndarray, lo: np.generic, hi: np.generic) -> np.ndarray:
    """``np.clip(t, lo, hi, out=t)``; on small tensors (the squeeze-and-excitation blocks') by
    two ufunc calls, which give the same values (NaN propagates, and ``hi`` wins where ``lo >
    hi``) without np.clip's Python wrappers (4 µs a call). On large ones np.clip is faster:
    NumPy 2.4's float32 maximum and minimum are not vectorized (1.2M elements: np.clip 0.27
    ms, the two ufuncs 1.5)."""
    if t.size > _UFUNC_CLIP_MAX:
        return np.clip(t, lo, hi, out=t)
    np.maximum(t, lo, out=t)
    return np.minimum(t, hi, out=t)


#: The largest tensor :func:`_clip_into` clips with two ufunc calls (measured, float32: 512
#: elements 2.5 µs against np.clip's 4.1; 4096 elements 6.2 against 4.7).
_UFUNC_CLIP_MAX = 2048


@fast_kernel("FusedConv", versions=(1,), domain="com.microsoft", prepare=node_memo)
def fused_conv(X: np.ndarray, W: np.ndarray, B: np.ndarray | None = None,
               Z: np.ndarray | None = None, *,
               auto_pad: str = "NOTSET", dilations: Sequence[int] | None = None,
               group: int = 1, kernel_shape: Sequence[int] | None = None,
               pads: Sequence[int] | None = None, strides: Sequence[int] | None = None,
               activation: str = "", activation_params: Sequence[float] | None = None,
               ctx: KernelContext | None = None, prepared: NodeMemo | None = None
               ) -> tuple[np.ndarray]:
    """``activation(Conv(X, W, B) + Z)`` with Conv's attributes; ``Z`` broadcasts as Add's
    second input does. ``prepared`` is the node's memo, which Conv keeps its geometry in."""
    params = check_activation(activation, activation_params)
    return _conv_then(X, W, B, Z, auto_pad, dilations, group, kernel_shape, pads, strides,
                      activation, params, ctx, prepared)


@fast_kernel("Conv", versions=(1, 11, 22), prepare=node_memo)
def fast_conv(X: np.ndarray, W: np.ndarray, B: np.ndarray | None = None, *,
              auto_pad: str = "NOTSET", dilations: Sequence[int] | None = None,
              group: int = 1, kernel_shape: Sequence[int] | None = None,
              pads: Sequence[int] | None = None, strides: Sequence[int] | None = None,
              ctx: KernelContext | None = None, prepared: NodeMemo | None = None
              ) -> tuple[np.ndarray]:
    """The CPU provider's Conv: FusedConv without an activation, so that a Conv node keeps
    its compiled call between runs as FusedConv nodes do (:class:`_NodeCall`; a projection
    without a residual after it stays a Conv); other convolutions end in
    :data:`pyonnx.backends.cpu.conv.conv`."""
    return _conv_then(X, W, B, None, auto_pad, dilations, group, kernel_shape, pads, strides,
                      "", [], ctx, prepared)


@kernel("FusedConv", versions=(1,), domain=DOMAIN, prepare=node_memo)
def private_fused_conv(X: np.ndarray, W: np.ndarray, B: np.ndarray | None = None,
                       Z: np.ndarray | None = None, *,
                       auto_pad: str = "NOTSET", dilations: Sequence[int] | None = None,
                       group: int = 1, kernel_shape: Sequence[int] | None = None,
                       pads: Sequence[int] | None = None, strides: Sequence[int] | None = None,
                       activation: str = "", activation_params: Sequence[float] | None = None,
                       ctx: KernelContext | None = None, prepared: NodeMemo | None = None
                       ) -> tuple[np.ndarray]:
    """The ``pyonnx`` domain's FusedConv: com.microsoft's, with HardSwish and Swish as well."""
    params = check_private_activation(activation, activation_params)
    return _conv_then(X, W, B, Z, auto_pad, dilations, group, kernel_shape, pads, strides,
                      activation, params, ctx, prepared)


def _conv_then(X: np.ndarray, W: np.ndarray, B: np.ndarray | None, Z: np.ndarray | None,
               auto_pad: str, dilations: Sequence[int] | None, group: int,
               kernel_shape: Sequence[int] | None, pads: Sequence[int] | None,
               strides: Sequence[int] | None, activation: str, params: list[float],
               ctx: KernelContext | None, prepared: NodeMemo | None) -> tuple[np.ndarray]:
    """``activation(Conv(X, W, B) + Z)`` once the activation is checked."""
    plan_key = None
    # the compiled paths below are tried only where they can run (the plain install skips
    # their checks)
    compiled = X.dtype == np.float32 and jit.available()
    if prepared is not None:
        # the node's call kept from an earlier run with these inputs (see _NodeCall)
        plan_key = (_NodeCall, X.shape, X.dtype, None if Z is None else Z.shape)
        kept = prepared.get(plan_key)
        if kept is not None and kept.w is W and kept.b is B \
                and kept.budget == threads.budget():
            y = kept.run(X, Z)
            if y is not None:
                return (y,)
    if compiled and int(group) == 1 and X.ndim > 2 and X.shape[1] \
            and pointwise.large_enough(X.shape[0], W.shape[0], X.shape[1],
                                       X.size // max(1, X.shape[0] * X.shape[1])):
        # a 1x1 convolution by the packed product, whose stores add the bias and a residual of
        # the output's shape and apply the activation where they can; any other after it. Not
        # tried where a 1x1 output would be smaller than the loops take (the convolutions of
        # squeeze-and-excitation blocks: the checks below cost most of their call)
        win = conv_window(X, W, B, auto_pad, dilations, group, kernel_shape, pads, strides,
                          ctx, prepared)
        if packed_pointwise(1, win):
            whole_z = Z is not None and Z.shape == (X.shape[0], W.shape[0]) + win.out
            stored = store_activation(activation, params) if Z is None or whole_z else None
            product = pointwise_product(X, W, B, whole_z, stored or IDENTITY)
            y = None if product is None else product.conv(X, Z if whole_z else None)
            if y is not None:
                if stored is not None and (Z is None or whole_z):
                    _keep(prepared, plan_key, W, B, product.conv)
                if Z is not None and not whole_z:
                    y = _add_into(y, Z)
                if stored is None:
                    y = bias_activation(y, None, activation, params)
                return (y,)
    if Z is None and activation and X.dtype in _INPLACE:
        # Conv's checks and geometry, then its computation (float32 and float64 compute in
        # their own type) with the bias and the activation applied in one epilogue (Conv's
        # kernel adds the bias in a pass of its own)
        win = conv_window(X, W, B, auto_pad, dilations, group, kernel_shape, pads, strides,
                          ctx, prepared)
        if short_product(X.shape, W.shape, int(group), win):
            run = _short_then(W.astype(X.dtype, copy=False), B, win, activation, params)
            _keep(prepared, plan_key, W, B, run)
            return (run(X, None),)
        stored = store_activation(activation, params)
        run = _tiles_then(X, W, int(group), win, B, stored, activation, params) \
            if compiled else None
        y = None if run is None else run(X, None)
        if y is not None:
            _keep(prepared, plan_key, W, B, run)
            return (y,)
        y = conv_forward(X, W.astype(X.dtype, copy=False), int(group), win, B,
                         epilogue=lambda r, b: bias_activation(r, b, activation, params),
                         stored=stored)
        return (y,)
    (y,) = conv(X, W, B, auto_pad=auto_pad, dilations=dilations, group=group,
                kernel_shape=kernel_shape, pads=pads, strides=strides, ctx=ctx,
                prepared=prepared)
    if Z is not None:
        y = _add_into(y, Z)
    return (apply_activation(y, activation, params),)


@kernel("SqueezeExcitation", versions=(1,), domain=DOMAIN, prepare=node_memo)
def squeeze_excitation(X: np.ndarray, W1: np.ndarray, B1: np.ndarray | None,
                       W2: np.ndarray, B2: np.ndarray | None, *, activation1: str = "",
                       activation1_params: Sequence[float] | None = None,
                       activation2: str = "",
                       activation2_params: Sequence[float] | None = None,
                       ctx: KernelContext | None = None, prepared: NodeMemo | None = None
                       ) -> tuple[np.ndarray]:
    """A squeeze-and-excitation block, as :mod:`pyonnx.optimizer.passes.fuse_squeeze_excitation`
    finds it: ``Mul(X, FusedConv(FusedConv(GlobalAveragePool(X), W1, B1, activation1), W2,
    B2, activation2))`` with 1x1 weights, one group, no padding or stride. In float32 with the
    compiled loops, one call (``act_loops.squeeze_excitation``: the mean, both products and
    the scaling, within float32 rounding of the nodes'); otherwise the four nodes' kernels, one
    after the other (their values to the bit)."""
    key = (_SEBlock, X.shape, X.dtype)
    block = None if prepared is None else prepared.get(key)
    if block is None or block.w1 is not W1 or block.w2 is not W2 or block.b1 is not B1 \
            or block.b2 is not B2:
        params1 = check_private_activation(activation1, activation1_params)
        params2 = check_private_activation(activation2, activation2_params)
        block = _SEBlock(X, W1, B1, W2, B2, activation1, params1, activation2, params2)
        if prepared is not None and all(a is None or not a.flags.writeable
                                        for a in (W1, B1, W2, B2)):
            prepared.remember(key, block)  # constant weights: kept for the next runs
    if block.loop_args is not None and jit.available():
        y = np.empty_like(X)
        x3 = np.ascontiguousarray(X).reshape(block.x3)
        c, r = block.x3[1], block.loop_args[1].shape[0]
        if jit.call("act_loops.squeeze_excitation", x3, *block.loop_args,
                    np.empty(c, np.float32), np.empty(r, np.float32), np.empty(c, np.float32),
                    y.reshape(block.x3), elements=block.work):
            return (y,)
    memos = None
    if prepared is not None:  # the two convolutions' own memos
        memos = prepared.get(_SE_MEMOS) \
            or prepared.remember(_SE_MEMOS, (NodeMemo(), NodeMemo()))
    (s,) = global_average_pool(X)
    a = _conv_then(s, W1, B1, None, "NOTSET", None, 1, None, None, None, activation1,
                   block.params1, ctx, None if memos is None else memos[0])[0]
    g = _conv_then(a, W2, B2, None, "NOTSET", None, 1, None, None, None, activation2,
                   block.params2, ctx, None if memos is None else memos[1])[0]
    return (np.multiply(X, g),)


_SE_MEMOS = "squeeze_excitation"


class _SEBlock:
    """A squeeze-and-excitation node's checked activations and, where its compiled loop can
    run (float32 throughout, the shapes of a block: X (N, C, ...), W1 (R, C, 1, ...), W2 (C, R,
    1, ...), biases of R and C values, activations the loop has), the loop's arguments that do
    not change between runs (``loop_args``; None where it cannot). Kept in the node's memo for
    constant weights."""

    __slots__ = ("w1", "b1", "w2", "b2", "params1", "params2", "x3", "work", "loop_args")

    def __init__(self, X: np.ndarray, W1: np.ndarray, B1: np.ndarray | None, W2: np.ndarray,
                 B2: np.ndarray | None, activation1: str, params1: Sequence[float],
                 activation2: str, params2: Sequence[float]) -> None:
        self.w1, self.b1, self.w2, self.b2 = W1, B1, W2, B2
        self.params1, self.params2 = params1, params2
        self.loop_args = None
        if X.dtype != np.float32 or X.ndim < 3 \
                or any(a is not None and a.dtype != np.float32 for a in (W1, B1, W2, B2)):
            return
        n, c = X.shape[:2]
        r = W1.shape[0]
        ones = (1,) * (X.ndim - 2)
        if not (W1.shape == (r, c) + ones and W2.shape == (c, r) + ones
                and (B1 is None or B1.shape == (r,)) and (B2 is None or B2.shape == (c,))
                and activation1 in _LOOP_CODES and activation2 in _LOOP_CODES):
            return
        acts = [(_LOOP_CODES[a],) + _loop_values(_LOOP_CODES[a], p, np.float32)
                for a, p in ((activation1, params1), (activation2, params2))]
        self.x3 = (n, c, X.size // max(1, n * c))
        # the means and the products count, not only the outputs (a block at 7x7 has few)
        self.work = X.size + 2 * r * c
        self.loop_args = (np.ascontiguousarray(W1).reshape(r, c),
                          np.zeros(r, np.float32) if B1 is None else B1, *acts[0],
                          np.ascontiguousarray(W2).reshape(c, r),
                          np.zeros(c, np.float32) if B2 is None else B2, *acts[1])


@kernel("FusedGemm", versions=(1,), domain=DOMAIN)
def fused_gemm(A: np.ndarray, B: np.ndarray, C: np.ndarray | None = None, *,
               alpha: float = 1.0, beta: float = 1.0, transA: int = 0, transB: int = 0,
               activation: str = "", activation_params: Sequence[float] | None = None,
               ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """``activation(Gemm(A, B, C))`` with Gemm's attributes (version 7 and later)."""
    params = check_private_activation(activation, activation_params)
    (y,) = gemm(A, B, C, alpha=alpha, beta=beta, transA=transA, transB=transB, ctx=ctx)
    return (apply_activation(y, activation, params),)


@kernel("FusedMatMul", versions=(1,), domain=DOMAIN)
def fused_matmul(A: np.ndarray, B: np.ndarray, bias: np.ndarray | None = None, *,
                 activation: str = "", activation_params: Sequence[float] | None = None,
                 ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """``activation(MatMul(A, B) + bias)``; ``bias`` broadcasts as Add's second input does."""
    params = check_private_activation(activation, activation_params)
    (y,) = matmul(A, B, ctx=ctx)
    if bias is not None:
        y = _add_into(y, bias)
    return (apply_activation(y, activation, params),)


def _add_into(y: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``y + other`` as the folded Add computes it, in place when ``y`` (a result the fused
    kernel just computed) already has the broadcast shape."""
    if other.dtype != y.dtype:
        raise ExecutionError(f"Add: inputs have element types {y.dtype} and {other.dtype}; "
                             f"they must be the same")
    try:
        shape = np.broadcast_shapes(y.shape, other.shape)
    except ValueError:
        raise ExecutionError(f"Add: shapes {list(y.shape)} and {list(other.shape)} cannot be "
                             f"broadcast together") from None
    if shape == y.shape and y.flags.writeable and y.ndim > 0:
        y += other  # the product is ours: add in place
        return y
    return np.add(y, other)


@kernel("DotProductAttention", versions=(1,), domain=DOMAIN)
def dot_product_attention(Q: np.ndarray, Kt: np.ndarray, V: np.ndarray,
                          M: np.ndarray | None = None, *, nan_to_zero: int = 0,
                          ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """``Softmax(Q @ Kt + M) @ V`` by the same kernels the unfused nodes run (MatMul, Add,
    the CPU provider's Softmax), so the result is the same to the bit; the scores are a buffer
    of this kernel, updated in place by the mask add and the NaN guard."""
    (s,) = matmul(Q, Kt, ctx=ctx)
    if M is not None:
        s = _add_into(s, M)
    (p,) = _softmax(s, axis=-1)
    if nan_to_zero and p.dtype.kind == "f":
        nan = np.isnan(p)
        if p.flags.writeable and p.ndim > 0:
            p[nan] = 0  # Where(IsNaN(P), 0, P), in place on the softmax's fresh output
        else:
            p = np.where(nan, p.dtype.type(0), p)
    return matmul(p, V, ctx=ctx)


_MHA = get_kernel("com.microsoft", "MultiHeadAttention", 1)


@fast_kernel("MultiHeadAttention", versions=(1,), domain="com.microsoft")
def multi_head_attention(query: np.ndarray, key: np.ndarray | None = None,
                         value: np.ndarray | None = None, bias: np.ndarray | None = None,
                         key_padding_mask: np.ndarray | None = None,
                         attention_bias: np.ndarray | None = None,
                         past_key: np.ndarray | None = None, past_value: np.ndarray | None = None,
                         past_sequence_length: np.ndarray | None = None,
                         cache_indirection: np.ndarray | None = None, *,
                         num_heads: int | None = None, unidirectional: int = 0,
                         scale: float | None = None,
                         mask_filter_value: float = _DEFAULT_MASK_FILTER,
                         ctx: KernelContext | None = None) -> tuple[np.ndarray | None, ...]:
    """MultiHeadAttention: ``softmax(scale * Q K^T + attention_bias) V`` per head for 3-D
    float32/float64 Q [B, S, H*D], K [B, T, H*D], V [B, T, H*Dv] of one type, with only the
    output wanted; every other form (bias, masks, past, packed inputs, the optional outputs) is
    the reference kernel's, which also owns the checks."""
    h = num_heads if isinstance(num_heads, int) else 0
    n_out = ctx.num_outputs if ctx is not None else 1
    if (n_out == 1 and h > 0 and key is not None and value is not None and bias is None
            and key_padding_mask is None and past_key is None and past_value is None
            and past_sequence_length is None and cache_indirection is None
            and not unidirectional and query.dtype in _INPLACE
            and key.dtype == query.dtype and value.dtype == query.dtype
            and query.ndim == key.ndim == value.ndim == 3
            and key.shape[0] == query.shape[0] == value.shape[0] and key.shape[1] == value.shape[1]
            and key.shape[2] == query.shape[2] and query.shape[2] % h == 0
            and value.shape[2] % h == 0 and query.size and key.size and value.size):
        b, s, hd = query.shape
        t = key.shape[1]
        ab = attention_bias
        if ab is None or (ab.dtype == query.dtype and ab.ndim == 4 and ab.shape[0] in (1, b)
                          and ab.shape[1] in (1, h) and ab.shape[2:] == (s, t)):
            return (_mha(query, key, value, ab, h, scale),)
    return _MHA(query, key, value, bias, key_padding_mask, attention_bias, past_key, past_value,
                past_sequence_length, cache_indirection, num_heads=num_heads,
                unidirectional=unidirectional, scale=scale, mask_filter_value=mask_filter_value,
                ctx=ctx)


#: Score elements of one attention block (query rows of one head, or several whole heads,
#: times the keys). Each block's products re-pack K^T and V for BLAS, so a block wants many
#: rows: measured on whisper_tiny's 6 x 1500 x 1500 scores (one thread, 2-core dev VM under
#: load), 2^16 elements (44-row bands) took 127 ms, 2^17 101, 2^18 87, 2^19 80 and one band per
#: head 76, against 104 for the unblocked product-softmax-product. 2^19 float32 scores (2 MB)
#: still cut a long sequence into bands (5 per whisper head) for the threads to share.
MHA_BLOCK_ELEMENTS = 1 << 19
#: Heads of a short sequence are grouped into at least this many blocks (fewer where there are
#: fewer heads), so that the threads have blocks to share.
MHA_MIN_GROUPS = 4


def _mha(query: np.ndarray, key: np.ndarray, value: np.ndarray, ab: np.ndarray | None, h: int,
         scale: float | None) -> np.ndarray:
    """The fast MultiHeadAttention once its case is checked: the reference's steps (scores,
    scale, bias, softmax, product) block by block. A block is a band of query rows of one
    head (two rows at least, so that BLAS never takes its matrix-vector path for one), or,
    where one head's scores are small (a short sequence), a group of whole heads, so that the
    per-call costs are paid per group: its scores ``q_block @ k^T``, the softmax of
    ``scale * scores + bias`` (with the ``fast`` extra one compiled loop,
    ``jit/rows_loops.softmax_*``: its scale and bias may be one fused multiply-add and its
    exponential is its own, so the result is within a few ulp of the reference's; without it
    the reference's NumPy steps), and ``p_block @ v`` written straight into its place in the
    [B, S, H*Dv] output. The blocks depend only on the shapes and are split over the intra-op
    threads, so the result does not depend on the thread count."""
    b, s, hd = query.shape
    t = key.shape[1]
    d, dv = hd // h, value.shape[2] // h
    dtype = query.dtype
    typ = dtype.type
    sc = typ((1.0 / np.sqrt(d)) if scale is None or scale == 0 else scale)
    # heads as strided views: BLAS reads each head's [S, D] slice with the projection's stride
    q = query.reshape(b, s, h, d).transpose(0, 2, 1, 3)
    kt = key.reshape(b, t, h, d).transpose(0, 2, 3, 1)
    v = value.reshape(b, t, h, dv).transpose(0, 2, 1, 3)
    if ab is not None:
        ab = loop_input(ab)  # C-contiguous: a block's bias is a contiguous matrix
    out = np.empty((b, s, h, dv), dtype)
    o = out.transpose(0, 2, 1, 3)  # heads merged as they are written
    g = max(1, min(-(-h // MHA_MIN_GROUPS), MHA_BLOCK_ELEMENTS // max(1, s * t)))  # heads/block
    bands = 1 if g > 1 else max(1, min(s // 2, -(-(s * t) // MHA_BLOCK_ELEMENTS)))
    groups = -(-h // g)
    step, extra = divmod(s, bands)
    edges = [i * step + min(i, extra) for i in range(bands + 1)]
    total = b * h * s * t

    def blocks(start: int, stop: int) -> None:
        # the loop writes its probabilities beside the scores, not over them: in place, LLVM's
        # vectorized loop would not run (its run-time overlap check fails): 2-4x slower
        bufs = np.empty((2, g * (edges[1] - edges[0]) * t), dtype)
        for i in range(start, stop):
            bi, rest = divmod(i, groups * bands)
            gi, band = divmod(rest, bands)
            h0, h1 = gi * g, min(h, gi * g + g)
            r0, r1 = edges[band], edges[band + 1]
            n = (h1 - h0) * (r1 - r0)
            scores, p = (x[:n * t].reshape(h1 - h0, r1 - r0, t) for x in bufs)
            np.matmul(q[bi, h0:h1, r0:r1], kt[bi, h0:h1], out=scores)
            bias = None
            if ab is not None:  # rows of one head when ab is shared by the heads
                heads = slice(h0, h1) if ab.shape[1] > 1 else slice(0, 1)
                bias = ab[bi % ab.shape[0], heads, r0:r1].reshape(-1, t)
            if not softmax_loop(scores.reshape(n, t), p.reshape(n, t), False, sc, bias,
                                elements=total):
                p = _softmax_numpy(scores, sc, None if bias is None
                                   else bias.reshape(-1, r1 - r0, t))
            np.matmul(p, v[bi, h0:h1], out=o[bi, h0:h1, r0:r1])

    macs = g * (s // bands) * t * (d + dv)  # of one block
    threads.parallel_for(b * groups * bands, blocks,
                         min_per_part=max(1, -(-MIN_BLOCK_MACS // max(1, macs))))
    return out.reshape(b, s, h * dv)


def _softmax_numpy(scores: np.ndarray, scale: np.generic, bias: np.ndarray | None
                   ) -> np.ndarray:
    """``softmax(scale * scores + bias)`` over the rows of ``scores``, in place, by the
    reference's NumPy steps (a row of -inf gives NaN, as there); returns ``scores``."""
    scores *= scale
    if bias is not None:
        scores += bias
    with np.errstate(invalid="ignore"):
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
    return scores


@kernel("FoldBatchNormIntoConv", versions=(1,), domain=DOMAIN)
def fold_batch_norm_into_conv(W: np.ndarray, B: np.ndarray | None, scale: np.ndarray,
                              bias: np.ndarray, mean: np.ndarray, var: np.ndarray, *,
                              epsilon: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """``(W * a, (B - mean) * a + bias)`` with ``a = scale / sqrt(var + epsilon)`` per output
    channel (computed in float64, stored in W's type): ``BN(Conv(x, W, B))`` equals
    ``Conv(x, W', B')``."""
    if W.ndim < 3:
        raise ExecutionError(f"Conv: weight W must have rank >= 3, got shape {list(W.shape)}")
    m = W.shape[0]
    for name, p in (("scale", scale), ("B", bias), ("input_mean", mean), ("input_var", var)):
        if p.ndim != 1 or p.shape[0] != m:
            raise ExecutionError(f"BatchNormalization: {name} must have shape [{m}] (one value "
                                 f"per channel of the Conv output), got {list(p.shape)}")
    if B is not None and (B.ndim != 1 or B.shape[0] != m):
        raise ExecutionError(f"Conv: bias B must be 1-D with {m} values, got shape "
                             f"{list(B.shape)}")
    f64 = np.float64
    a = scale.astype(f64) / np.sqrt(var.astype(f64) + f64(epsilon))
    w2 = (W.astype(f64) * a.reshape((m,) + (1,) * (W.ndim - 1))).astype(W.dtype)
    b0 = B.astype(f64) if B is not None else np.zeros(m, f64)
    b2 = ((b0 - mean.astype(f64)) * a + bias.astype(f64)).astype(W.dtype)
    return w2, b2
