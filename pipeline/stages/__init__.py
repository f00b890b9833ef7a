"""The DVC stages, one module each, named like the stage in dvc.yaml (``python -m pipeline.stages.lift``).

A stage reads its params (declared in its ``STAGE``), reads its declared deps and writes its
declared outs, nothing else; ``--help`` prints them. Stages import library packages, never another
stage.
"""
