"""Evaluation metrics of the paper (§5.1, Tables 1-3) plus DTW-MJE.

- :func:`frechet_distance` / :func:`fgd`: Fréchet Gesture Distance, Eq. 12, between two sets of
  latent vectors (rows), with ``scipy.linalg.sqrtm`` for ``(Σr Σg)^½`` and the usual safeguards:
  when the square root is not finite (singular product) ``eps`` is added to both diagonals and it is
  recomputed; an imaginary part of ``sqrtm`` (round-off of a PSD product) is dropped when its
  largest magnitude is below ``imag_tol`` (relative to the largest real entry) and raises
  :class:`MetricError` otherwise.
- :func:`windows`: the fixed-length windows fed to the FGD encoder (TAE), see its docstring.
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
- :func:`dtw_mje`: mean joint error after DTW alignment of a generated sequence to its reference:
  per-frame cost = mean Euclidean distance over joints; the alignment minimises the summed cost
  over monotone paths (steps (1,0), (0,1), (1,1); ties: diagonal first); the score is that summed
  cost divided by the path length, i.e. the mean joint error along the aligned path, in the units
  of the input. :func:`dtw_mje_parts` scores many pairs at once (vectorised over the pairs and the
  anti-diagonals of the cost matrix) and adds each body part's joint error along the same path.
- :func:`duration_accuracy`: share of sentences with ``|T_hat - T| < margin`` frames (25 = 1 s at
  25 fps; "less than a second margin of error", §6; same rule as the student's dev DurACC).
- :func:`realism_ratios`: per body part, generated / reference mean bone length
  (:func:`mean_bone_length`) and SD of the frame-to-frame displacement (:func:`motion_sd`): the
  shrinking and damping that FGD and BLEU do not show.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import sacrebleu
import scipy.linalg
from rouge_score import rouge_scorer
from scipy.spatial.distance import cdist


class MetricError(ValueError):
    """Invalid input to a metric or a numerically unusable result."""


# -- FGD ----------------------------------------------------------------------------------------


def _sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # a singular product is handled by the caller (eps retry)
        warnings.simplefilter("ignore", RuntimeWarning)
        out = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if isinstance(out, tuple):  # old scipy returned (sqrtm, errest) with disp=False
        out = out[0]
    return np.asarray(out)


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
    imag_tol: float = 1e-3,
) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2): Eq. 12 of the paper.

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^½)``. See the module docstring
    for the ``eps`` / ``imag_tol`` safeguards. Raises :class:`MetricError` on shape mismatch,
    non-finite inputs, or a large imaginary component.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise MetricError(
            f"frechet_distance: shapes do not match: mu1 {mu1.shape}, mu2 {mu2.shape}, "
            f"sigma1 {sigma1.shape}, sigma2 {sigma2.shape}"
        )
    for name, arr in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(arr).all():
            raise MetricError(f"frechet_distance: {name} has non-finite values")
    diff = mu1 - mu2
    covmean = _sqrtm_product(sigma1, sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = _sqrtm_product(sigma1 + offset, sigma2 + offset)
        if not np.isfinite(covmean).all():
            raise MetricError(
                "frechet_distance: sqrtm(sigma1 sigma2) is not finite even with eps on the diagonal"
            )
    if np.iscomplexobj(covmean):
        scale = max(float(np.abs(covmean.real).max()), 1e-12)
        imag = float(np.abs(covmean.imag).max())
        if imag > imag_tol * scale:
            raise MetricError(
                f"frechet_distance: sqrtm(sigma1 sigma2) has an imaginary part of {imag:.3g} "
                f"(> {imag_tol} x {scale:.3g}); covariances are not positive semi-definite"
            )
        covmean = covmean.real
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)  # round-off can give a tiny negative number for identical sets


def gaussian_stats(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, rowvar=False) covariance of ``latents`` [N, D]; needs N >= 2."""
    z = np.asarray(latents, np.float64)
    if z.ndim != 2:
        raise MetricError(f"latents must be [N, D], got shape {z.shape}")
    if len(z) < 2:
        raise MetricError(f"FGD needs at least 2 latent vectors per set, got {len(z)}")
    if not np.isfinite(z).all():
        raise MetricError("latents have non-finite values")
    return z.mean(axis=0), np.atleast_2d(np.cov(z, rowvar=False))


def fgd(real: np.ndarray, generated: np.ndarray, eps: float = 1e-6) -> float:
    """FGD (Eq. 12) between the latent sets ``real`` [N, D] and ``generated`` [M, D]."""
    if np.shape(real)[1:] != np.shape(generated)[1:]:
        raise MetricError(f"latent widths differ: real {np.shape(real)}, generated {np.shape(generated)}")
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(generated), eps=eps)


def windows(seq: np.ndarray, size: int = 34, stride: int | None = None) -> np.ndarray:
    """Fixed-length windows ``[W, size, ...]`` of ``seq`` [T, ...] for the FGD encoder.

    - ``T >= size``: windows start at 0, stride, 2*stride, ... (``stride`` defaults to ``size``:
      non-overlapping); when the last start leaves frames uncovered, one more window ending at the
      last frame is added, so every frame is in some window.
    - ``0 < T < size``: one window, the sequence padded to ``size`` by repeating its last frame
      (a pose held still; the encoder saw the same padding in training).
    - ``T == 0``: :class:`MetricError`.
    """
    seq = np.asarray(seq)
    n = len(seq)
    if size <= 0 or (stride is not None and stride <= 0):
        raise MetricError(f"windows: size={size}, stride={stride} must be > 0")
    if n == 0:
        raise MetricError("windows: empty sequence (0 frames)")
    if n < size:
        pad = np.repeat(seq[-1:], size - n, axis=0)
        return np.concatenate([seq, pad])[None]
    step = stride or size
    starts = list(range(0, n - size + 1, step))
    if starts[-1] + size < n:
        starts.append(n - size)
    return np.stack([seq[s : s + size] for s in starts])


# -- text metrics -------------------------------------------------------------------------------


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


# -- pose metrics -------------------------------------------------------------------------------


def _dtw_along_path(cost: np.ndarray, n: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched DTW over anti-diagonals: the path minimises ``cost[:, 0]``; returns the sums of every
    ``cost[:, k]`` along it ``[P, K]`` and the path lengths ``[P]``.

    ``cost`` is ``[P, K, N, M]``, pair ``p`` using its top-left ``n[p] x m[p]`` block. Steps
    (1,0), (0,1), (1,1); ties prefer the diagonal, then (1,0), then (0,1). Forward: the cells
    (i, d - i) of anti-diagonal d depend only on diagonals d-1 and d-2, so each diagonal is one
    vector step over all pairs (stored by row i, offset 1: index 0 is padding), keeping the chosen
    predecessor; backward: all pairs walk their paths at once, summing every cost on the way.
    """
    P, K, N, M = cost.shape
    acc1, acc2 = np.full((P, N + 1), np.inf), np.full((P, N + 1), np.inf)  # diagonals d-1, d-2
    pick = np.zeros((N + M - 1, P, N), np.int8)  # 0 = from (i-1, j-1), 1 = (i-1, j), 2 = (i, j-1)
    rows = np.arange(N)
    for d in range(N + M - 1):
        i = rows[max(0, d - M + 1) : min(d, N - 1) + 1]
        c = np.full((P, N), np.inf)
        c[:, i] = cost[:, 0, i, d - i]
        if d == 0:
            best = c
        else:
            diag, up, left = acc2[:, :N], acc1[:, :N], acc1[:, 1:]
            low = np.minimum(up, left)
            pick[d] = np.where(diag <= low, 0, np.where(up <= left, 1, 2))
            best = c + np.minimum(diag, low)
        acc2, acc1 = acc1, np.full((P, N + 1), np.inf)
        acc1[:, 1:] = best
    i, j, p = n - 1, m - 1, np.arange(P)
    sums, steps = cost[p, :, i, j].copy(), np.ones(P)
    while True:
        live = (i > 0) | (j > 0)
        if not live.any():
            return sums, steps
        q, qi, qj = p[live], i[live], j[live]
        move = pick[qi + qj, q, qi]
        qi, qj = qi - (move < 2), qj - (move != 1)
        i[live], j[live] = qi, qj
        sums[live] += cost[q, :, qi, qj]
        steps[live] += 1


def _check_pose_pair(a: np.ndarray, b: np.ndarray, where: str) -> None:
    if a.ndim != 3 or b.ndim != 3 or a.shape[1:] != b.shape[1:]:
        raise MetricError(f"{where}: need [T, J, C] arrays of equal J, C; got {a.shape} and {b.shape}")
    if len(a) == 0 or len(b) == 0:
        raise MetricError(f"{where}: empty sequence ({len(a)} and {len(b)} frames)")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise MetricError(f"{where}: non-finite values")


def dtw_mje_parts(
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    parts: dict[str, slice] | None = None,
    align: slice | None = None,
) -> dict[str, np.ndarray]:
    """DTW-MJE of every pair (``generated[p]`` vs ``reference[p]``, ``[T, J, C]`` each), per part.

    The DTW path of a pair minimises the summed per-frame cost = mean Euclidean joint distance over
    the ``align`` joints (all joints when None); ``"all"`` is that cost's mean along the path (the
    DTW-MJE), and each ``parts[name]`` (a slice of joints) gets the mean joint error of its joints
    along the *same* path. Returns ``{"all": [P], name: [P], ...}``. Vectorised: all pairs are
    aligned at once over the anti-diagonals of the padded cost tensor.
    """
    if len(generated) != len(reference):
        raise MetricError(f"dtw_mje: {len(generated)} generated but {len(reference)} reference sequences")
    if not len(generated):
        raise MetricError("dtw_mje: no sequence pairs")
    pairs = [(np.asarray(g, np.float64), np.asarray(r, np.float64)) for g, r in zip(generated, reference)]  # noqa: B905 (lengths checked)
    for p, (a, b) in enumerate(pairs):
        _check_pose_pair(a, b, f"dtw_mje (pair {p})")
    groups = {"all": align if align is not None else slice(None), **(parts or {})}
    n = np.array([len(a) for a, _ in pairs])
    m = np.array([len(b) for _, b in pairs])
    cost = np.zeros((len(pairs), len(groups), int(n.max()), int(m.max())))
    for p, (a, b) in enumerate(pairs):
        # per-joint distances [J, Ta, Tb]: cdist per joint, no [Ta, Tb, J, C] tensor
        dist = np.stack([cdist(a[:, j], b[:, j]) for j in range(a.shape[1])])
        for k, sl in enumerate(groups.values()):
            part = dist[sl]
            if len(part) == 0:
                raise MetricError(f"dtw_mje: part {list(groups)[k]!r} selects no joint of {a.shape[1]}")
            cost[p, k, : len(a), : len(b)] = part.mean(axis=0)
    sums, steps = _dtw_along_path(cost, n, m)
    return {name: sums[:, k] / steps for k, name in enumerate(groups)}


def dtw_mje(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean joint error along the DTW alignment of ``generated`` [T1, J, C] to ``reference`` [T2, J, C]."""
    return float(dtw_mje_parts([generated], [reference])["all"][0])


def duration_accuracy(predicted: Sequence[int], reference: Sequence[int], margin: float = 25.0) -> float:
    """Share (0..1) of sentences whose predicted length differs from the reference by < ``margin`` frames."""
    p, r = np.asarray(predicted, np.float64), np.asarray(reference, np.float64)
    if p.shape != r.shape or p.ndim != 1:
        raise MetricError(f"duration_accuracy: lengths of shape {p.shape} vs {r.shape}")
    if len(p) == 0:
        raise MetricError("duration_accuracy: no sentences")
    return float(np.mean(np.abs(p - r) < margin))


# -- realism statistics -------------------------------------------------------------------------


def mean_bone_length(seqs: Sequence[np.ndarray], bones: Sequence[tuple[int, int]]) -> float:
    """Mean length of ``bones`` ``(parent, child)`` over every frame of ``seqs`` (``[T, J, C]`` each)."""
    if not bones:
        raise MetricError("mean_bone_length: no bones")
    parent, child = np.array([b[0] for b in bones]), np.array([b[1] for b in bones])
    total, count = 0.0, 0
    for s in seqs:
        x = np.asarray(s, np.float64)
        total += float(np.linalg.norm(x[:, child] - x[:, parent], axis=-1).sum())
        count += len(x) * len(bones)
    if count == 0:
        raise MetricError("mean_bone_length: no frames")
    return total / count


def motion_sd(seqs: Sequence[np.ndarray], joints: slice | Sequence[int]) -> float:
    """SD of the frame-to-frame displacement of ``joints``: every coordinate of ``x[t+1] - x[t]``
    over all frames, joints and channels of ``seqs`` pooled (0 for a still pose); sequences of one
    frame have no displacement and are skipped."""
    steps = [np.diff(np.asarray(s, np.float64)[:, joints], axis=0).ravel() for s in seqs if len(s) > 1]
    steps = [d for d in steps if d.size]
    if not steps:
        raise MetricError("motion_sd: no sequence has two frames")
    return float(np.concatenate(steps).std())


def realism_ratios(
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    bones: dict[str, list[tuple[int, int]]],
    parts: dict[str, slice],
) -> dict[str, dict[str, float]]:
    """Per part: ``bone_ratio`` = mean bone length generated / reference and ``motion_ratio`` =
    :func:`motion_sd` generated / reference (1 = as real signing; < 1 = shrunk / damped)."""
    out: dict[str, dict[str, float]] = {}
    for name, sl in parts.items():
        ref_bone, ref_motion = mean_bone_length(reference, bones[name]), motion_sd(reference, sl)
        out[name] = {
            "bone_ratio": mean_bone_length(generated, bones[name]) / ref_bone if ref_bone > 0 else math.nan,
            "motion_ratio": motion_sd(generated, sl) / ref_motion if ref_motion > 0 else math.nan,
        }
    return out
