"""snnkit.reference: Brian2 bridges used as ground truth (optional dependency).

``brian2_bats.run_dense`` simulates a dense BATS layer with Brian2's exact linear integrator.
"""
