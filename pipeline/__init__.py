"""NAR-SLP-KD: Non-Autoregressive Sign Language Production via Knowledge Distillation.

One module per DVC stage (``python -m pipeline.<stage>``); shared code lives in
``pipeline.config`` (params), ``pipeline.store`` (array store), ``pipeline.skeleton``
(joint layout) and ``pipeline.tracking`` (MLflow).
"""
