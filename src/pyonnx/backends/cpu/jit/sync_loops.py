"""Atomic counters for the compiled loops that several threads run at once, and the compiled
waits of the intra-op pool (:mod:`pyonnx.backends.cpu.threads`).

A loop shared by the caller and the pool's threads (``gemm_loops.pointwise_claimed``,
``conv_loops.depthwise2d_tiles``, ``rnn_loops.lstm_seq``, ...) hands out its pieces through a
counter that each thread increments atomically (:func:`fetch_add`): a thread that starts late,
or not at all, leaves its pieces to the others, and no thread waits for a piece that nobody
has started.

Waking a pool thread that sleeps on a condition variable takes 50-150 µs on the 2-core
development VM (its halted virtual CPU wakes through the hypervisor), more than many
convolutions of a mobile CNN take in all. An idle pool thread therefore first watches the
pool's counter of posted work for a while without the GIL (:func:`spin_while_equal`), and a
caller watches its loop's counter of finished pieces (:func:`spin_until_at_least`).

The counters are read with atomic loads: numba compiles a plain read of an array that the loop
does not write as one read hoisted out of the loop, which would spin forever.

**The hand-off without the GIL.** A pool thread must hold the GIL to take a job (Python) and to
return from a compiled loop. Where it asks for the GIL while another thread holds it, it sleeps
in the kernel until that thread releases it, and the holder, when it next wants the GIL back,
may sleep in turn: each such hand-off costs 20-30 µs on the development VM, as much as the
half of a 60 µs loop that the pool thread was to take. So a shared loop tells the pool's
threads about itself from inside, once its caller has released the GIL
(:func:`announce`: the pool's count of posted work is bumped by the loop, not by Python), and
a pool thread that has done its pieces stays in the loop, watching that count without the GIL
(:func:`watch`), until the next loop announces itself: it then returns to Python while that
loop's caller computes without the GIL, and never while the caller of the loop it leaves runs
Python. Each shared loop takes the pool's ``sync`` array (int64 [2]: work posted, the reads a
watch makes before it gives up), the thread's ``role`` (``threads.ALONE``, ``CALLER``,
``WORKER``) and, for a pool thread, the count of posted work it has ``seen``.
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

from pyonnx.backends.cpu.jit import inline
from pyonnx.backends.cpu.threads import CALLER, WORKER


@intrinsic
def load_acquire(typingctx, counter, index):
    """``counter[index]`` of an int64 array, as an atomic load (acquire order)."""

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.load_atomic(builder.gep(array.data, [args[1]]), "acquire", 8)

    return types.int64(counter, index), codegen


@intrinsic
def fetch_add(typingctx, counter, index, value):
    """Atomically add ``value`` to ``counter[index]`` (int64) and return the value before."""

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", builder.gep(array.data, [args[1]]), args[2],
                                  "acq_rel")

    return types.int64(counter, index, value), codegen


def spin_while_equal(counter, seen, spins):
    """Return when ``counter[0]`` differs from ``seen`` or after ``spins`` reads (0.3-0.5 ns
    each on the development VM); the caller reads the counter again to know which."""
    for _ in range(spins):
        if load_acquire(counter, 0) != seen:
            return


def spin_until_at_least(counter, index, target, spins):
    """Return when ``counter[index]`` is at least ``target`` or after ``spins`` reads."""
    for _ in range(spins):
        if load_acquire(counter, index) >= target:
            return


@inline
def announce(sync, role):
    """At the start of a shared loop: its caller, now without the GIL, bumps the pool's count
    of posted work (``sync[0]``), which idle pool threads watch."""
    if role == CALLER:
        fetch_add(sync, 0, 1)


@inline
def watch(sync, role, seen):
    """At the end of a shared loop: a pool thread watches the count of posted work until it
    differs from ``seen`` (another loop announced itself, so its caller runs without the GIL)
    or for ``sync[1]`` reads, before it returns to Python."""
    if role == WORKER:
        for _ in range(sync[1]):
            if load_acquire(sync, 0) != seen:
                return
