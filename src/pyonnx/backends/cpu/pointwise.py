"""Convolution products by the compiled, register-blocked product of ``jit/gemm_loops.py`` (the
``fast`` extra, float32), with the weights packed once per weight tensor and the bias, a
residual and the activation applied in the product's own stores.

* :func:`pointwise_conv`: a 1x1 convolution without padding at unit strides, ``Y[n] = W @
  X[n]`` for W [M, C] and each image's X [C, positions], plus the bias and FusedConv's residual
  ``Z``, then Relu, Clip, HardSigmoid or HardSwish (:func:`store_activation`) before the one
  store of each output. :mod:`pyonnx.backends.cpu.conv` and ``fused`` route to it the 1x1
  convolutions that :func:`~pyonnx.backends.cpu.conv.packed_pointwise` accepts.
* :func:`product_into`: the same product for any column matrix, into a band of a larger output:
  the larger kernels of one group (a network's stem and other kxk convolutions) once
  :mod:`~pyonnx.backends.cpu.conv` has built their columns.

Both return None or False where the compiled loop does not run, and the caller takes its BLAS
path: numba missing or disabled, another element type, work below ``jit.MIN_ELEMENTS``.

Why: OpenBLAS packs both operands on every call, and a model's weights are rarely in cache when
their node runs, so the packing reads them from memory in its strided order; OpenBLAS's product
also leaves the bias and activation to a pass of their own over Y. In a session, one at a time
against BLAS and alternating run by run (median of the per-run ratios): mobilenet_v2 0.91,
mobilenet_v3_large 0.92, efficientnet_b0 0.96-0.98, mobilenet_v3_small 0.98. On a warm cache
the two products run at the same speed (45-85 GFLOP/s on one core for these shapes, either
way).

Packed weights are remembered per weight array while it lives, for arrays that cannot change
(``writeable`` False: a session hands its kernels its initializers and folded constants
read-only); a weight fed at run time is packed on each call. The packed copy is kept beside the
original (measured: 5.3 MB more for mobilenet_v2, 7.6 for efficientnet_b0, 3.5 for
mobilenet_v3_large). Products of at least ``MIN_SHARED_MACS`` are cut into pieces (runs of W's
panels, or of X's columns where X is the larger operand) that the calling thread and the idle
intra-op threads claim one at a time inside one compiled loop
(:func:`pyonnx.backends.cpu.threads.shared_loop`); the pieces compute the same outputs to the bit
as one call.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np

from pyonnx.backends.cpu import jit, threads

__all__ = ["epilogue_values", "pack_rows", "pointwise_conv", "pointwise_product", "product",
           "product_into", "store_activation", "Product", "IDENTITY"]

#: Rows of W per packed panel and columns of X per tile: the register tile of
#: ``jit/gemm_loops.py``, which takes them from here (6 x 16 float32 outputs are 12 AVX2
#: registers, leaving 4 for the two loaded columns and the broadcast weight).
ROWS = 6
COLS = 16
#: Bytes of X's columns one chunk of the loop holds: half the second-level cache of a core
#: (512 KiB on the dev machine), so that the chunk stays there while every panel passes over it.
_CHUNK_BYTES = 256 << 10
#: Products of at least this many multiply-adds are shared with the idle intra-op threads, in
#: ``threads.MAX_PIECES`` pieces (fewer where there are fewer panels): about 50 µs of one core.
#: Smaller work loses to the hand-off (a pool thread starts its pieces about 5 µs after the
#: loop's caller, see :mod:`pyonnx.backends.cpu.jit.sync_loops`). Default threads (two), each
#: configuration in its own process, three interleaved rounds, medians (ms; depthwise loops at
#: an eighth of the size, see ``conv.MIN_SHARED_DEPTHWISE_MACS``):
#:
#: ==================  =====  =====  =====  =====  =====  =====  =====
#: set, size (2^n)     1: 20  1: 21  1: 22  2: 18  2: 19  2: 20  2: 21
#: ==================  =====  =====  =====  =====  =====  =====  =====
#: mobilenet_v2        8.18   8.03   8.54   9.11   9.83   10.6   9.92
#: efficientnet_b0     15.1   15.2   15.8   18.9   21.6   15.8   17.9
#: mobilenet_v3_large  8.21   8.12   8.32   8.29   8.84   8.33   8.01
#: mobilenet_v3_small  4.10   4.13   4.53   5.04   4.94   5.10   5.29
#: ==================  =====  =====  =====  =====  =====  =====  =====
MIN_SHARED_MACS = 1 << 20

#: The gates of the compiled loops' fused activation, applied after the clip (``jit/gemm_loops.py``
#: and ``conv_loops.depthwise2d`` take them from here): none, HardSigmoid, HardSwish, and the
#: product's only: Sigmoid, Swish.
NONE, HARD_SIGMOID, HARD_SWISH, SIGMOID, SWISH = 0, 1, 2, 3, 4

#: An epilogue that changes nothing: (lower bound, upper bound, alpha, beta, gate).
IDENTITY = (-np.inf, np.inf, 0.0, 0.0, NONE)


def store_activation(activation: str, params: Sequence[float]
                     ) -> tuple[float, float, float, float, int] | None:
    """The loop's epilogue (lower bound, upper bound, alpha, beta, gate) that applies the fused
    ``activation`` with its ``params`` in the product's stores, or None for one it cannot
    apply (the caller applies that one after the product)."""
    if activation == "":
        return IDENTITY
    if activation == "Relu":
        return (0.0, np.inf, 0.0, 0.0, NONE)
    if activation == "Clip":
        return (params[0], params[1], 0.0, 0.0, NONE)
    if activation == "HardSigmoid":
        return (-np.inf, np.inf, params[0], params[1], HARD_SIGMOID)
    if activation == "HardSwish":
        return (-np.inf, np.inf, 1 / 6, 0.5, HARD_SWISH)
    if activation == "Sigmoid":
        return (-np.inf, np.inf, 1.0, 0.0, SIGMOID)
    if activation == "Swish":
        return (-np.inf, np.inf, params[0], 0.0, SWISH)
    return None



#: id of a constant weight -> (a weak reference to it, its packed panels, its bias, the padded
#: bias); an entry is used only while its weight is that same live array
_packed: dict[int, tuple[weakref.ref, np.ndarray, np.ndarray | None, np.ndarray]] = {}


def epilogue_values(epilogue: tuple[float, float, float, float, int], dtype: np.dtype
                    ) -> np.ndarray:
    """An epilogue's (lower bound, upper bound, alpha, beta) as an array of the loop's element
    type (a bound beyond float32's range becomes +-inf)."""
    with np.errstate(over="ignore"):
        return np.array(epilogue[:4], dtype)


def pack_rows(w2: np.ndarray) -> np.ndarray:
    """W [M, K] as panels of ROWS rows, each laid out [K, ROWS] (k-major), the rows past M zero:
    a 1-D float32 array of ``ceil(M / ROWS) * K * ROWS`` elements."""
    m, k = w2.shape
    panels = -(-m // ROWS)
    padded = np.zeros((panels * ROWS, k), np.float32)
    padded[:m] = w2
    return np.ascontiguousarray(padded.reshape(panels, ROWS, k).transpose(0, 2, 1)).reshape(-1)


def _packed_weights(w: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(packed W, bias padded to whole panels) for the convolution weight ``w`` [M, K, 1...]
    and its bias, remembered while ``w`` lives when it cannot change."""
    m = w.shape[0]
    key = id(w)
    hit = _packed.get(key)
    if hit is not None and hit[0]() is w and hit[2] is bias:
        return hit[1], hit[3]
    wp = pack_rows(w.reshape(m, -1).astype(np.float32, copy=False))
    bp = np.zeros(-(-m // ROWS) * ROWS, np.float32)
    if bias is not None:
        bp[:m] = bias
    if not w.flags.writeable and (bias is None or not bias.flags.writeable):
        # No lock: the callback may run inside any allocation of any thread (garbage
        # collection), one holding a lock included. A race between two threads here at worst
        # drops a valid entry, which is packed again on its next use.
        def forget(ref: weakref.ref, key: int = key) -> None:
            entry = _packed.get(key)
            if entry is not None and entry[0] is ref:
                _packed.pop(key, None)

        _packed[key] = (weakref.ref(w, forget), wp, bias, bp)
    return wp, bp


def pointwise_conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                   z: np.ndarray | None = None,
                   epilogue: tuple[float, float, float, float, int] = IDENTITY
                   ) -> np.ndarray | None:
    """``act(Conv(x, w, bias) + z)`` for a 1x1 kernel without padding at unit strides and one
    group: x (N, C, *spatial) and w (M, C, 1, ...) float32, ``bias`` (M,) or None, ``z`` None
    or float32 of the output's shape, ``act`` the ``epilogue`` (:func:`store_activation`).
    None (nothing computed) where the compiled loop does not run."""
    if z is not None and z.shape != (x.shape[0], w.shape[0]) + x.shape[2:]:
        return None
    plan = pointwise_product(x, w, bias, z is not None, epilogue)
    return None if plan is None else plan.conv(x, z)


def pointwise_product(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, has_z: bool,
                      epilogue: tuple[float, float, float, float, int]) -> Product | None:
    """The packed product of :func:`pointwise_conv` for inputs of x's shape, prepared for
    calls (:meth:`Product.conv`); None where the loop does not run for them."""
    if x.dtype != np.float32 or x.ndim < 2:
        return None
    return product(w, bias, x.shape[0], x.shape[1], x.size // max(1, x.shape[0] * x.shape[1]),
                   epilogue, has_z)


def product_into(w: np.ndarray, bias: np.ndarray | None, cols: np.ndarray, y: np.ndarray,
                 image_stride: int, row_stride: int, z: np.ndarray | None = None,
                 epilogue: tuple[float, float, float, float, int] = IDENTITY) -> bool:
    """For each image i, ``Y_i = act(W @ cols[i] + bias (+ Z_i))`` by the packed
    product, where W is ``w`` [M, ...] seen as [M, K] and ``cols`` [N, K, L] (C-contiguous)
    holds each image's columns (a 1x1 convolution's input, or the column matrix of a larger
    kernel's). Y_i's row r is ``y[i * image_stride + r * row_stride:][:L]`` in the flat
    float32 array ``y`` (a band of a larger output where ``row_stride`` > L); ``z``, when
    given, is laid out as ``y``; ``act`` is the ``epilogue`` (:func:`store_activation`). False
    where the loop does not run (the caller then computes Y itself): numba unavailable or
    disabled, another element type than float32, empty or small work."""
    if cols.dtype != np.float32:
        return False
    plan = product(w, bias, *cols.shape, epilogue, z is not None)
    return plan is not None and plan.into(cols, y, image_stride, row_stride, z)


def product(w: np.ndarray, bias: np.ndarray | None, n_img: int, k: int, length: int,
            epilogue: tuple[float, float, float, float, int], has_z: bool
            ) -> Product | None:
    """The packed product of ``w`` (float32 [M, ...] seen as [M, K]) and ``bias`` with columns
    of ``n_img`` images x K x ``length`` and the ``epilogue``, prepared for calls
    (:class:`Product`); None where the loop does not run for them (numba unavailable or
    disabled, another element type than float32, empty or small work)."""
    m = w.shape[0]
    if (w.dtype != np.float32 or k == 0 or length == 0 or m == 0 or w.size != m * k
            or (bias is not None and bias.dtype != np.float32)):
        return None
    if not large_enough(n_img, m, k, length) or not jit.available():
        return None
    return Product(w, bias, n_img, k, length, epilogue, has_z)


def large_enough(n_img: int, m: int, k: int, length: int) -> bool:
    """Whether a product of ``n_img`` x [M, K] @ [K, L] takes the packed product: at least
    ``jit.MIN_ELEMENTS`` outputs, or ``MIN_PRODUCT_MACS`` multiply-adds over at least a tile's
    columns (COLS)."""
    return n_img * m * length >= jit.MIN_ELEMENTS \
        or (length >= COLS and n_img * m * k * length >= MIN_PRODUCT_MACS)


#: Products with fewer outputs than ``jit.MIN_ELEMENTS`` take the packed product from this
#: many multiply-adds: the projections of mobile CNNs' late layers (960 -> 160 channels at 7x7:
#: 7.8K outputs, 7.5M multiply-adds), which OpenBLAS computed with a pass of their own for the
#: bias and the residual, and on one thread. In-process A/B, alternating, medians of 30 runs,
#: default threads / one thread, against outputs alone: mobilenet_v2 14.55 -> 14.55 / 12.94 ->
#: 12.45 ms, v3_large 10.79 -> 10.03 / 12.08 -> 11.68, v3_small 5.29 -> 4.98 / 5.27 -> 4.90,
#: efficientnet_b0 18.96 -> 18.05 / 23.12 -> 22.93 (2^20 and 2^22 gained less).
MIN_PRODUCT_MACS = 1 << 18


class Product:
    """The packed product's arguments that depend only on its weights, bias, epilogue and
    column shape (see :func:`product`): the packed weights, the epilogue's values, the column
    chunks and, with more than one intra-op thread (the budget at preparation), its pieces.
    A FusedConv node keeps its Product between runs (:mod:`pyonnx.backends.cpu.fused`), so
    that a run makes only the call."""

    __slots__ = ("wp", "bp", "m", "k", "n_img", "length", "ep", "gate", "chunk", "panels",
                 "has_z", "by_chunks", "parts", "macs")

    def __init__(self, w: np.ndarray, bias: np.ndarray | None, n_img: int, k: int,
                 length: int, epilogue: tuple[float, float, float, float, int],
                 has_z: bool) -> None:
        self.m = m = w.shape[0]
        self.k, self.n_img, self.length = k, n_img, length
        self.wp, self.bp = _packed_weights(w, bias)
        self.ep = epilogue_values(epilogue, np.dtype(np.float32))
        self.gate = int(epilogue[4])
        self.has_z = int(has_z)
        chunk = max(16, _CHUNK_BYTES // (4 * k) // 16 * 16)
        self.panels = panels = -(-m // ROWS)
        self.macs = macs = m * k * length
        shared = threads.budget() > 1 and macs >= MIN_SHARED_MACS \
            and (panels >= 2 or length >= 32)
        self.by_chunks = self.parts = 0
        if shared:
            # Pieces claimed by this thread and idle pool ones: several per thread, so that a
            # thread that starts late or runs slower leaves the rest to the others. Each piece
            # reads the smaller operand whole: a piece of X's columns passes through every
            # panel of W, a piece of W's panels over all of X (a stem's product, 32 x 27 by
            # 12544 columns, ran slower on two threads than on one in pieces of panels). The
            # column chunks then shrink to a piece's width (the sums, hence the outputs, do
            # not depend on them).
            self.by_chunks = int(length > m)
            if self.by_chunks:
                chunk = min(chunk, (-(-length // threads.MAX_PIECES) + COLS - 1) // COLS * COLS)
            self.parts = min(-(-length // chunk) if self.by_chunks else panels, threads.MAX_PIECES)
        self.chunk = chunk

    def into(self, cols: np.ndarray, y: np.ndarray, image_stride: int, row_stride: int,
             z: np.ndarray | None) -> bool:
        """:func:`product_into`'s computation with these arguments (``cols`` of the prepared
        shape, ``z`` given exactly when prepared with one)."""
        xf = cols.reshape(self.n_img, -1)
        zf = z if z is not None else _NO_Z
        for img in range(self.n_img):
            args = (self.wp, self.bp, self.m, self.k, xf[img], self.length, y,
                    img * image_stride, row_stride, zf, self.has_z, self.ep, self.gate, 0,
                    self.panels, self.chunk)
            if self.parts >= 2:
                ok = threads.shared_loop(
                    "gemm_loops.pointwise_claimed",
                    args + (self.by_chunks, np.zeros(2, np.int64), self.parts), self.parts,
                    elements=jit.MIN_ELEMENTS)
            else:
                ok = jit.call("gemm_loops.pointwise", *args, elements=jit.MIN_ELEMENTS)
            if not ok:
                return False
        return True

    def conv(self, x: np.ndarray, z: np.ndarray | None) -> np.ndarray | None:
        """:func:`pointwise_conv`'s result for ``x`` (and ``z``) of the prepared shapes, or
        None where the loop did not run (or ``z`` is not float32)."""
        if (z is not None and z.dtype != np.float32) or not jit.available():
            return None  # before allocating: a kept call tried where loops are off returns at once
        y = np.empty((self.n_img, self.m) + x.shape[2:], np.float32)
        if not self.into(np.ascontiguousarray(x).reshape(self.n_img, self.k, self.length),
                         y.reshape(-1), self.m * self.length, self.length,
                         None if z is None else np.ascontiguousarray(z).reshape(-1)):
            return None
        return y


# the loop's residual argument where there is none (it reads no element of it)
_NO_Z = np.zeros(1, np.float32)
