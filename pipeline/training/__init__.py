"""Training: ``engine`` (the Lightning skeleton every training stage runs, the ``train`` params,
checkpoints and resume) and ``tracking`` (MLflow: one parent run per DVC experiment, one child
run per stage)."""
