"""Finite-difference checking shared by the gradient tests (float64, CPU)."""
import numpy as np


def fd_check(f, arrays, grads, eps=1e-6, rtol=1e-5, atol=1e-8, max_entries=40, seed=0):
    """Central differences of the scalar ``f()`` against analytic ``grads``, on a random sample of
    entries of each array in ``arrays`` (perturbed in place and restored)."""
    r = np.random.default_rng(seed)
    for a, g in zip(arrays, grads):
        idxs = list(np.ndindex(a.shape))
        for k in r.permutation(len(idxs))[:max_entries]:
            i = idxs[k]
            old = a[i]
            a[i] = old + eps
            fp = f()
            a[i] = old - eps
            fm = f()
            a[i] = old
            np.testing.assert_allclose(g[i], (fp - fm) / (2 * eps), rtol=rtol, atol=atol, err_msg=str(i))
