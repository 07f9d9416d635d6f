"""How the benchmarks time things (one definition, imported by the scripts beside it).

* :func:`seconds_per_call` -- wall clock over ``steps`` calls after ``warmup``, the device
  synchronized before and after (a training step that ends in a host read: loop vs step).
* :func:`gpu_ms` -- CUDA events around ``reps`` back-to-back calls: the GPU's time per call in
  ms, without the host's share (kernels and captured graphs).
"""
import time


def seconds_per_call(fn, steps, warmup):
    """Mean wall-clock seconds of ``fn(k)`` for k = 0 .. steps-1, after ``warmup`` untimed calls."""
    from snnkit import backend          # here, not at import: a script may set SNNKIT_BACKEND first
    for k in range(warmup):
        fn(k)
    backend.synchronize()
    t0 = time.perf_counter()
    for k in range(steps):
        fn(k)
    backend.synchronize()
    return (time.perf_counter() - t0) / steps


def gpu_ms(cp, fn, reps, warmup=3):
    """Mean GPU milliseconds of ``fn()`` between two CUDA events, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    cp.cuda.Device().synchronize()
    a, b = cp.cuda.Event(), cp.cuda.Event()
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    b.synchronize()
    return cp.cuda.get_elapsed_time(a, b) / reps
