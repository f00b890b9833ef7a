"""Paper-style report of the DVC experiments from the MLflow store: ``python -m pipeline.tools.report``.

Reads the *parent* runs (one per ``dvc repro`` / ``dvc exp run``, tagged ``nar.parent_key`` by
:mod:`pipeline.training.tracking`) of the experiment ``--experiment`` (default: ``tracking.experiment`` of
``params.yaml``, else ``nar-slp-kd``) in ``--tracking-uri`` (default: the store the stages write
to, :func:`pipeline.training.tracking.tracking_uri`). Each run's *variant* comes from its params:

- ``loss.distil`` = 0 -> ``w/o KD`` (Table 3a), another value than 1 -> ``KD x<w>``;
- ``student.text_encoder`` != ``bert`` -> ``w/o BERT`` (Table 3b);
- ``vae.loss`` != ``bce`` -> ``MSE-VAE``;
- none of these -> ``full``; combinations are joined with `` + ``;
- ``student.seed`` set (a seed study of the student) -> `` (seed N)`` appended, its own variant.

The ``seeds`` table pools the seeds instead: per (profile, variant without the seed) the newest
run of every student seed (``student.seed``, else the global ``seed``) and the mean and sample
standard deviation of the student's metrics over those seeds.

Runs are grouped by (corpus, variant), the corpus being the params ``profile`` plus the lifting
when it is not the default ``knn`` (``default, lift viterbi``: :func:`.runs.corpus_of`; runs from
before ``lift.method`` existed are ``viterbi``), so runs on differently lifted poses are never
pooled; only runs that carry evaluation metrics
(``evaluate.<split>.<system>.<metric>``, logged by the ``evaluate`` stage) count, and when
several share a group the newest (start time) is used; the others are listed in ``runs.md``.

Writes into ``--out`` (default ``reports/``): ``table1`` (FGD†, BLEU-1..4, ROUGE, dev and test),
``table2`` (FGD† per reference-length interval and over the first N frames, test split),
``table3a`` (KD vs no KD: FGD†, DurACC), ``table3b`` (BERT vs no BERT), ``ablations`` (every
variant: FGD†, BLEU-4, ROUGE, DurACC, VAE hand MPJPE), ``seeds`` (the same, mean and standard
deviation over student seeds) and ``runs``, each as ``.md`` and
``.csv``, all tables in ``report.md``, and the plot ``report.png``. Beside our numbers, the
paper's own PHOENIX-2014T numbers (Tables 1, 2, 3; :mod:`.paper`) are shown in rows
labelled ``paper (PHOENIX-2014T, Table N)``; ours come from whatever corpus the runs used (by
default the synthetic one), so they are not directly comparable.

Modules: ``paper`` (the paper's typed numbers), ``runs`` (parent runs from MLflow, variant names,
selection), ``experiment_tables`` (the tables), ``plot`` (``report.png``), ``__main__`` (the CLI).
"""
