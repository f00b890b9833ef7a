"""Pose metrics of the evaluation (§5.1, Tables 1-3): FGD, DTW-MJE, DurACC, realism statistics.

- :func:`frechet_distance` / :func:`fgd`: Fréchet Gesture Distance, Eq. 12, between two sets of
  latent vectors (rows); ``Tr((Σr Σg)^½)`` from the eigenvalues of the symmetric ``Σr^½ Σg Σr^½``
  (exact for the singular covariances of small window sets). The windows it is computed on are the
  FGD encoder's (:func:`pipeline.models.fgd_encoder.windows`); the text metrics of back-translation
  live in :mod:`pipeline.evaluation.text_metrics`.
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
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist

from pipeline.evaluation.text_metrics import MetricError

# -- FGD ----------------------------------------------------------------------------------------


def _check_psd(values: np.ndarray, name: str, tol: float) -> None:
    """Eigenvalues below 0 by more than ``tol`` x the largest: not a covariance."""
    top = max(float(np.abs(values).max()), 1e-300)
    if values.min() < -tol * top:
        raise MetricError(
            f"frechet_distance: {name} is not positive semi-definite (eigenvalue {values.min():.3g}, "
            f"largest {top:.3g})"
        )


def _psd_sqrt(sigma: np.ndarray, name: str, tol: float) -> np.ndarray:
    """Symmetric square root of a covariance via ``eigh`` (checked by :func:`_check_psd`; round-off
    negatives become 0)."""
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2.0)
    _check_psd(values, name, tol)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, tol: float = 1e-6
) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2): Eq. 12 of the paper.

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^½)``, with
    ``Tr((sigma1 sigma2)^½) = Tr((A sigma2 A)^½)``, ``A = sigma1^½`` (the product is similar to a
    symmetric PSD matrix): the sum of the square roots of its ``eigvalsh`` eigenvalues. Exact for
    singular covariances (few windows in a wide latent: the paired reading), no ε and no
    imaginary parts. Raises :class:`MetricError` on shape mismatch, non-finite inputs or a matrix
    that is not positive semi-definite (an eigenvalue below ``-tol`` x the largest).
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
    root = _psd_sqrt(sigma1, "sigma1", tol)
    _check_psd(np.linalg.eigvalsh((sigma2 + sigma2.T) / 2.0), "sigma2", tol)
    product = root @ sigma2 @ root
    inner = np.linalg.eigvalsh((product + product.T) / 2.0)
    covmean_trace = float(np.sqrt(np.clip(inner, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * covmean_trace)
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


def fgd(real: np.ndarray, generated: np.ndarray) -> float:
    """FGD (Eq. 12) between the latent sets ``real`` [N, D] and ``generated`` [M, D]."""
    if np.shape(real)[1:] != np.shape(generated)[1:]:
        raise MetricError(f"latent widths differ: real {np.shape(real)}, generated {np.shape(generated)}")
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(generated))


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
