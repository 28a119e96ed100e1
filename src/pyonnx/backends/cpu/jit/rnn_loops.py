"""Compiled loops for the recurrent kernels (see :mod:`pyonnx.backends.cpu.jit`).

Plain functions in numba's nopython subset; :mod:`pyonnx.backends.cpu.rnn` calls them from its
step loop and keeps its NumPy path as the reference.
"""

from __future__ import annotations

import numpy as np


def lstm_cell(state: np.ndarray) -> None:
    """One LSTM step's cell update, in place, after the step's gates went through tanh.

    ``state`` is [N, 5, H] (N = directions x batch): rows 0-2 hold ``tanh(0.5 a)`` of the i, o, f
    gates' pre-activations ``a``, row 3 ``tanh`` of the cell gate's (g), row 4 the cell state c.
    The sigmoids are completed as in the reference (``0.5 * t + 0.5``: the halving is exact, so a
    fused multiply-add rounds alike), then ``c = f * c + i * g`` goes to row 4 and the sigmoid
    of o to row 1 (the caller forms ``h = o * tanh(c)`` with NumPy's tanh, which is vectorized;
    a scalar tanh in a compiled loop costs ~25 ns an element, 30x NumPy's). Rows 0 and 2 are
    left as they were.
    """
    n, _, hid = state.shape
    for b in range(n):
        for j in range(hid):
            i = 0.5 * state[b, 0, j] + 0.5
            f = 0.5 * state[b, 2, j] + 0.5
            state[b, 4, j] = f * state[b, 4, j] + i * state[b, 3, j]
            state[b, 1, j] = 0.5 * state[b, 1, j] + 0.5
