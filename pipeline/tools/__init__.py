"""Command-line tools around the pipeline (not DVC stages): ``translate`` (text -> poses, video),
``serve`` (MLflow model registration), ``report`` (paper-style tables of the experiments),
``check_metrics`` (CI metric guards) and ``smoke`` (the tiny pipeline in a temporary copy)."""
