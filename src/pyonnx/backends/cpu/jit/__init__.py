"""The CPU provider's optional compiled loops, for the kernels whose NumPy form moves their data
several times.

The reference kernels of pyonnx (:mod:`pyonnx.ops`) are NumPy code. A few of them cannot be written in NumPy without passing
over their data many times, or without copying it: a depthwise convolution is a short
multiply-add per kernel element and output, a row normalization two reductions and a scale, Erf
a polynomial with branches. For those, this package holds loops written in the
subset of Python that numba compiles (numba: a well-kept JIT compiler for NumPy code, installed by
the optional ``fast`` extra, ``pip install pyonnx[fast]``). A loop does the whole job in one pass
over its data.

The fast variants that use a loop (:mod:`pyonnx.backends.cpu.conv`, ``elementwise``) fall back
to their NumPy path or to the reference kernel: when numba is not installed, when the
environment sets ``PYONNX_JIT=0`` (read once, when a kernel first asks), for element types the
loops do not cover, and, for good, after a loop fails to compile (a warning says so once).
Tests run both paths.

Use ``call(name, *args, elements=n)``: it runs the loop ``name`` ("module.function" under this
package, e.g. ``"conv_loops.depthwise2d"``) on the given arrays, which the loop reads and writes in
place, and returns True; or returns False when the loop is unavailable, or the work (``n``
elements) too small to be worth it, and the caller must take its NumPy path. numba is imported on
first use (about 0.3 s); a loop compiles on its first call for each combination of argument types
(about 0.5-2 s) and numba caches the machine code on disk (``cache=True``), so later processes load
it in milliseconds.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator

# numba options for every loop. "contract" lets LLVM fuse a*b+c into one FMA instruction and
# "reassoc" lets it vectorize sums and maxima; both keep NaN and infinity semantics (unlike
# numba's fastmath=True, whose "nnan"/"ninf" would let the compiler drop NaN propagation).
_FASTMATH = {"contract", "reassoc"}

_lock = threading.Lock()
_numba = None          # the numba module once imported; False when it is unavailable
_loops: dict[str, Callable | None] = {}
_disabled_depth = 0    # > 0 inside ``disabled()``


_env_on: bool | None = None  # PYONNX_JIT, read once (None: not yet)


def _env_enabled() -> bool:
    """``PYONNX_JIT`` as the process found it at its first compiled-loop question. Read once:
    kernels ask :func:`available` several times per node, and a read of ``os.environ`` costs a
    microsecond."""
    global _env_on
    if _env_on is None:
        _env_on = os.environ.get("PYONNX_JIT", "1").strip().lower() not in (
            "0", "false", "no", "off")
    return _env_on


def available() -> bool:
    """True when compiled loops will be used: numba imports and neither ``PYONNX_JIT=0`` nor
    ``disabled()`` turns them off."""
    global _numba
    if _disabled_depth or not _env_enabled():
        return False
    if _numba is None:
        with _lock:
            if _numba is None:
                try:
                    import numba
                    _numba = numba
                except Exception:  # not installed, or broken against this NumPy
                    _numba = False
    return _numba is not False


def describe() -> str:
    """One line for reports: whether compiled loops are used, and why not."""
    if _disabled_depth:
        return "off (disabled in this block)"
    if not _env_enabled():
        return "off (PYONNX_JIT=0)"
    if not available():
        return "off (numba is not installed: pip install pyonnx[fast])"
    return f"numba {_numba.__version__}"


def _compile(name: str) -> Callable | None:
    module_name, _, func_name = name.rpartition(".")
    module = importlib.import_module(f"{__name__}.{module_name}")
    func = getattr(module, func_name)
    # error_model="numpy": a float division by zero gives inf/NaN as in NumPy instead of
    # raising ZeroDivisionError (numba's default, Python's rule)
    # a module that must match NumPy's separate roundings (no FMA) sets FASTMATH = False
    options = dict(nogil=True, fastmath=getattr(module, "FASTMATH", _FASTMATH),
                   error_model="numpy")
    try:
        return _numba.njit(cache=True, **options)(func)
    except RuntimeError:
        # no writable place for numba's disk cache (a read-only install without a user cache
        # directory): compile in memory, once per process
        return _numba.njit(cache=False, **options)(func)


def inline(fn: Callable) -> Callable:
    """Decorator of a helper that a loop module's loops call: numba compiles only the loop it is
    asked for (:func:`call`), so a function the loops call must be compiled itself. The helper
    is inlined into each loop at numba's IR level (compiled with the loop's options and cached
    with it; no disk cache of its own, which would fail at import on a read-only install).
    Where numba is unavailable, ``fn`` itself (the loops are then never compiled)."""
    try:
        import numba
    except Exception:  # noqa: BLE001 - not installed (or broken against this NumPy)
        return fn
    return numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)(fn)


#: Loops run only on at least this many elements: below it NumPy's per-call overhead is small,
#: and a model whose loop-capable work is all small (a CNN's final Softmax over 1000 classes)
#: then never imports numba, never paying its ~120 MB.
MIN_ELEMENTS = 1 << 14


def call(name: str, *args, elements: int) -> bool:
    """Run compiled loop ``name`` on ``args`` (it writes its results into arrays among them);
    ``elements`` is the size of the work (output elements) for the ``MIN_ELEMENTS`` rule.

    Returns False, having done nothing, when the work is below ``MIN_ELEMENTS``, compiled loops
    are unavailable, or this loop failed to compile earlier; the caller then computes the result
    with NumPy.
    """
    if elements < MIN_ELEMENTS or not available():
        return False
    fn = _loops.get(name, _compile)  # _compile marks "not compiled yet" (None: failed)
    if fn is _compile:
        with _lock:
            fn = _loops.get(name, _compile)
            if fn is _compile:
                try:
                    fn = _compile(name)
                except Exception as exc:  # noqa: BLE001 - a missing loop must not break a run
                    _fail(name, exc)
                    fn = None
                _loops[name] = fn
    if fn is None:
        return False
    try:
        fn(*args)
    except _numba.core.errors.NumbaError as exc:  # compile failure for these argument types
        with _lock:
            _loops[name] = None
        _fail(name, exc)
        return False
    return True


def loop(name: str, *, elements: int) -> Callable | None:
    """The compiled loop ``name`` itself, for a caller that runs it many times on arrays of the
    same types (a recurrent kernel's step loop, where :func:`call`'s checks would cost as much
    as the loop); None where :func:`call` would return False. The caller first runs it once
    through :func:`call` (which handles a failure to compile for the argument types) and uses
    this only when that ran."""
    if elements < MIN_ELEMENTS or not available():
        return None
    return _loops.get(name)


def _fail(name: str, exc: BaseException) -> None:
    warnings.warn(f"pyonnx: compiled loop {name!r} is unavailable ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''}); using the NumPy path",
                  RuntimeWarning, stacklevel=3)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Inside this block every kernel takes its NumPy path (tests compare the two paths)."""
    global _disabled_depth
    with _lock:
        _disabled_depth += 1
    try:
        yield
    finally:
        with _lock:
            _disabled_depth -= 1
