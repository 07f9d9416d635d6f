"""Finite-difference checking shared by the gradient tests (float64, CPU): one central difference,
one comparison loop, so that every test states only its function, its entries and its tolerance.

``f()`` is the scalar under test, read after perturbing an array in place. It may return None where
it is not differentiable (a BATS spike appeared or vanished between the two sides): that entry is
skipped, and ``min_checked`` says how many entries must be compared all the same.
"""
import numpy as np


def central_difference(f, a, i, eps=1e-6):
    """``(f(a + eps e_i) - f(a - eps e_i)) / (2 eps)``, ``a[i]`` restored afterwards; None when ``f``
    returns None on either side."""
    old = a[i]
    try:
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
    finally:
        a[i] = old
    if fp is None or fm is None:
        return None
    return (fp - fm) / (2 * eps)


def numerical_gradient(f, a, eps=1e-6):
    """The central difference of ``f`` at every entry of ``a`` (an array of a's shape)."""
    out = np.zeros(a.shape)
    for i in np.ndindex(a.shape):
        out[i] = central_difference(f, a, i, eps)
    return out


def fd_check(f, arrays, grads, eps=1e-6, rtol=1e-5, atol=1e-8, max_entries=40, seed=0, entries=None,
             floor=None, min_checked=1):
    """Central differences of the scalar ``f()`` against analytic ``grads``, on a random sample of
    ``max_entries`` entries of each array in ``arrays`` (or the index lists ``entries[k]`` of
    array k), perturbed in place and restored. Returns how many entries were compared.

    Tolerance: ``|g - fd| <= atol + rtol |fd|`` (numpy's assert_allclose); with ``floor``, the
    relative rule ``|g - fd| <= rtol max(|fd|, floor max|g|)`` of the BATS tests (the scale of a
    gradient array sets what "zero" means for its small entries)."""
    r = np.random.default_rng(seed)
    checked = 0
    for k, (a, g) in enumerate(zip(arrays, grads)):
        if entries is None:
            idxs = list(np.ndindex(a.shape))
            idxs = [idxs[j] for j in r.permutation(len(idxs))[:max_entries]]
        else:
            idxs = entries[k]
        scale = None if floor is None else floor * float(np.abs(g).max())
        for i in idxs:
            i = tuple(int(v) for v in i) if np.ndim(i) else i
            fd = central_difference(f, a, i, eps)
            if fd is None:
                continue
            if scale is None:
                np.testing.assert_allclose(g[i], fd, rtol=rtol, atol=atol, err_msg=str(i))
            else:
                assert abs(fd - g[i]) <= rtol * max(abs(fd), scale), (k, i, fd, g[i])
            checked += 1
    assert checked >= min_checked, f"only {checked} entries could be compared (wanted >= {min_checked})"
    return checked
