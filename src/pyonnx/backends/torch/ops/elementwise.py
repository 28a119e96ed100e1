"""Element-wise operators: unary math, activations, broadcasting binary and variadic operators,
comparisons and logic, Cast, Where, Clip."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pyonnx.backends.torch.dtypes import torch_dtype
from pyonnx.backends.torch.ops import torch_op

# ---------------------------------------------------------------- unary: op -> torch function

_UNARY = {
    "Abs": torch.abs, "Neg": torch.neg, "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt,
    "Ceil": torch.ceil, "Floor": torch.floor, "Round": torch.round, "Sin": torch.sin,
    "Cos": torch.cos, "Tan": torch.tan, "Asin": torch.asin, "Acos": torch.acos,
    "Atan": torch.atan, "Sinh": torch.sinh, "Cosh": torch.cosh, "Asinh": torch.asinh,
    "Acosh": torch.acosh, "Atanh": torch.atanh, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
    "Relu": torch.relu, "Erf": torch.erf, "Sign": torch.sign, "IsNaN": torch.isnan,
    "Not": torch.logical_not, "BitwiseNot": torch.bitwise_not, "Softsign": F.softsign,
    "Softplus": F.softplus, "Mish": F.mish,
}
for _name, _fn in _UNARY.items():
    torch_op(_name)(_fn)


@torch_op("Identity")
def identity(x):
    return x


@torch_op("Reciprocal")
def reciprocal(x):
    return torch.reciprocal(x).to(x.dtype)


# ---------------------------------------------------------------- activations with attributes

@torch_op("LeakyRelu")
def leaky_relu(x, alpha=0.01):
    return F.leaky_relu(x, alpha)


@torch_op("Elu")
def elu(x, alpha=1.0):
    return F.elu(x, alpha)


@torch_op("Selu")
def selu(x, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


@torch_op("Celu")
def celu(x, alpha=1.0):
    return F.celu(x, alpha)


@torch_op("HardSigmoid")
def hard_sigmoid(x, alpha=0.2, beta=0.5):
    return torch.clamp(alpha * x + beta, 0, 1)


@torch_op("HardSwish")
def hard_swish(x):
    return x * torch.clamp(x / 6 + 0.5, 0, 1)


@torch_op("ThresholdedRelu")
def thresholded_relu(x, alpha=1.0):
    return torch.where(x > alpha, x, torch.zeros_like(x))


@torch_op("Shrink")
def shrink(x, bias=0.0, lambd=0.5):
    out = torch.where(x < -lambd, x + bias, torch.where(x > lambd, x - bias, torch.zeros_like(x)))
    return out.to(x.dtype)


@torch_op("Gelu")
def gelu(x, approximate="none"):
    return F.gelu(x, approximate=approximate)


@torch_op("Swish")
def swish(x, alpha=1.0):
    return x * torch.sigmoid(alpha * x)


@torch_op("PRelu")
def prelu(x, slope):
    return torch.where(x < 0, x * slope, x)


@torch_op("IsInf")
def isinf(x, detect_negative=1, detect_positive=1):
    return (torch.isposinf(x) & bool(detect_positive)) | (torch.isneginf(x) & bool(detect_negative))


# ---------------------------------------------------------------- binary, broadcasting

for _name, _fn in {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul,
                   "And": torch.logical_and, "Or": torch.logical_or, "Xor": torch.logical_xor,
                   "Equal": torch.eq, "Less": torch.lt, "Greater": torch.gt,
                   "LessOrEqual": torch.le, "GreaterOrEqual": torch.ge,
                   "BitwiseAnd": torch.bitwise_and, "BitwiseOr": torch.bitwise_or,
                   "BitwiseXor": torch.bitwise_xor}.items():
    torch_op(_name)(_fn)


@torch_op("Div")
def div(a, b):
    if a.dtype.is_floating_point or a.dtype.is_complex:
        return torch.div(a, b)
    # integer division truncates toward zero, as C does
    return torch.div(a, b, rounding_mode="trunc")


@torch_op("Pow")
def pow_(x, y):
    return torch.pow(x, y).to(x.dtype)


@torch_op("Mod")
def mod(a, b, fmod=0):
    if fmod:
        return torch.fmod(a, b)
    return torch.remainder(a, b)  # the result takes the divisor's sign, as Python's %


@torch_op("BitShift")
def bit_shift(x, y, direction=""):
    if direction == "LEFT":
        return torch.bitwise_left_shift(x, y)
    return torch.bitwise_right_shift(x, y)


def _variadic(fn):
    def op(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out
    return op


torch_op("Max")(_variadic(torch.maximum))
torch_op("Min")(_variadic(torch.minimum))
torch_op("Sum")(_variadic(torch.add))


@torch_op("Mean")
def mean(*xs):
    return _variadic(torch.add)(*xs) / len(xs)


@torch_op("Where")
def where(cond, x, y):
    return torch.where(cond, x, y)


# ---------------------------------------------------------------- Clip

@torch_op("Clip", 1)
def clip_attr(x, min=-3.4028234663852886e38, max=3.4028234663852886e38, consumed_inputs=None):
    return torch.clamp(x, min, max)


@torch_op("Clip", 11)
def clip(x, min=None, max=None):
    if min is not None:
        x = torch.maximum(x, min.to(x.dtype))
    if max is not None:
        x = torch.minimum(x, max.to(x.dtype))
    return x


# ---------------------------------------------------------------- Cast

def _cast_check(node):
    a = node.attributes.get("to")
    if a is not None:
        from pyonnx.backends.torch.dtypes import TORCH_DTYPE
        if a.value not in [int(k) for k in TORCH_DTYPE]:
            return f"Cast to element type {a.value} is not a torch dtype"
    return None


def _cast(x, dtype):
    if dtype == torch.bool or x.dtype == dtype:
        return x.to(dtype)
    if x.dtype.is_floating_point and not dtype.is_floating_point and not dtype.is_complex:
        # float -> integer truncates toward zero; NaN and out-of-range values are undefined
        return torch.trunc(x).to(dtype)
    return x.to(dtype)


@torch_op("Cast", check=_cast_check)
def cast(x, to, saturate=1, round_mode="up"):
    return _cast(x, torch_dtype(to))


@torch_op("CastLike")
def cast_like(x, like, saturate=1, round_mode="up"):
    return _cast(x, like.dtype)

