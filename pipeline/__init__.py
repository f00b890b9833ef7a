"""NAR-SLP-KD: Non-Autoregressive Sign Language Production via Knowledge Distillation.

``stages/`` holds exactly the DVC stages (``python -m pipeline.stages.<stage>``), ``tools/`` the
command-line tools (translate, serve, report, check_metrics, smoke); everything they share lives in
the library packages below them: ``config`` (params), ``data`` (formats and sources), ``synth``
(the synthetic corpus), ``preprocess`` (normalisation), ``lifting`` (2D -> 3D), ``models``,
``evaluation`` (metrics, scoring, tables, figures), ``inference`` (the trained student as a
product) and ``training`` (the Lightning engine and MLflow tracking). docs/ARCHITECTURE.md has
the map.
"""
