"""Evaluation: ``metrics`` (FGD, BLEU, ROUGE, DTW-MJE, DurACC), ``backtranslation`` (poses -> text
-> BLEU/ROUGE), ``scoring`` (the systems GT/Mean/Random/student scored per split, the ``evaluate``
params), ``tables`` (metric labels and formats shared with the report), ``figures`` (Figures 3 and
4) and ``render`` (skeleton drawing, GIF/MP4)."""
