"""The embedded synthetic, PHOENIX-shaped signing corpus (stage ``synthesize``).

Modules: ``grammar`` (German weather sentences and DGS-like glosses), ``vocabulary`` (its Zipf-
ranked word inventories), ``lexicon`` (one parametric sign per gloss), ``motion`` (gloss
sequence -> per-frame controls with rest pose, transitions, holds), ``body`` (signers,
arm/hand/face kinematics in the generator's body frame, pinhole camera), ``detector`` (OpenPose-
like noise) and ``corpus`` (the ``synthetic`` params section and the whole generation, written
in the real OpenPose JSON and PHOENIX corpus formats of :mod:`pipeline.data`).
"""
