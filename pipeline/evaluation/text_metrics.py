"""Text metrics of back-translation (§5.1): BLEU-1..4, ROUGE-L and the gloss WER.

- :func:`bleu_scores`: BLEU-1..4 with sacrebleu's ``corpus_bleu``. BLEU-n is the *cumulative*
  BLEU of order n, i.e. sacrebleu's ``BLEU(max_ngram_order=n)``: brevity penalty times the geometric
  mean of the 1..n-gram precisions with uniform weights 1/n (as the SLT/SLP back-translation
  tables report it, Camgoz et al. 2020; Saunders et al. 2020), tokenizer ``13a``, no lowercasing,
  no smoothing (``smooth_method="none"``, so a corpus with no matching n-gram scores 0).
  Scores are in 0..100.
- :func:`rouge_l`: ROUGE-L F1 from rouge-score's ``RougeScorer(["rougeL"])``, averaged over
  sentences (sentence-level, as the SLT papers' ROUGE), in 0..100. rouge-score's default tokenizer
  keeps ``[a-z0-9]`` only, so German umlauts/ß are transliterated first (ä→ae, ö→oe, ü→ue, ß→ss);
  otherwise "für" and "fur" would count as the same token "f" "r".
- :func:`word_error_rate`: corpus-level WER (jiwer) of recognised gloss sequences, 0..100.

Kept apart from the pose metrics (:mod:`pipeline.evaluation.metrics`) so that the back-translator's
stage, a fixed evaluator, does not depend on them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu
from rouge_score import rouge_scorer


class MetricError(ValueError):
    """Invalid input to a metric or a numerically unusable result."""


def _check_pairs(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise MetricError("hypotheses and references must be lists of strings, not one str")
    if len(hypotheses) != len(references):
        raise MetricError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not references:
        raise MetricError("no sentences to score")


def bleu_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU-1..4 (0..100) with sacrebleu; see the module docstring for the definition."""
    _check_pairs(hypotheses, references)
    out = {}
    for n in range(1, 5):
        bleu = sacrebleu.metrics.BLEU(max_ngram_order=n, smooth_method="none", tokenize="13a")
        out[f"bleu{n}"] = float(bleu.corpus_score(list(hypotheses), [list(references)]).score)
    return out


_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean sentence-level ROUGE-L F1 (0..100) with rouge-score; umlauts transliterated first."""
    _check_pairs(hypotheses, references)
    total = 0.0
    for hyp, ref in zip(hypotheses, references, strict=True):
        total += _ROUGE.score(ref.translate(_GERMAN), hyp.translate(_GERMAN))["rougeL"].fmeasure
    return 100.0 * total / len(references)


def word_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus word error rate (0..100) with jiwer: (substitutions + deletions + insertions) over all
    sentences / number of reference words; words split on white space, case kept (gloss WER of the
    back-translator's recognition head). An empty hypothesis is allowed (all deletions); raises
    :class:`MetricError` for mismatched or non-string inputs or references without any word."""
    import jiwer

    _check_pairs(hypotheses, references)
    if not all(isinstance(s, str) for s in (*hypotheses, *references)):
        raise MetricError("word_error_rate: hypotheses and references must be strings")
    hyps, refs = [" ".join(h.split()) for h in hypotheses], [" ".join(r.split()) for r in references]
    if not any(refs):
        raise MetricError("word_error_rate: the references have no words")
    return 100.0 * float(jiwer.wer(refs, hyps))
