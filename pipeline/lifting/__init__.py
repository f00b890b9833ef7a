"""2D -> 3D lifting of the manual joints with a skeletal model (stage ``lift``).

``bones`` (kinematic tree, bone classes, proportions, priors, rest pose), ``config`` (the ``lift``
params section), ``depth_signs`` (Viterbi choice of each bone's depth direction), ``lift`` (the
batched optimisation and the lifting of a split), ``metrics`` (MPJPE-PA, reprojection error, bone
rigidity), ``toy`` (a synthetic 3D signer for tests and benchmarks).
"""
