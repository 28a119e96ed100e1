"""LLVM IR pieces of the register tiles (``gemm_loops``' product, ``conv_loops``' depthwise
tile): 8-wide float32 vectors, their loads and stores, and the fused activation applied in
registers before a tile's one store.

numba does not vectorize a tile written as scalar Python (its accumulators stay scalars), so the
tiles are numba intrinsics whose bodies are written in LLVM's vector instructions with these
helpers. On a machine without 8-wide vectors LLVM splits each operation into the widths it has;
the results are the same.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import cgutils

from pyonnx.backends.cpu.jit import act_loops
from pyonnx.backends.cpu.pointwise import HARD_SIGMOID, HARD_SWISH, NONE, SIGMOID, SWISH

VEC = 8
F32 = ir.FloatType()
V8 = ir.VectorType(F32, VEC)
I32 = ir.IntType(32)
_ZERO_MASK = ir.Constant(ir.VectorType(I32, VEC), [0] * VEC)


def vector_at(builder: ir.IRBuilder, base: ir.Value, offset: ir.Value) -> ir.Value:
    """A pointer to the 8 floats at ``base[offset]`` (unaligned)."""
    return builder.bitcast(builder.gep(base, [offset]), V8.as_pointer())


def splat(builder: ir.IRBuilder, s: ir.Value) -> ir.Value:
    """The float ``s`` in all 8 lanes."""
    v = builder.insert_element(ir.Constant(V8, ir.Undefined), s, ir.Constant(I32, 0))
    return builder.shuffle_vector(v, ir.Constant(V8, ir.Undefined), _ZERO_MASK)


def fma(builder: ir.IRBuilder) -> ir.Function:
    """LLVM's fused multiply-add of 8 floats, ``fma(a, b, c) = a * b + c``."""
    return cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(V8, [V8, V8, V8]), "llvm.fma.v8f32")


def array_data(context, builder: ir.IRBuilder, array_type, value: ir.Value) -> ir.Value:
    """The data pointer of an intrinsic's array argument."""
    return context.make_array(array_type)(context, builder, value).data


def store(builder: ir.IRBuilder, v: ir.Value, base: ir.Value, offset: ir.Value,
          cols: ir.Value) -> None:
    """``base[offset + j] = v[j]`` for the lanes ``j < cols``: one vector store where all 8 are
    kept, else a store per kept lane. (AVX2's masked store is microcoded on some AMD cores,
    measured slower than the lanes' stores there.)"""
    idx = offset.type
    whole = builder.icmp_signed(">=", cols, ir.Constant(idx, VEC))
    with builder.if_else(whole) as (then, otherwise):
        with then:
            builder.store(v, vector_at(builder, base, offset), align=4)
        with otherwise:
            for lane in range(VEC):
                with builder.if_then(builder.icmp_signed("<", ir.Constant(idx, lane), cols)):
                    builder.store(builder.extract_element(v, ir.Constant(I32, lane)),
                                  builder.gep(base, [builder.add(offset,
                                                                 ir.Constant(idx, lane))]))


def _sigmoid(builder: ir.IRBuilder, v: ir.Value, alpha: ir.Value, fma_fn: ir.Function
             ) -> ir.Value:
    """``1 / (1 + exp(-alpha * v))`` of an 8-float vector, NaN where v is NaN. exp(t) = 2**k *
    exp(r), k = round(t / ln 2), r = t - k * ln 2 (ln 2 in two parts), exp(r) its Taylor
    polynomial of degree 7: the constants and the clamp of ``act_loops.bias_activation``'s
    sigmoid, so the two compute the same function (see there for its accuracy)."""
    def const(c: float) -> ir.Constant:
        return ir.Constant(V8, [float(np.float32(c))] * VEC)

    floor = cgutils.get_or_insert_function(builder.module, ir.FunctionType(V8, [V8]),
                                           "llvm.floor.v8f32")
    t = builder.fmul(v, builder.fneg(alpha))
    t_min, t_max = const(act_loops.T_MIN), const(act_loops.T_MAX)
    t = builder.select(builder.fcmp_ordered("<", t, t_min), t_min, t)
    t = builder.select(builder.fcmp_ordered(">", t, t_max), t_max, t)
    k = builder.call(floor, [builder.call(fma_fn, [t, const(act_loops.LOG2E), const(0.5)])])
    r = builder.fsub(builder.fsub(t, builder.fmul(k, const(act_loops.LN2_HI))),
                     builder.fmul(k, const(act_loops.LN2_LO)))
    q = const(1 / 5040)
    for c in (1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1.0, 1.0):
        q = builder.call(fma_fn, [q, r, const(c)])
    i32x8 = ir.VectorType(I32, VEC)
    # 2**k from its exponent bits (k = 128, from the clamp's top, gives +inf: the sigmoid 0)
    bits = builder.shl(builder.add(builder.fptosi(k, i32x8), ir.Constant(i32x8, [127] * VEC)),
                       ir.Constant(i32x8, [23] * VEC))
    e = builder.fmul(q, builder.bitcast(bits, V8))
    sig = builder.fdiv(const(1.0), builder.fadd(const(1.0), e))
    # a NaN input converts to an undefined k: the result is the NaN itself
    return builder.select(builder.fcmp_unordered("uno", v, v), v, sig)


class Activation:
    """The fused activation of a tile's outputs, set up once per tile: ``v = clip(v, ep[0],
    ep[1])`` (comparisons that NaN fails, so NaN stays NaN, as in ``np.clip``), then what the
    ``gate`` code (:mod:`pyonnx.backends.cpu.pointwise`'s) asks for: the hard gate ``t =
    clip(ep[2] * v + ep[3], 0, 1)`` (HardSigmoid gives t, HardSwish v * t) or the sigmoid ``s``
    of ``ep[2] * v`` (Sigmoid s, Swish v * s). ``ep`` is the pointer to the four float32
    values, ``gate`` an integer. Without ``sigmoid``, the tile has no code for the sigmoid's
    gates, and its caller never passes them."""

    def __init__(self, builder: ir.IRBuilder, ep: ir.Value, gate: ir.Value, idx: ir.Type,
                 sigmoid: bool = True) -> None:
        self.builder = builder
        self.sigmoid = sigmoid
        self.fma = fma(builder)
        self.lo, self.hi, self.alpha, self.beta = (
            splat(builder, builder.load(builder.gep(ep, [ir.Constant(idx, i)])))
            for i in range(4))
        self.hard_swish = builder.icmp_signed("==", gate, ir.Constant(gate.type, HARD_SWISH))
        self.hard_sigmoid = builder.icmp_signed("==", gate,
                                                ir.Constant(gate.type, HARD_SIGMOID))
        self.swish = builder.icmp_signed("==", gate, ir.Constant(gate.type, SWISH))
        self.smooth = builder.or_(self.swish, builder.icmp_signed(
            "==", gate, ir.Constant(gate.type, SIGMOID)))

        self.plain = builder.icmp_signed("==", gate, ir.Constant(gate.type, NONE))

    def clip(self, v: ir.Value) -> ir.Value:
        """``v`` clipped to the bounds (the whole activation where there is no gate)."""
        b = self.builder
        v = b.select(b.fcmp_ordered("<", v, self.lo), self.lo, v)
        return b.select(b.fcmp_ordered(">", v, self.hi), self.hi, v)

    def store(self, outputs: list[tuple[ir.Value, ir.Value, ir.Value, ir.Value]]) -> None:
        """:func:`store` of each ``(v, base, offset, cols)`` in ``outputs`` with ``v``
        activated (:meth:`apply`), branching once for all of them on whether there is a gate:
        a short tile (a depthwise convolution's, 9 or 25 multiply-adds per output) measured a
        third slower when every output also went through the gate's selects."""
        with self.builder.if_else(self.plain) as (then, otherwise):
            with then:
                for v, base, offset, cols in outputs:
                    store(self.builder, self.clip(v), base, offset, cols)
            with otherwise:
                activated = self.apply([v for v, _, _, _ in outputs])
                for a, (_, base, offset, cols) in zip(activated, outputs):
                    store(self.builder, a, base, offset, cols)

    def apply(self, values: list[ir.Value]) -> list[ir.Value]:
        """The activation of each vector of ``values``. The sigmoid (Sigmoid, Swish; two dozen
        operations per vector, more than a short product itself) is computed only where asked
        for, for all the vectors in one block, so that their long dependency chains run side by
        side."""
        b = self.builder
        zero, one = ir.Constant(V8, [0.0] * VEC), ir.Constant(V8, [1.0] * VEC)
        values = [self.clip(v) for v in values]

        def hard(v: ir.Value) -> ir.Value:
            # the gate t = clip(alpha * v + beta, 0, 1): HardSigmoid t, HardSwish v * t
            t = b.call(self.fma, [v, self.alpha, self.beta])
            t = b.select(b.fcmp_ordered("<", t, zero), zero, t)
            t = b.select(b.fcmp_ordered(">", t, one), one, t)
            return b.select(self.hard_swish, b.fmul(v, t), b.select(self.hard_sigmoid, t, v))

        if not self.sigmoid:
            return [hard(v) for v in values]
        results = [cgutils.alloca_once(b, V8) for _ in values]
        with b.if_else(self.smooth) as (then, otherwise):
            with then:
                sigmoids = [_sigmoid(b, v, self.alpha, self.fma) for v in values]
                for v, sig, out in zip(values, sigmoids, results):
                    b.store(b.select(self.swish, b.fmul(v, sig), sig), out)
            with otherwise:
                for v, out in zip(values, results):
                    b.store(hard(v), out)
        return [b.load(out) for out in results]
