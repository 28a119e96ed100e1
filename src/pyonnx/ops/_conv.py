"""Window geometry shared by the convolution and pooling kernels.

A sliding-window operator (Conv, ConvTranspose, DeformConv, Col2Im, the pools) is described along
each spatial axis by a kernel size, a stride, a dilation and the padding added before and after
the input. :func:`resolve_window` turns the node's attributes (``auto_pad``, ``pads``, ``strides``,
``dilations``, ``ceil_mode``) into one :class:`Window` with the output size and the padding that
the computation needs, checking every value and saying what is wrong with it. The other helpers
pad an input once and give the strided view of one kernel offset, so that every kernel computes
on views of a single padded buffer.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from pyonnx.errors import ExecutionError

__all__ = [
    "AUTO_PADS",
    "Window",
    "resolve_window",
    "int_attr_list",
    "pad_spatial",
    "offset_slices",
    "kernel_offsets",
]

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclasses.dataclass(frozen=True)
class Window:
    """The geometry of a sliding window over the spatial axes of an input.

    ``pads_begin``/``pads_end`` are the padding the operator defines (explicit or derived from
    ``auto_pad``); ``extra_end`` is padding beyond ``pads_end`` that ``ceil_mode`` needs so the
    last window lies inside the buffer (those positions are never part of the input nor of the
    declared padding). ``out`` is the output spatial shape.
    """

    in_shape: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    extra_end: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.kernel)

    @property
    def effective_kernel(self) -> tuple[int, ...]:
        """Extent of the dilated kernel along each axis: ``(k - 1) * d + 1``."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations))

    @property
    def read_extent(self) -> tuple[int, ...]:
        """Extent of the padded input that some window reads along each axis (the windows may
        leave the end of the padded input unread): ``(out - 1) * stride + effective kernel``."""
        return tuple((o - 1) * s + e for o, s, e in zip(self.out, self.strides,
                                                          self.effective_kernel))

    @property
    def padded(self) -> bool:
        """Whether the computation needs a padded copy of the input."""
        return any(self.pads_begin) or any(self.pads_end) or any(self.extra_end)

    @property
    def is_identity_window(self) -> bool:
        """Kernel of ones, stride one, no padding: every output is one input position."""
        return (all(k == 1 for k in self.kernel) and all(s == 1 for s in self.strides)
                and not self.padded)


def int_attr_list(value: Sequence[int] | np.ndarray | None, n: int, default: int, name: str,
                  minimum: int) -> tuple[int, ...]:
    """An ``INTS`` attribute with one value per spatial axis (``n`` of them), checked.

    Absent (``None`` or empty) means ``default`` on every axis.
    """
    if value is None or len(value) == 0:
        return (default,) * n
    vals = tuple(int(v) for v in value)
    if len(vals) != n:
        raise ExecutionError(f"{name} has {len(vals)} values {list(vals)} but the input has "
                             f"{n} spatial axes: give exactly one value per spatial axis")
    bad = [v for v in vals if v < minimum]
    if bad:
        raise ExecutionError(f"{name} {list(vals)} contains {bad[0]}; every value must be "
                             f">= {minimum}")
    return vals


def resolve_window(in_shape: Sequence[int], kernel: Sequence[int], *,
                   strides: Sequence[int] | None = None,
                   dilations: Sequence[int] | None = None,
                   pads: Sequence[int] | None = None,
                   auto_pad: str = "NOTSET",
                   ceil_mode: int = 0) -> Window:
    """Output shape and padding of a sliding window, following the Conv/pooling spec text.

    * ``NOTSET``: explicit ``pads`` (``[x1_begin, x2_begin, ..., x1_end, x2_end, ...]``);
      ``out = floor_or_ceil((in + pads - ((k - 1) * d + 1)) / s) + 1``, and with ``ceil_mode`` a
      window that would start inside the end padding is dropped;
    * ``VALID``: no padding;
    * ``SAME_UPPER`` / ``SAME_LOWER``: ``out = ceil(in / s)`` and the total padding needed to
      reach it (never negative) split evenly, the odd unit at the end (UPPER) or beginning (LOWER).
    """
    in_shape = tuple(int(v) for v in in_shape)
    n = len(in_shape)
    kernel = tuple(int(k) for k in kernel)
    if len(kernel) != n:
        raise ExecutionError(f"kernel_shape {list(kernel)} has {len(kernel)} values but the "
                             f"input has {n} spatial axes")
    if any(k < 1 for k in kernel):
        raise ExecutionError(f"kernel_shape {list(kernel)} must be >= 1 along every axis")
    s = int_attr_list(strides, n, 1, "strides", 1)
    d = int_attr_list(dilations, n, 1, "dilations", 1)
    if not isinstance(auto_pad, str):
        auto_pad = str(auto_pad)
    if auto_pad not in AUTO_PADS:
        raise ExecutionError(f"auto_pad {auto_pad!r} is not one of {', '.join(AUTO_PADS)}")
    ek = tuple((k - 1) * dd + 1 for k, dd in zip(kernel, d))

    if auto_pad == "NOTSET":
        if pads is None or len(pads) == 0:
            pb, pe = (0,) * n, (0,) * n
        else:
            pv = [int(v) for v in pads]
            if len(pv) != 2 * n:
                raise ExecutionError(f"pads {pv} has {len(pv)} values; with {n} spatial axes it "
                                     f"needs {2 * n} ([begin of each axis..., end of each axis...])")
            if any(v < 0 for v in pv):
                raise ExecutionError(f"pads {pv} contains a negative value; pads must be >= 0")
            pb, pe = tuple(pv[:n]), tuple(pv[n:])
        out = []
        for i in range(n):
            span = in_shape[i] + pb[i] + pe[i] - ek[i]
            if span < 0:
                if in_shape[i] == 0 and pb[i] + pe[i] == 0:
                    out.append(0)  # an empty axis gives an empty output, not an error
                    continue
                raise ExecutionError(
                    f"the kernel (extent {ek[i]} along spatial axis {i}: kernel {kernel[i]}, "
                    f"dilation {d[i]}) is larger than the padded input ({in_shape[i]} + pads "
                    f"{pb[i]} + {pe[i]} = {in_shape[i] + pb[i] + pe[i]})")
            if ceil_mode:
                o = -(-span // s[i]) + 1
                # A window starting inside the end padding is ignored (spec and PyTorch rule).
                if (o - 1) * s[i] >= in_shape[i] + pb[i]:
                    o -= 1
            else:
                o = span // s[i] + 1
            out.append(o)
    elif auto_pad == "VALID":
        pb, pe = (0,) * n, (0,) * n
        out = []
        for i in range(n):
            span = in_shape[i] - ek[i]
            if span < 0:
                raise ExecutionError(
                    f"auto_pad VALID: the kernel (extent {ek[i]} along spatial axis {i}) is "
                    f"larger than the input ({in_shape[i]})")
            out.append(span // s[i] + 1)
    else:
        out, pbl, pel = [], [], []
        for i in range(n):
            o = -(-in_shape[i] // s[i])
            total = max(0, (o - 1) * s[i] + ek[i] - in_shape[i])
            small = total // 2
            if auto_pad == "SAME_UPPER":
                pbl.append(small)
                pel.append(total - small)
            else:
                pbl.append(total - small)
                pel.append(small)
            out.append(o)
        pb, pe = tuple(pbl), tuple(pel)

    extra = tuple(max(0, (o - 1) * st + e - (i + b + a)) if o > 0 else 0
                  for o, st, e, i, b, a in zip(out, s, ek, in_shape, pb, pe))
    return Window(in_shape, kernel, s, d, tuple(pb), tuple(pe), extra, tuple(out))


def pad_spatial(x: np.ndarray, win: Window, value: float | int = 0,
                include_extra: bool = True) -> np.ndarray:
    """``x`` (N, C, *spatial) padded once on its spatial axes with ``value`` (or ``x`` itself).

    Written as one copy of the interior plus fills of the border slabs, which is cheaper than
    ``np.pad`` for the thin borders convolutions use.
    """
    after = [p + (e if include_extra else 0) for p, e in zip(win.pads_end, win.extra_end)]
    if not any(win.pads_begin) and not any(after):
        return x
    lead = x.ndim - win.ndim
    shape = x.shape[:lead] + tuple(n + b + a for n, b, a in zip(x.shape[lead:], win.pads_begin,
                                                                after))
    out = np.empty(shape, dtype=x.dtype)
    pre = (slice(None),) * lead
    out[pre + tuple(slice(b, b + n) for b, n in zip(win.pads_begin, x.shape[lead:]))] = x
    for ax, (b, a) in enumerate(zip(win.pads_begin, after)):
        at = (slice(None),) * (lead + ax)
        if b:
            out[at + (slice(0, b),)] = value
        if a:
            out[at + (slice(shape[lead + ax] - a, None),)] = value
    return out


def offset_slices(offset: Sequence[int], win: Window) -> tuple[slice, ...]:
    """Slices (over the spatial axes of the padded input) of the positions that kernel element
    ``offset`` sees for every output position."""
    return tuple(slice(k * d, k * d + (o - 1) * s + 1, s) if o > 0 else slice(0, 0)
                 for k, d, s, o in zip(offset, win.dilations, win.strides, win.out))


def kernel_offsets(kernel: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every kernel element index, in row-major order."""
    return itertools.product(*(range(k) for k in kernel))

