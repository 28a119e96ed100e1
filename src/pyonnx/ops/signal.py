"""Signal processing: DFT, STFT, the Hann / Hamming / Blackman windows and MelWeightMatrix.

Complex tensors are real tensors whose last dimension holds (real, imaginary), size 2; a real
signal may be given with a last dimension of size 1. Transforms are computed with NumPy's FFT in
the input's precision (single for float32 and narrower, double for float64) and cast back.
"""

from __future__ import annotations

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ir.dtypes import DataType
from pyonnx.ops._common import check_alloc, compute_dtype, tensor_limit
from pyonnx.ops.registry import KernelContext, kernel

__all__: list[str] = []


def _scalar_int(x: np.ndarray | None, what: str, op: str) -> int | None:
    """A scalar (or one-element) integer input as int; None when absent."""
    if x is None:
        return None
    a = np.asarray(x)
    if a.size != 1:
        raise ExecutionError(f"{op}: {what} must be a scalar, got shape {list(a.shape)}")
    if a.dtype.kind not in "iu":
        raise ExecutionError(f"{op}: {what} must be an integer, got {a.dtype}")
    return int(a.reshape(-1)[0])


def _to_complex(x: np.ndarray, op: str) -> tuple[np.ndarray, bool]:
    """[..., 1] real or [..., 2] complex layout -> (real or complex array without the last axis,
    whether it is real), in float64 for double input and float32 otherwise."""
    if x.ndim < 2 or x.shape[-1] not in (1, 2):
        raise ExecutionError(f"{op}: the last dimension of the input must be 1 (real) or 2 "
                             f"(complex), got shape {list(x.shape)}")
    xd = x.astype(compute_dtype(x.dtype))
    if x.shape[-1] == 1:
        return xd[..., 0], True
    c = np.empty(xd.shape[:-1], np.complex128 if xd.dtype == np.float64 else np.complex64)
    c.real = xd[..., 0]
    c.imag = xd[..., 1]
    return c, False


def _from_complex(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    out = np.empty(y.shape + (2,), dtype)
    out[..., 0] = y.real
    out[..., 1] = y.imag
    return out


# --- DFT --------------------------------------------------------------------------------------

def _dft(x: np.ndarray, dft_length: int | None, axis: int, inverse: int, onesided: int,
         ctx: KernelContext | None) -> np.ndarray:
    op = "DFT"
    r = x.ndim
    if not (-r <= axis <= -2 or 0 <= axis <= r - 2):
        raise ExecutionError(f"{op}: axis {axis} is out of range for an input of rank {r} "
                             f"(allowed: [{-r}, -2] or [0, {r - 2}]; the last dimension holds "
                             "the real and imaginary parts)")
    ax = axis + r if axis < 0 else axis
    sig, is_real = _to_complex(x, op)
    n_in = sig.shape[ax]
    if dft_length is not None and dft_length <= 0:
        raise ExecutionError(f"{op}: dft_length must be positive, got {dft_length}")
    if onesided and inverse:
        # IRFFT: one-sided complex spectrum in, full real signal out
        if is_real:
            raise ExecutionError(f"{op}: onesided=1 with inverse=1 needs a complex input "
                                 "([..., 2]), got a real one")
        n = dft_length if dft_length is not None else 2 * (n_in - 1)
        if n <= 0:
            raise ExecutionError(f"{op}: the inverse one-sided transform of {n_in} bins has no "
                                 "default length; give dft_length")
        shape = list(sig.shape)
        shape[ax] = n
        check_alloc(shape + [1], x.dtype, tensor_limit(ctx), f"{op} output")
        y = np.fft.irfft(sig, n=n, axis=ax)
        return y[..., None].astype(x.dtype)
    n = dft_length if dft_length is not None else n_in
    if onesided:
        if not is_real:
            raise ExecutionError(f"{op}: onesided=1 (forward) needs a real input ([..., 1]), "
                                 "got a complex one")
        shape = list(sig.shape)
        shape[ax] = n // 2 + 1
        check_alloc(shape + [2], x.dtype, tensor_limit(ctx), f"{op} output")
        y = np.fft.rfft(sig.real, n=n, axis=ax)
    else:
        shape = list(sig.shape)
        shape[ax] = n
        check_alloc(shape + [2], x.dtype, tensor_limit(ctx), f"{op} output")
        y = np.fft.ifft(sig, n=n, axis=ax) if inverse else np.fft.fft(sig, n=n, axis=ax)
    return _from_complex(y, x.dtype)


@kernel("DFT", versions=(17,))
def dft_17(input: np.ndarray, dft_length: np.ndarray | None = None, *, axis: int = 1,
           inverse: int = 0, onesided: int = 0,
           ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Discrete Fourier transform along the axis attribute (opset 17)."""
    return (_dft(input, _scalar_int(dft_length, "dft_length", "DFT"), int(axis), inverse,
                 onesided, ctx),)


@kernel("DFT", versions=(20,))
def dft_20(input: np.ndarray, dft_length: np.ndarray | None = None,
           axis: np.ndarray | None = None, *, inverse: int = 0, onesided: int = 0,
           ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Discrete Fourier transform along the axis input (default -2, the last signal axis)."""
    ax = _scalar_int(axis, "axis", "DFT")
    return (_dft(input, _scalar_int(dft_length, "dft_length", "DFT"), -2 if ax is None else ax,
                 inverse, onesided, ctx),)


# --- STFT -------------------------------------------------------------------------------------

@kernel("STFT", versions=(17,))
def stft_17(signal: np.ndarray, frame_step: np.ndarray, window: np.ndarray | None = None,
            frame_length: np.ndarray | None = None, *, onesided: int = 1,
            ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Short-time Fourier transform: DFTs of windowed frames, [batch, frames, bins, 2]."""
    op = "STFT"
    if signal.ndim != 3:
        raise ExecutionError(f"{op}: signal must have rank 3 [batch, signal_length, 1 or 2], "
                             f"got shape {list(signal.shape)}")
    sig, is_real = _to_complex(signal, op)
    B, L = sig.shape
    step = _scalar_int(frame_step, "frame_step", op)
    assert step is not None
    if step <= 0:
        raise ExecutionError(f"{op}: frame_step must be positive, got {step}")
    flen = _scalar_int(frame_length, "frame_length", op)
    win = None
    if window is not None:
        win = np.asarray(window)
        if win.ndim != 1:
            raise ExecutionError(f"{op}: window must be 1-D, got shape {list(win.shape)}")
        if flen is not None and flen != win.shape[0]:
            raise ExecutionError(f"{op}: window has length {win.shape[0]} but frame_length "
                                 f"is {flen}; they must be equal")
        flen = win.shape[0]
    if flen is None:
        flen = L
    if flen <= 0 or flen > L:
        raise ExecutionError(f"{op}: frame_length {flen} must be in [1, signal_length = {L}]")
    if onesided and not is_real:
        raise ExecutionError(f"{op}: onesided=1 needs a real signal ([..., 1]); set onesided=0 "
                             "for a complex one")
    frames = (L - flen) // step + 1
    bins = flen // 2 + 1 if onesided else flen
    check_alloc((B, frames, bins, 2), signal.dtype, tensor_limit(ctx), f"{op} output")
    view = np.lib.stride_tricks.sliding_window_view(sig, flen, axis=1)[:, ::step][:, :frames]
    if win is not None:
        view = view * win.astype(sig.real.dtype)
    y = np.fft.rfft(view.real, axis=-1) if onesided else np.fft.fft(view, axis=-1)
    return (_from_complex(y, signal.dtype),)


# --- windows ----------------------------------------------------------------------------------

def _window(size: np.ndarray, periodic: int, output_datatype: int, terms: tuple[float, ...],
            op: str, ctx: KernelContext | None) -> np.ndarray:
    """sum_k (-1)^k a_k cos(2 pi k n / N') with N' = size (periodic) or size - 1 (symmetric)."""
    n = _scalar_int(size, "size", op)
    assert n is not None
    if n < 0:
        raise ExecutionError(f"{op}: size must not be negative, got {n}")
    try:
        dt = DataType(int(output_datatype)).numpy
    except ValueError:
        raise ExecutionError(f"{op}: output_datatype {output_datatype} is not a tensor "
                             "element type") from None
    check_alloc((n,), dt, tensor_limit(ctx), f"{op} output")
    denom = n if periodic else n - 1
    if denom <= 0:  # a one-point symmetric window is its peak
        return np.ones(n, dt)
    k = np.arange(n, dtype=np.float64) * (2 * np.pi / denom)
    w = np.full(n, terms[0])
    for j, a in enumerate(terms[1:], start=1):
        w += (-1) ** j * a * np.cos(j * k)
    return w.astype(dt)


@kernel("HannWindow", versions=(17,))
def hann_window_17(size: np.ndarray, *, output_datatype: int = 1, periodic: int = 1,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Hann window 0.5 - 0.5 cos(2 pi n / N')."""
    return (_window(size, periodic, output_datatype, (0.5, 0.5), "HannWindow", ctx),)


@kernel("HammingWindow", versions=(17,))
def hamming_window_17(size: np.ndarray, *, output_datatype: int = 1, periodic: int = 1,
                      ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Hamming window 25/46 - 21/46 cos(2 pi n / N')."""
    return (_window(size, periodic, output_datatype, (25 / 46, 21 / 46), "HammingWindow", ctx),)


@kernel("BlackmanWindow", versions=(17,))
def blackman_window_17(size: np.ndarray, *, output_datatype: int = 1, periodic: int = 1,
                       ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Blackman window 0.42 - 0.5 cos(2 pi n / N') + 0.08 cos(4 pi n / N')."""
    return (_window(size, periodic, output_datatype, (0.42, 0.5, 0.08), "BlackmanWindow", ctx),)


# --- MelWeightMatrix --------------------------------------------------------------------------

@kernel("MelWeightMatrix", versions=(17,))
def mel_weight_matrix_17(num_mel_bins: np.ndarray, dft_length: np.ndarray,
                         sample_rate: np.ndarray, lower_edge_hertz: np.ndarray,
                         upper_edge_hertz: np.ndarray, *, output_datatype: int = 1,
                         ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """[dft_length // 2 + 1, num_mel_bins] triangular filterbank, peaks 1, on the mel scale.

    The band edges are num_mel_bins + 2 points evenly spaced in mel from lower_edge_hertz with a
    step of (mel(upper) - mel(lower)) / (num_mel_bins + 2), mapped back to hertz and to the
    spectrogram bin floor((dft_length + 1) * hz / sample_rate), as onnxruntime and the reference
    implementation define it (the spec's prose leaves these details open).
    """
    op = "MelWeightMatrix"
    M = _scalar_int(num_mel_bins, "num_mel_bins", op)
    n_fft = _scalar_int(dft_length, "dft_length", op)
    sr = _scalar_int(sample_rate, "sample_rate", op)
    assert M is not None and n_fft is not None and sr is not None
    # no mel bins is an empty [bins, 0] matrix, as onnxruntime computes it
    if M < 0 or n_fft <= 0 or sr <= 0:
        raise ExecutionError(f"{op}: num_mel_bins must be >= 0, dft_length and sample_rate "
                             f"positive, got {M}, {n_fft} and {sr}")
    lo = float(np.asarray(lower_edge_hertz).reshape(-1)[0])
    hi = float(np.asarray(upper_edge_hertz).reshape(-1)[0])
    if not 0 <= lo < hi:
        raise ExecutionError(f"{op}: need 0 <= lower_edge_hertz < upper_edge_hertz, got {lo} "
                             f"and {hi}")
    try:
        dt = DataType(int(output_datatype)).numpy
    except ValueError:
        raise ExecutionError(f"{op}: output_datatype {output_datatype} is not a tensor "
                             "element type") from None
    n_bins = n_fft // 2 + 1
    check_alloc((n_bins, M), dt, tensor_limit(ctx), f"{op} output")
    mel_lo = 2595 * np.log10(1 + lo / 700)
    mel_hi = 2595 * np.log10(1 + hi / 700)
    step = (mel_hi - mel_lo) / (M + 2)
    hz = 700 * (10 ** ((np.arange(M + 2) * step + mel_lo) / 2595) - 1)
    edges = np.floor_divide((n_fft + 1) * hz, sr).astype(np.int64)
    left, center, right = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    j = np.arange(n_bins)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(center > left, (j - left) / np.maximum(center - left, 1), 1.0)
        down = (right - j) / np.maximum(right - center, 1)
    w = np.where((j >= left) & (j <= center), up,
                 np.where((j > center) & (j < right), down, 0.0))
    return (w.astype(dt),)
