"""The embedded synthetic signing corpus (stage ``synthesize``).

Modules: ``grammar`` (German weather sentences and DGS-like glosses), ``lexicon`` (one
parametric sign per gloss), ``motion`` (gloss sequence -> per-frame controls with rest pose,
transitions, holds), ``kinematics`` (signers, arm/hand/face kinematics, pinhole camera),
``detector`` (OpenPose-like noise), ``writer`` (OpenPose JSON, PHOENIX CSV) and ``corpus``
(params validation and the whole generation).
"""
