"""A learned pose prior for the lifting (``lift.method: knn``): depth from the nearest 2D poses of a
bank of frames whose 3D is known.

The bank holds, per frame of a corpus with 3D (the synthetic train split's ``gt3d``), the filled
2D of the 50 manual joints in body-centred units and each joint's depth relative to the neck,
brought into the 2D's scale (one least-squares scale per sequence of the 3D's x, y onto the 2D).
A frame to lift takes the mean depth of its ``k`` nearest bank frames (Euclidean distance along
the bank's first principal axes of the 100 2D coordinates); the batched optimisation of
:mod:`pipeline.lifting.lift` then starts from that depth instead of the Viterbi sign choice and
makes the bones rigid. Frames never meet their own
sequence in the bank (``exclude``), so the train split is lifted as dev and test are: by other
sequences' 3D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from pipeline.lifting import bones as K

FOLDS = 5  # a frame of the bank's own split searches the bank without its sequence's fold


@dataclass(frozen=True)
class DepthBank:
    """``poses`` [N, 50, 2] filled 2D (body-centred), ``depth`` [N, 50] relative to the neck in the
    2D's scale, ``sequence`` [N] the bank sequence each frame comes from; ``mean`` [100] and
    ``basis`` [100, D]: the principal axes distances are measured along."""

    poses: np.ndarray
    depth: np.ndarray
    sequence: np.ndarray
    mean: np.ndarray
    basis: np.ndarray

    def __len__(self) -> int:
        return len(self.poses)

    def features(self, poses: np.ndarray) -> np.ndarray:
        """Frames [F, 50, 2] as coordinates [F, D] along the bank's principal axes."""
        return ((poses.reshape(len(poses), -1) - self.mean) @ self.basis).astype(np.float32)


def build_bank(
    filled: list[np.ndarray], gt3d: list[np.ndarray], stride: int = 1, dims: int | None = None
) -> DepthBank:
    """A bank from sequences of filled 2D [T_i, 50, 2] (body-centred) and their 3D [T_i, 50+, 3]
    (any units, x right, y down, z away from the camera), every ``stride``-th frame (neighbouring
    frames are near copies), frames with non-finite 3D left out; distances along the first
    ``dims`` principal axes of the bank's 2D (None: all 100 coordinates)."""
    poses, depth, seq = [], [], []
    for i, (f, g) in enumerate(zip(filled, gt3d, strict=True)):
        f, g = f[::stride], np.asarray(g, dtype=np.float64)[::stride, : K.N_MANUAL]
        ok = np.isfinite(g).all(axis=(1, 2))
        if not ok.any():
            continue
        f, g = f[ok], g[ok]
        gx = g[..., :2] - g[:, K.ROOT : K.ROOT + 1, :2]
        fx = f - f[:, K.ROOT : K.ROOT + 1]
        scale = float((gx * fx).sum() / max((gx * gx).sum(), 1e-12))
        poses.append(f.astype(np.float32))
        depth.append((scale * (g[..., 2] - g[:, K.ROOT : K.ROOT + 1, 2])).astype(np.float32))
        seq.append(np.full(len(f), i))
    if not poses:
        raise ValueError("no frame with finite 3D to build the depth bank from")
    flat = np.concatenate(poses).reshape(-1, 2 * K.N_MANUAL).astype(np.float64)
    mean = flat.mean(axis=0)
    if dims is None or dims >= flat.shape[1]:
        basis = np.eye(flat.shape[1])
    else:
        basis = np.linalg.svd(flat - mean, full_matrices=False)[2][:dims].T  # [100, dims]
    return DepthBank(np.concatenate(poses), np.concatenate(depth), np.concatenate(seq), mean, basis)


def knn_depth(bank: DepthBank, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Depth [F, 50] of each query frame [F, 50, 2]: the mean over its ``k`` nearest bank frames
    (exact, k-d tree). ``exclude`` [F] names a bank sequence each query frame may not use (-1:
    none); such a frame searches the bank without that sequence's fold (sequence id modulo
    :data:`FOLDS`), so a frame never meets its own sequence, nor a fifth of the others."""
    feats = bank.features(query)
    k = min(k, len(bank))
    out = np.empty((len(query), K.N_MANUAL), dtype=np.float32)
    groups = (
        np.full(len(query), -1)
        if exclude is None
        else np.where(np.asarray(exclude) >= 0, exclude % FOLDS, -1)
    )
    fold = bank.sequence % FOLDS
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        keep = np.flatnonzero(fold != g) if g >= 0 else np.arange(len(bank))
        if len(keep) < k:
            raise ValueError(
                f"the depth bank has {len(keep)} frames outside fold {g} (a sequence never uses its own "
                f"fold), fewer than k={k}: the train split needs sequences in at least two folds"
            )
        _, idx = cKDTree(bank.features(bank.poses[keep])).query(feats[rows], k=k, workers=-1)
        out[rows] = bank.depth[keep[np.asarray(idx).reshape(len(rows), k)]].mean(axis=1)
    return out
