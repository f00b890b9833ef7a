"""Pre-processing of ingested poses before lifting: :mod:`pipeline.preprocess.normalise` (signer
choice, gap filling, per-sequence centring/scaling, the [0, 1] map fitted on train)."""
