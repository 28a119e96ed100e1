"""Client (tritonclient venv): N requests at concurrency C on the 'add' model (y = x + 1,
z = 2x) over PROTOCOL (http or grpc), each with its own input; counts lost and wrong answers.

usage: load.py ADDR PROTOCOL N C
"""
import functools
import json
import sys
import threading

import numpy as np

addr, protocol, n, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ok = wrong = lost = 0
errors = []


def x_of(i):
    return (np.arange(4, dtype=np.float32) + np.float32(i * 4)).reshape(1, 4)


def check(i, result):
    global ok, wrong
    x = x_of(i)
    if np.array_equal(result.as_numpy("y"), x + 1) and np.array_equal(result.as_numpy("z"), x * 2):
        ok += 1
    else:
        wrong += 1


if protocol == "http":
    import tritonclient.http as th
    c = th.InferenceServerClient(addr, concurrency=conc, network_timeout=300)
    window = []
    for i in range(n):
        inp = th.InferInput("x", [1, 4], "FP32")
        inp.set_data_from_numpy(x_of(i))
        window.append((i, c.async_infer("add", [inp])))
        if len(window) >= conc or i == n - 1:
            # keep C requests in flight: collect the oldest before sending more
            while window and (len(window) >= conc or i == n - 1):
                j, req = window.pop(0)
                try:
                    check(j, req.get_result())
                except Exception as e:  # noqa: BLE001
                    lost += 1
                    errors.append(str(e)[:200])
else:
    import tritonclient.grpc as tg
    c = tg.InferenceServerClient(addr)
    slots = threading.Semaphore(conc)
    all_done = threading.Semaphore(0)
    lock = threading.Lock()

    def callback(i, result=None, error=None):  # tritonclient passes result=, error=
        global lost
        with lock:
            if error is not None:
                lost += 1
                errors.append(str(error)[:200])
            else:
                check(i, result)
        slots.release()
        all_done.release()

    for i in range(n):
        slots.acquire()
        inp = tg.InferInput("x", [1, 4], "FP32")
        inp.set_data_from_numpy(x_of(i))
        c.async_infer("add", [inp], functools.partial(callback, i))
    for _ in range(n):
        all_done.acquire()
c.close()  # closed before exit, not by its finalizer (see batch.py)
print(json.dumps({"ok": ok, "wrong": wrong, "lost": lost, "errors": errors[:5]}))
