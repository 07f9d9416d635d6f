"""Brian2 as ground truth for the BATS neuron (optional dependency, CPU, numpy code generation).

The same equations as ``snnkit.bats.neuron``, integrated by Brian2's exact linear solver on a time
grid ``dt``::

    du/dt = (-u/tau + v)/second      dv/dt = -v/(tau_s*second)      on_pre: v_post += w
    threshold u >= theta,  reset u -= delta_theta

A whole batch runs as one network: sample b's neurons only receive sample b's inputs. Brian2 sees a
crossing at the end of the step in which it happens and records the step's start; its reset
lands on the grid, so the k-th spike can be off by about (k+1) dt. Inputs are delivered on the
grid too: pass input times that are multiples of ``dt`` for a like-for-like comparison.
"""
from __future__ import annotations

import numpy as np

__all__ = ["run_dense", "available"]


def available() -> bool:
    try:
        import brian2  # noqa: F401
        return True
    except ImportError:
        return False


def run_dense(weight, in_times, tau_s, theta, delta_theta=None, duration=None, dt=1e-6,
              record_neuron=None):
    """Spike times of a dense layer, simulated by Brian2.

    ``weight`` [N_out, N_in], ``in_times`` [B, N_in, S] (+inf padded, seconds as plain numbers).
    Returns ``trains[b][n]`` = sorted list of spike times, and, when ``record_neuron=(b, n)``, also
    ``(t, u)`` arrays of that neuron's potential on the grid.
    """
    try:
        import brian2 as b2
    except ImportError as e:
        raise ImportError("Brian2 is needed for the ground-truth comparison: pip install 'snnkit[brian2]'") from e
    weight = np.asarray(weight, dtype=np.float64)
    in_times = np.asarray(in_times, dtype=np.float64)
    n_out, n_in = weight.shape
    B = in_times.shape[0]
    delta_theta = theta if delta_theta is None else delta_theta
    fin = np.isfinite(in_times)
    if duration is None:
        duration = float(in_times[fin].max()) + 10 * tau_s if fin.any() else 10 * tau_s
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    b2.defaultclock.dt = dt * b2.second
    bb, ii, _ = np.nonzero(fin)
    gen = b2.SpikeGeneratorGroup(B * n_in, bb * n_in + ii, in_times[fin] * b2.second)
    ns = {"tau": 2 * tau_s, "tau_s": tau_s, "theta": theta, "delta_theta": delta_theta}
    group = b2.NeuronGroup(B * n_out, """du/dt = (-u/tau + v)/second : 1
                                          dv/dt = -v/(tau_s*second) : 1""",
                           threshold="u >= theta", reset="u -= delta_theta", method="exact", namespace=ns)
    syn = b2.Synapses(gen, group, "w : 1", on_pre="v_post += w")
    pre = (np.arange(B)[:, None, None] * n_in + np.arange(n_in)[None, None, :]).repeat(n_out, 1)
    post = (np.arange(B)[:, None, None] * n_out + np.arange(n_out)[None, :, None]).repeat(n_in, 2)
    syn.connect(i=pre.ravel(), j=post.ravel())
    syn.w = np.broadcast_to(weight, (B, n_out, n_in)).ravel()
    mon = b2.SpikeMonitor(group)
    objs = [gen, group, syn, mon]
    if record_neuron is not None:
        state = b2.StateMonitor(group, "u", record=[record_neuron[0] * n_out + record_neuron[1]])
        objs.append(state)
    net = b2.Network(*objs)
    net.run(duration * b2.second, namespace=ns)
    idx, times = np.asarray(mon.i), np.asarray(mon.t / b2.second)
    trains = [[sorted(times[idx == b * n_out + n].tolist()) for n in range(n_out)] for b in range(B)]
    if record_neuron is not None:
        return trains, (np.asarray(state.t / b2.second), np.asarray(state.u[0]))
    return trains
