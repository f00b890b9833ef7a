"""Accuracy of a lifting: Procrustes-aligned joint error against a 3D truth, reprojection error,
rigidity of the bones (body-centred units, see :mod:`pipeline.lifting.bones`)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.data.skeleton import MANUAL, PARTS
from pipeline.lifting import bones as K


def bone_length_cv(x: np.ndarray, min_length: float = 1e-6) -> float:
    """Mean over bones of the coefficient of variation of a bone's length across frames.

    ``x`` is one sequence ``[T, 50, 3]``; bones with mean length below ``min_length`` (the
    zero-length detector link) are left out.
    """
    lengths = K.bone_lengths(x)
    mean = lengths.mean(axis=0)
    keep = mean > min_length
    return float(np.mean(lengths.std(axis=0)[keep] / mean[keep]))


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align ``pred`` to ``gt`` (both ``[..., 3]``, same shape) with one rotation,
    scale and translation for the whole array (reflections excluded, so a depth flip is an
    error); returns the aligned ``pred``."""
    p = pred.reshape(-1, 3).astype(np.float64)
    g = gt.reshape(-1, 3).astype(np.float64)
    mp, mg = p.mean(axis=0), g.mean(axis=0)
    p0, g0 = p - mp, g - mg
    rot, _ = Rotation.align_vectors(g0, p0)  # proper rotation minimising |g0 - R p0|
    pr = rot.apply(p0)
    scale = float((pr * g0).sum() / max((pr * pr).sum(), 1e-12))
    return (scale * pr + mg).reshape(pred.shape)


def shoulder_width(x: np.ndarray) -> float:
    """Mean distance between the two shoulders over the frames of ``x`` [T, J, C]."""
    r, left = MANUAL["body_r_shoulder"], MANUAL["body_l_shoulder"]
    return float(np.linalg.norm(x[:, r] - x[:, left], axis=-1).mean())


def reprojection_error(x3d: np.ndarray, p: np.ndarray, c: np.ndarray, min_confidence: float) -> float:
    """Confidence-weighted mean 2D distance (body-centred units) between lifted and observed joints."""
    w = np.where(c >= max(min_confidence, 1e-12), c, 0.0)
    d = np.linalg.norm(x3d[..., :2] - p, axis=-1)
    return float((w * d).sum() / max(w.sum(), 1e-12))


def mpjpe_pa(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """MPJPE after per-sequence similarity Procrustes, body (BODY_25 0-7), both hands together
    (``hands``) and each hand, as a fraction of the ground truth's mean shoulder width.
    ``pred``/``gt``: one sequence [T, 50+, 3]; ``{}`` when ``gt`` has no finite frame."""
    pred, gt = pred[:, : K.N_MANUAL].astype(np.float64), gt[:, : K.N_MANUAL].astype(np.float64)
    ok = np.isfinite(gt).all(axis=-1)
    if not ok.any():
        return {}
    aligned = procrustes_align(pred[ok], gt[ok])
    err = np.full(ok.shape, np.nan)
    err[ok] = np.linalg.norm(aligned - gt[ok], axis=-1)
    sw = shoulder_width(gt)
    body, hands = PARTS["body"], slice(PARTS["left_hand"].start, PARTS["right_hand"].stop)
    return {
        "body": float(np.nanmean(err[:, body]) / sw),
        "hands": float(np.nanmean(err[:, hands]) / sw),
        "left_hand": float(np.nanmean(err[:, PARTS["left_hand"]]) / sw),
        "right_hand": float(np.nanmean(err[:, PARTS["right_hand"]]) / sw),
    }
