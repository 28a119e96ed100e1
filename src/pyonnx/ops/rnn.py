"""Recurrent layers: RNN, GRU and LSTM (one layer; forward, reverse or bidirectional).

All three share one driver. The input projection ``X @ W^T`` (plus the biases that do not depend
on the state) is computed for every time step at once with a single matmul; the Python loop runs
only over time for the recurrent part. Both directions of a bidirectional layer advance in the
same loop (a batched matmul over the direction axis): the reverse direction reads its input
projection in reversed order (reversed within each sequence's own length), so that every direction
moves forward in "step" order and its outputs are put back in time order at the end.

``sequence_lens`` gives each batch entry its own length: past it the state is held (so ``Y_h`` and
``Y_c`` are the state at the last valid step) and ``Y`` is zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops._common import check_alloc, check_choice, compute_dtype, tensor_limit
from pyonnx.ops.registry import KernelContext, kernel

__all__: list[str] = []

_Act = Callable[[np.ndarray], np.ndarray]


# --- activation functions ---------------------------------------------------------------------

def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warning for large |x| and one transcendental call
    y = np.multiply(x, 0.5)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


def _make_activation(name: str, alpha: float | None, beta: float | None) -> _Act:
    """The activation ``name`` (case-insensitive, as the spec lists them) with alpha/beta bound."""
    key = name.lower()
    if key == "tanh":
        return np.tanh
    if key == "sigmoid":
        return _sigmoid
    if key == "relu":
        return lambda x: np.maximum(x, 0)
    if key == "affine":
        a = 1.0 if alpha is None else alpha
        b = 0.0 if beta is None else beta
        return lambda x: x * a + b
    if key == "leakyrelu":
        a = 0.01 if alpha is None else alpha
        return lambda x: np.where(x >= 0, x, x * a)
    if key == "thresholdedrelu":
        a = 1.0 if alpha is None else alpha
        return lambda x: np.where(x >= a, x, 0).astype(x.dtype, copy=False)
    if key == "scaledtanh":
        a = 1.0 if alpha is None else alpha
        b = 1.0 if beta is None else beta
        return lambda x: np.tanh(x * b) * a
    if key == "hardsigmoid":
        a = 0.2 if alpha is None else alpha
        b = 0.5 if beta is None else beta
        return lambda x: np.clip(x * a + b, 0, 1)
    if key == "elu":
        a = 1.0 if alpha is None else alpha
        return lambda x: np.where(x >= 0, x, np.expm1(np.minimum(x, 0)) * a)
    if key == "softsign":
        return lambda x: x / (1 + np.abs(x))
    if key == "softplus":
        return lambda x: np.logaddexp(0, x).astype(x.dtype, copy=False)
    raise UnsupportedOperatorError(
        f"activations: unknown activation function {name!r}; allowed: Relu, Tanh, Sigmoid, "
        "Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus")


# which activations consume an entry of activation_alpha / activation_beta
_USES_ALPHA = {"affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu"}
_USES_BETA = {"affine", "scaledtanh", "hardsigmoid"}


def _activations(names: Sequence[str] | None, defaults: Sequence[str], num_directions: int,
                 alphas: Sequence[float] | None, betas: Sequence[float] | None) -> list[list[_Act]]:
    """Per direction, the list of activation functions (f, g, h order).

    alpha/beta values are consumed in the order of the functions, each function taking one only
    if it uses that parameter (the convention onnxruntime follows); missing ones get the defaults
    of the corresponding ONNX operators.
    """
    per_dir = len(defaults)
    names = list(names) if names else list(defaults) * num_directions
    if len(names) == per_dir and num_directions == 2:
        names = names * 2
    if len(names) != per_dir * num_directions:
        raise ExecutionError(
            f"activations has {len(names)} entries; expected {per_dir * num_directions} "
            f"({per_dir} per direction, {num_directions} direction(s))")
    alphas = list(alphas or [])
    betas = list(betas or [])
    ai = bi = 0
    funcs: list[_Act] = []
    for n in names:
        key = n.lower()
        a = b = None
        if key in _USES_ALPHA and ai < len(alphas):
            a = float(alphas[ai])
            ai += 1
        if key in _USES_BETA and bi < len(betas):
            b = float(betas[bi])
            bi += 1
        funcs.append(_make_activation(n, a, b))
    # the same function objects for both directions let the step apply each once to both
    lowered = [n.lower() for n in names]
    if num_directions == 2 and lowered[:per_dir] == lowered[per_dir:] and not alphas and not betas:
        funcs[per_dir:] = funcs[:per_dir]
    return [funcs[d * per_dir:(d + 1) * per_dir] for d in range(num_directions)]


class _Apply:
    """Applies one activation slot to a [D, B, n] array, once if every direction shares it."""

    def __init__(self, funcs: list[_Act], clip: float | None) -> None:
        self.funcs = funcs
        self.shared = all(f is funcs[0] for f in funcs)
        self.clip = clip

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.clip is not None:
            x = np.clip(x, -self.clip, self.clip)
        if self.shared:
            return self.funcs[0](x)
        return np.stack([f(x[d]) for d, f in enumerate(self.funcs)])


# --- shared driver ----------------------------------------------------------------------------

def _direction(direction: str) -> tuple[int, list[bool]]:
    """Number of directions and, per direction, whether it runs in reverse."""
    d = "forward" if direction == "foward" else direction  # GRU-1's documented default is misspelled
    if d == "forward":
        return 1, [False]
    if d == "reverse":
        return 1, [True]
    if d == "bidirectional":
        return 2, [False, True]
    raise UnsupportedOperatorError(
        f"direction {direction!r} is not supported; allowed: 'forward', 'reverse', 'bidirectional'")


class _Setup:
    """Inputs of a recurrent layer checked and brought to [seq, batch, ...] layout."""

    def __init__(self, op: str, gates: int, X: np.ndarray, W: np.ndarray, R: np.ndarray,
                 B: np.ndarray | None, sequence_lens: np.ndarray | None, hidden_size: int | None,
                 direction: str, layout: int, ctx: KernelContext | None) -> None:
        self.out_dtype = X.dtype
        if X.dtype.kind != "f" and "float" not in str(X.dtype):
            raise ExecutionError(f"{op}: X must be a floating-point tensor, got {X.dtype}")
        self.cdt = compute_dtype(X.dtype)
        self.num_directions, self.reverse = _direction(direction)
        self.layout = check_choice(op, "layout", layout, (0, 1))
        if X.ndim != 3:
            raise ExecutionError(f"{op}: X must have rank 3, got shape {list(X.shape)}")
        if layout == 1:
            X = X.transpose(1, 0, 2)
        T, Bn, I = X.shape
        D = self.num_directions
        if R.ndim != 3 or R.shape[0] != D:
            raise ExecutionError(f"{op}: R must have shape [{D}, {gates}*hidden_size, hidden_size], "
                                 f"got {list(R.shape)}")
        H = int(hidden_size) if hidden_size is not None else int(R.shape[2])
        if tuple(W.shape) != (D, gates * H, I):
            raise ExecutionError(f"{op}: W has shape {list(W.shape)}; expected {[D, gates * H, I]} "
                                 f"(num_directions, {gates}*hidden_size, input_size)")
        if tuple(R.shape) != (D, gates * H, H):
            raise ExecutionError(f"{op}: R has shape {list(R.shape)}; expected {[D, gates * H, H]}")
        if B is not None and tuple(B.shape) != (D, 2 * gates * H):
            raise ExecutionError(f"{op}: B has shape {list(B.shape)}; expected {[D, 2 * gates * H]}")
        self.T, self.B, self.I, self.H, self.D = T, Bn, I, H, D
        self.X = X.astype(self.cdt, copy=False)
        self.W = W.astype(self.cdt, copy=False)
        self.R = R.astype(self.cdt, copy=False)
        self.bias = None if B is None else B.astype(self.cdt, copy=False)

        # per-batch lengths; None when every sequence is full (no masking needed)
        self.lens: np.ndarray | None = None
        if sequence_lens is not None:
            lens = np.asarray(sequence_lens).reshape(-1)
            if lens.dtype.kind not in "iu":
                raise ExecutionError(f"{op}: sequence_lens must be int32, got {lens.dtype}")
            if lens.shape[0] != Bn:
                raise ExecutionError(f"{op}: sequence_lens has {lens.shape[0]} entries; "
                                     f"expected batch_size = {Bn}")
            if lens.size and (lens.min() < 0 or lens.max() > T):
                bad = int(lens.min()) if lens.min() < 0 else int(lens.max())
                raise ExecutionError(f"{op}: sequence_lens contains {bad}, outside [0, {T}] "
                                     f"(seq_length is {T})")
            lens = lens.astype(np.int64)
            if not (lens == T).all():
                self.lens = lens
        used = ctx.outputs_used if ctx is not None else ()
        self.outputs_used = tuple(used) + (True,) * 3
        if self.outputs_used[0]:
            check_alloc((T, D, Bn, H), self.cdt, tensor_limit(ctx), f"{op} Y")

    def state(self, init: np.ndarray | None, what: str) -> np.ndarray:
        """Initial state [D, B, H] (zeros when absent)."""
        D, Bn, H = self.D, self.B, self.H
        if init is None:
            return np.zeros((D, Bn, H), self.cdt)
        s = init.transpose(1, 0, 2) if self.layout == 1 else init
        if tuple(s.shape) != (D, Bn, H):
            expect = [Bn, D, H] if self.layout == 1 else [D, Bn, H]
            raise ExecutionError(f"{what} has shape {list(init.shape)}; expected {expect}")
        return s.astype(self.cdt, copy=True)

    def time_index(self) -> np.ndarray | None:
        """[T, B] time index read at each step by a reverse direction; None for a plain flip."""
        if self.lens is None:
            return None
        s = np.arange(self.T)[:, None]
        L = self.lens[None, :]
        # within a sequence's length the order is reversed; the padding past it stays in place
        return np.where(s < L, L - 1 - s, s)

    def project(self, extra_bias: np.ndarray | None) -> np.ndarray:
        """X @ W^T (+ bias) for every step and direction, [T, D, B, G], in step order."""
        T, Bn, I, D = self.T, self.B, self.I, self.D
        X2 = self.X.reshape(T * Bn, I)
        G = self.W.shape[1]
        xw = np.empty((T, D, Bn, G), self.cdt)
        tidx = self.time_index()
        for d in range(D):
            p = (X2 @ self.W[d].T).reshape(T, Bn, G)
            if extra_bias is not None:
                p += extra_bias[d]
            if self.reverse[d]:
                p = p[::-1] if tidx is None else p[tidx, np.arange(Bn)[None, :]]
            xw[:, d] = p
        return xw

    def mask(self, s: int) -> np.ndarray | None:
        """[1, B, 1] bool: which batch entries are still inside their sequence at step s."""
        if self.lens is None:
            return None
        return (s < self.lens)[None, :, None]

    def advance(self, t: int, old: np.ndarray, new: np.ndarray,
                ys: np.ndarray | None) -> np.ndarray:
        """The state after step t: ``new`` where the sequence is still running, ``old`` past its
        end (whose Y is zero); records Y when requested."""
        m = self.mask(t)
        if m is None:
            if ys is not None:
                ys[t] = new
            return new
        if ys is not None:
            ys[t] = np.where(m, new, 0)
        return np.where(m, new, old)

    def finish_y(self, ys: np.ndarray | None) -> np.ndarray | None:
        """Step-ordered [T, D, B, H] outputs back to time order and the requested layout."""
        if ys is None:
            return None
        tidx = self.time_index()
        for d in range(self.D):
            if self.reverse[d]:
                ys[:, d] = ys[::-1, d] if tidx is None else ys[tidx, d, np.arange(self.B)[None, :]]
        if self.layout == 1:
            ys = ys.transpose(2, 0, 1, 3)
        return np.ascontiguousarray(ys).astype(self.out_dtype, copy=False)

    def finish_state(self, h: np.ndarray) -> np.ndarray:
        """Final state [D, B, H] to the requested layout and dtype."""
        if self.lens is not None and (self.lens == 0).any():
            # an empty sequence has no last step: its final state is zero (as onnxruntime does)
            h = np.where((self.lens == 0)[None, :, None], 0, h)
        if self.layout == 1:
            h = h.transpose(1, 0, 2)
        return np.ascontiguousarray(h).astype(self.out_dtype, copy=False)


def _bias_parts(s: _Setup, gates: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(Wb, Rb), each [D, gates*H], or (None, None) without B."""
    if s.bias is None:
        return None, None
    G = gates * s.H
    return s.bias[:, :G], s.bias[:, G:]


def gru_biases(s: _Setup, linear_before_reset: bool
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """GRU's biases as its input projection takes them, [D, 3H] (Wb, plus Rb on the z and r
    gates, and on the h gate without ``linear_before_reset``), and the recurrent bias of the h
    gate that stays separate (``Rbh``, [D, 1, H], applied inside ``r (.) (...)`` when
    ``linear_before_reset``; None otherwise); (None, None) without B."""
    H = s.H
    wb, rb = _bias_parts(s, 3)
    if wb is None:
        return None, None
    extra = wb.copy()
    extra[:, :2 * H] += rb[:, :2 * H]
    if linear_before_reset:
        return extra, rb[:, None, 2 * H:]  # applied inside r (.) (...)
    extra[:, 2 * H:] += rb[:, 2 * H:]  # outside the r product: fold into the projection
    return extra, None


def gru_projection(s: _Setup, linear_before_reset: bool
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """GRU's input projection for all steps with the biases folded in, and the recurrent bias
    of the h gate that stays separate (see :func:`gru_biases`)."""
    extra, rbh = gru_biases(s, linear_before_reset)
    return s.project(None if extra is None else extra[:, None, :]), rbh


def _clip(clip: float | None) -> float | None:
    return None if clip is None else float(clip)


# --- RNN --------------------------------------------------------------------------------------

def _rnn(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None,
         sequence_lens: np.ndarray | None, initial_h: np.ndarray | None, *,
         activation_alpha: list[float] | None, activation_beta: list[float] | None,
         activations: list[str] | None, clip: float | None, direction: str,
         hidden_size: int | None, layout: int, ctx: KernelContext | None) -> tuple:
    s = _Setup("RNN", 1, X, W, R, B, sequence_lens, hidden_size, direction, layout, ctx)
    acts = _activations(activations, ["Tanh"], s.D, activation_alpha, activation_beta)
    f = _Apply([a[0] for a in acts], _clip(clip))
    wb, rb = _bias_parts(s, 1)
    xw = s.project(None if wb is None else (wb + rb)[:, None, :])
    h = s.state(initial_h, "initial_h")
    RT = s.R.transpose(0, 2, 1)
    ys = np.zeros((s.T, s.D, s.B, s.H), s.cdt) if s.outputs_used[0] else None
    for t in range(s.T):
        h = s.advance(t, h, f(xw[t] + np.matmul(h, RT)), ys)
    return s.finish_y(ys), s.finish_state(h)


@kernel("RNN", versions=(1,))
def rnn_1(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None, output_sequence: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """Simple RNN (opset 1): Ht = f(Xt W^T + Ht-1 R^T + Wb + Rb); output_sequence has no effect
    on the values (Y is produced whenever the node asks for it)."""
    return _rnn(X, W, R, B, sequence_lens, initial_h, activation_alpha=activation_alpha,
                activation_beta=activation_beta, activations=activations, clip=clip,
                direction=direction, hidden_size=hidden_size, layout=0, ctx=ctx)


@kernel("RNN", versions=(7, 14, 22))
def rnn_7(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None, layout: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """Simple RNN: Ht = f(Xt W^T + Ht-1 R^T + Wb + Rb) (layout from opset 14)."""
    return _rnn(X, W, R, B, sequence_lens, initial_h, activation_alpha=activation_alpha,
                activation_beta=activation_beta, activations=activations, clip=clip,
                direction=direction, hidden_size=hidden_size, layout=layout, ctx=ctx)


# --- GRU --------------------------------------------------------------------------------------

def _gru(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None,
         sequence_lens: np.ndarray | None, initial_h: np.ndarray | None, *,
         activation_alpha: list[float] | None, activation_beta: list[float] | None,
         activations: list[str] | None, clip: float | None, direction: str,
         hidden_size: int | None, linear_before_reset: int, layout: int,
         ctx: KernelContext | None) -> tuple:
    s = _Setup("GRU", 3, X, W, R, B, sequence_lens, hidden_size, direction, layout, ctx)
    H = s.H
    acts = _activations(activations, ["Sigmoid", "Tanh"], s.D, activation_alpha, activation_beta)
    c = _clip(clip)
    f = _Apply([a[0] for a in acts], c)
    g = _Apply([a[1] for a in acts], c)
    lbr = bool(linear_before_reset)
    xw, rbh = gru_projection(s, lbr)
    h = s.state(initial_h, "initial_h")
    RT = s.R.transpose(0, 2, 1)  # [D, H, 3H]
    RT_zr = RT[:, :, :2 * H]
    RT_h = np.ascontiguousarray(RT[:, :, 2 * H:])
    ys = np.zeros((s.T, s.D, s.B, H), s.cdt) if s.outputs_used[0] else None
    for t in range(s.T):
        x = xw[t]
        if lbr:
            hr = np.matmul(h, RT)
            zr = f(x[..., :2 * H] + hr[..., :2 * H])
            z, r = zr[..., :H], zr[..., H:]
            lin = hr[..., 2 * H:]
            if rbh is not None:
                lin = lin + rbh
            hh = g(x[..., 2 * H:] + r * lin)
        else:
            zr = f(x[..., :2 * H] + np.matmul(h, RT_zr))
            z, r = zr[..., :H], zr[..., H:]
            hh = g(x[..., 2 * H:] + np.matmul(r * h, RT_h))
        # Ht = (1 - z) * hh + z * h  ==  hh + z * (h - hh)
        h = s.advance(t, h, hh + z * (h - hh), ys)
    return s.finish_y(ys), s.finish_state(h)


@kernel("GRU", versions=(1,))
def gru_1(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None, output_sequence: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """GRU (opset 1: no linear_before_reset, i.e. the reset gate multiplies Ht-1 before Rh)."""
    return _gru(X, W, R, B, sequence_lens, initial_h, activation_alpha=activation_alpha,
                activation_beta=activation_beta, activations=activations, clip=clip,
                direction=direction, hidden_size=hidden_size, linear_before_reset=0, layout=0,
                ctx=ctx)


@kernel("GRU", versions=(3,))
def gru_3(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None,
          linear_before_reset: int = 0, output_sequence: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """GRU (opset 3: adds linear_before_reset)."""
    return _gru(X, W, R, B, sequence_lens, initial_h, activation_alpha=activation_alpha,
                activation_beta=activation_beta, activations=activations, clip=clip,
                direction=direction, hidden_size=hidden_size,
                linear_before_reset=linear_before_reset, layout=0, ctx=ctx)


@kernel("GRU", versions=(7, 14, 22))
def gru_7(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None,
          linear_before_reset: int = 0, layout: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """GRU: update z, reset r and hidden gate h; Ht = (1 - z) h + z Ht-1 (layout from opset 14)."""
    return _gru(X, W, R, B, sequence_lens, initial_h, activation_alpha=activation_alpha,
                activation_beta=activation_beta, activations=activations, clip=clip,
                direction=direction, hidden_size=hidden_size,
                linear_before_reset=linear_before_reset, layout=layout, ctx=ctx)


# --- LSTM -------------------------------------------------------------------------------------

def _lstm(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None,
          sequence_lens: np.ndarray | None, initial_h: np.ndarray | None,
          initial_c: np.ndarray | None, P: np.ndarray | None, *,
          activation_alpha: list[float] | None, activation_beta: list[float] | None,
          activations: list[str] | None, clip: float | None, direction: str,
          hidden_size: int | None, input_forget: int, layout: int,
          ctx: KernelContext | None) -> tuple:
    s = _Setup("LSTM", 4, X, W, R, B, sequence_lens, hidden_size, direction, layout, ctx)
    H, D = s.H, s.D
    acts = _activations(activations, ["Sigmoid", "Tanh", "Tanh"], D, activation_alpha,
                        activation_beta)
    c = _clip(clip)
    f = _Apply([a[0] for a in acts], c)
    g = _Apply([a[1] for a in acts], c)
    # the clip applies to the gate pre-activations, not to the cell state fed to h (as in
    # onnxruntime: clipping Ct there would change the state that Y_c reports)
    hfn = _Apply([a[2] for a in acts], None)
    wb, rb = _bias_parts(s, 4)
    xw = s.project(None if wb is None else (wb + rb)[:, None, :])
    h = s.state(initial_h, "initial_h")
    cell = s.state(initial_c, "initial_c")
    peep = None
    if P is not None:
        if tuple(P.shape) != (D, 3 * H):
            raise ExecutionError(f"LSTM: P has shape {list(P.shape)}; expected {[D, 3 * H]}")
        Pc = P.astype(s.cdt, copy=False)
        # gate order in P is i, o, f
        peep = (Pc[:, None, :H], Pc[:, None, H:2 * H], Pc[:, None, 2 * H:])
    coupled = bool(input_forget)
    RT = s.R.transpose(0, 2, 1)  # [D, H, 4H]; gate order i, o, f, c
    ys = np.zeros((s.T, D, s.B, H), s.cdt) if s.outputs_used[0] else None
    for t in range(s.T):
        gates = xw[t] + np.matmul(h, RT)
        if peep is None:
            iof = f(gates[..., :3 * H])
            i, o, fg = iof[..., :H], iof[..., H:2 * H], iof[..., 2 * H:]
            if coupled:
                fg = 1 - i
            cc = g(gates[..., 3 * H:])
            c_new = fg * cell + i * cc
        else:
            pi, po, pf = peep
            i = f(gates[..., :H] + pi * cell)
            fg = 1 - i if coupled else f(gates[..., 2 * H:3 * H] + pf * cell)
            cc = g(gates[..., 3 * H:])
            c_new = fg * cell + i * cc
            o = f(gates[..., H:2 * H] + po * c_new)
        h = s.advance(t, h, o * hfn(c_new), ys)
        cell = s.advance(t, cell, c_new, None)
    return s.finish_y(ys), s.finish_state(h), s.finish_state(cell)


@kernel("LSTM", versions=(1,))
def lstm_1(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
           sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None,
           initial_c: np.ndarray | None = None, P: np.ndarray | None = None, *,
           activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
           activations: list[str] | None = None, clip: float | None = None,
           direction: str = "forward", hidden_size: int | None = None, input_forget: int = 0,
           output_sequence: int = 0, ctx: KernelContext | None = None) -> tuple:
    """LSTM (opset 1; output_sequence does not change the values)."""
    return _lstm(X, W, R, B, sequence_lens, initial_h, initial_c, P,
                 activation_alpha=activation_alpha, activation_beta=activation_beta,
                 activations=activations, clip=clip, direction=direction,
                 hidden_size=hidden_size, input_forget=input_forget, layout=0, ctx=ctx)


@kernel("LSTM", versions=(7, 14, 22))
def lstm_7(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
           sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None,
           initial_c: np.ndarray | None = None, P: np.ndarray | None = None, *,
           activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
           activations: list[str] | None = None, clip: float | None = None,
           direction: str = "forward", hidden_size: int | None = None, input_forget: int = 0,
           layout: int = 0, ctx: KernelContext | None = None) -> tuple:
    """LSTM with optional peepholes P and coupled input/forget gates (layout from opset 14)."""
    return _lstm(X, W, R, B, sequence_lens, initial_h, initial_c, P,
                 activation_alpha=activation_alpha, activation_beta=activation_beta,
                 activations=activations, clip=clip, direction=direction,
                 hidden_size=hidden_size, input_forget=input_forget, layout=layout, ctx=ctx)
