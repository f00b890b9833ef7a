"""2D -> 3D skeletal-model lifting of the 50 manual joints (Zelinka & Kanis 2020 style).

:func:`lift_split` lifts one normalised split (channels x, y, c in [0, 1]; 3D sources pass
through) to body-centred 3D and measures it (:mod:`pipeline.lifting.metrics`).

Model, per sequence, in body-centred units (neck origin, shoulder width 1, x right, y down, z away
from the camera): unknown 3D joints ``X[t, j]`` (the root, the neck, has z = 0) and one length per
left/right-symmetric bone class shared by all frames. Projection is orthographic in body-centred
units; because normalise already divides every sequence by its shoulder width, this is the weak
perspective camera with its scale absorbed into the bone lengths. Objective::

    w_reproj  * sum_tj c_tj |X_tj[xy] - p_tj|^2 / sum c                (confidence-weighted 2D fit)
  + w_length  * mean_tb ((|X_t,child - X_t,parent| - L_b) / s_b)^2     (bone-length consistency)
  + w_smooth  * mean_tj |X_t+1,j - 2 X_tj + X_t-1,j|^2                 (temporal smoothness)
  + w_length_prior * mean_b ((L_b - Lbar_b) / Lbar_b)^2                (average body proportions)

Initialisation: missing joints (c < min_confidence) are interpolated in time from confident frames
(a joint never confident sits at its parent plus its offset in
:func:`pipeline.lifting.bones.rest_pose`); bone lengths start at a high quantile of their confident
2D lengths after a light temporal smoothing (a bone is never longer in 2D than in 3D under
orthography; jitter inflates the quantile), for the shoulders a low quantile (signers face the
camera: the shoulders get depth only where their 2D looks shortened), floored by a fraction of the
average proportions; each bone's depth step is ``+-sqrt(L^2 - |d_2D|^2)``, its sign chosen by
:mod:`pipeline.lifting.depth_signs`. Then Adam refines all unknowns, batched over many sequences
(padding + masks), on the GPU when ``lift.device`` allows.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from pipeline.config import resolve_device
from pipeline.data.skeleton import MANUAL_FACE_JOINTS, MANUAL_JOINTS
from pipeline.data.store import SplitStore, StoreError
from pipeline.data.transform import UnitRange
from pipeline.lifting import bones as K
from pipeline.lifting import zelinka_kanis
from pipeline.lifting.batching import length_batches, pad_batch
from pipeline.lifting.config import LiftConfig
from pipeline.lifting.depth_signs import initial_depth
from pipeline.lifting.knn_prior import DepthBank, build_bank, knn_depth
from pipeline.lifting.metrics import bone_length_cv, mpjpe_pa, reprojection_error

_REST_2D = K.rest_pose()[:, :2]


class LiftError(ValueError):
    """A sequence that cannot be lifted (NaN, no confident joints, no spatial extent)."""


# -- input checks and initialisation -----------------------------------------------------------
def check_sequence(p: np.ndarray, c: np.ndarray, name: str, min_confidence: float) -> None:
    """Raise :class:`LiftError` naming ``name`` when a 2D sequence cannot be lifted."""
    if not np.isfinite(p).all() or not np.isfinite(c).all():
        bad = np.argwhere(~np.isfinite(np.concatenate([p, c[..., None]], axis=-1)))[0]
        raise LiftError(f"sequence {name!r}: non-finite value at frame {bad[0]}, joint {bad[1]}")
    if len(p) == 0:
        raise LiftError(f"sequence {name!r}: has no frames")
    conf = c >= max(min_confidence, 1e-12)
    if not conf.any():
        raise LiftError(f"sequence {name!r}: no joint has confidence >= {min_confidence} (all-zero input?)")
    pts = p[conf]
    if np.ptp(pts, axis=0).max() <= 1e-9:
        raise LiftError(f"sequence {name!r}: all confident joints coincide (all-zero input?)")


def fill_missing(p: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Replace non-confident joints by linear interpolation in time over confident frames;
    a joint never confident is placed at its parent plus its 2D offset in the rest pose."""
    out = p.astype(np.float64, copy=True)
    t = np.arange(len(p))
    never = []
    for j in range(K.N_MANUAL):
        ok = conf[:, j]
        if ok.all():
            continue
        if ok.any():
            for d in range(2):
                out[~ok, j, d] = np.interp(t[~ok], t[ok], p[ok, j, d])
        else:
            never.append(j)
    rest = _REST_2D
    for j in sorted(never, key=lambda j: K.JOINT_DEPTH[j]):
        par = K.MANUAL_PARENTS[j]
        out[:, j] = (out[:, par] if par >= 0 else 0.0) + rest[j] - (rest[par] if par >= 0 else 0.0)
    return out


def init_lengths(p: np.ndarray, conf: np.ndarray, cfg: LiftConfig) -> np.ndarray:
    """Initial length per symmetric bone class [N_CLASSES]: the ``init_quantile`` of its confident
    2D lengths (``shoulder_quantile`` for the shoulders, when set), at least ``length_floor`` x
    the average proportion x the person's scale (median
    ratio of those quantiles to the average proportions); the scaled average where unseen."""
    if cfg.length_smooth > 0 and len(p) > 1:  # detector jitter inflates high quantiles of 2D lengths
        p = gaussian_filter1d(p, cfg.length_smooth, axis=0, mode="nearest")
    l2 = K.bone_lengths(p)  # [T, B]
    ok = conf[:, K.BONE_CHILD] & conf[:, K.BONE_PARENT]
    prior = np.zeros(K.N_CLASSES)
    prior[K.BONE_CLASS] = K.PRIOR_LENGTHS
    q = np.full(K.N_CLASSES, np.nan)
    for k in range(K.N_CLASSES):
        bones = k == K.BONE_CLASS
        vals = l2[:, bones][ok[:, bones]]
        if len(vals) >= 3:
            quantile = cfg.init_quantile
            if k == K.SHOULDER_CLASS and cfg.shoulder_quantile is not None:
                quantile = cfg.shoulder_quantile
            q[k] = np.quantile(vals, quantile)
    # the person's overall scale relative to the average proportions (median over bones)
    ratio = q / prior
    usable = np.isfinite(ratio) & (prior > 0.05)
    scale = float(np.median(ratio[usable])) if usable.any() else 1.0
    floor = cfg.length_floor * scale * prior
    out = np.where(np.isfinite(q), np.maximum(np.nan_to_num(q), floor), scale * prior)
    return out


def _class_medians(x: np.ndarray) -> np.ndarray:
    """Median 3D length of each symmetric bone class over the frames of ``x`` [T, 50, 3]."""
    lengths = K.bone_lengths(x)  # [T, B]
    return np.array([np.median(lengths[:, k == K.BONE_CLASS]) for k in range(K.N_CLASSES)])


# -- batched optimisation -------------------------------------------------------------------
def lift_batch(
    points: list[np.ndarray],
    confidences: list[np.ndarray],
    cfg: LiftConfig,
    device: torch.device,
    depth0: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Lift a batch of 2D sequences (``[T_i, 50, 2]`` body-centred, confidences ``[T_i, 50]``)
    to 3D ``[T_i, 50, 3]`` body-centred; sequences must have passed :func:`check_sequence`.
    ``depth0`` ([T_i, 50] per sequence, relative to the neck) replaces the Viterbi sign choice as
    the initial depth (``lift.method: knn``); the bone lengths then start at the median 3D
    lengths of that initial pose."""
    dtype = torch.float32
    T = max(len(p) for p in points)
    confs = [c >= max(cfg.min_confidence, 1e-12) for c in confidences]
    filled = [fill_missing(p, ok) for p, ok in zip(points, confs, strict=True)]
    lengths0 = np.stack([init_lengths(f, ok, cfg) for f, ok in zip(filled, confs, strict=True)])
    obs = pad_batch(filled, T, dtype, device)  # [B, T, J, 2]
    w = pad_batch([np.where(ok, c, 0.0) for ok, c in zip(confs, confidences, strict=True)], T, dtype, device)
    valid = pad_batch([np.ones(len(p)) for p in points], T, dtype, device)  # [B, T]
    L0 = torch.as_tensor(lengths0, dtype=dtype, device=device)
    if depth0 is None:
        z0 = initial_depth(obs, L0, cfg, valid)
    else:
        z0 = pad_batch([d - d[:, K.ROOT : K.ROOT + 1] for d in depth0], T, dtype, device)
        if cfg.knn_lengths_3d:
            poses0 = [np.concatenate([f, d[..., None]], -1) for f, d in zip(filled, depth0, strict=True)]
            L0 = torch.as_tensor(np.stack([_class_medians(x) for x in poses0]), dtype=dtype, device=device)

    prior = np.zeros(K.N_CLASSES)
    prior[K.BONE_CLASS] = K.PRIOR_LENGTHS
    prior_t = torch.as_tensor(prior, dtype=dtype, device=device)
    bone_scale = torch.as_tensor(K.PRIOR_LENGTHS + 0.05, dtype=dtype, device=device)
    cls = torch.as_tensor(K.BONE_CLASS, device=device)
    # bone vectors as one matrix product with the incidence matrix (fast forward and backward)
    inc = torch.zeros((K.N_BONES, K.N_MANUAL), dtype=dtype, device=device)
    inc[torch.arange(K.N_BONES), torch.as_tensor(K.BONE_CHILD)] = 1.0
    inc[torch.arange(K.N_BONES), torch.as_tensor(K.BONE_PARENT)] = -1.0
    depth_mask = torch.ones((K.N_MANUAL, 3), dtype=dtype, device=device)
    depth_mask[K.ROOT, 2] = 0.0  # the root (neck) keeps depth 0

    # joints-first layout [J, B, T, 3] during the optimisation: bone vectors become one GEMM
    X = torch.cat([obs, z0[..., None]], dim=-1).permute(2, 0, 1, 3).contiguous().requires_grad_(True)
    L = L0.clone().requires_grad_(True)
    opt = torch.optim.Adam([X, L], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.iterations)
    obs_j = obs.permute(2, 0, 1, 3).contiguous()  # [J, B, T, 2]
    w_j = w.permute(2, 0, 1).contiguous()  # [J, B, T]
    mask_j = depth_mask[:, None, None, :]  # [J, 1, 1, 3]
    scale_j = bone_scale[:, None, None]
    J, Bn = K.N_MANUAL, len(points)

    n_obs = w.sum(dim=(1, 2)).clamp(min=1e-6)  # [B]
    n_frames = valid.sum(dim=1)  # [B]
    acc_mask = valid[:, 2:] * valid[:, 1:-1] * valid[:, :-2]
    n_acc = acc_mask.sum(dim=1).clamp(min=1.0)

    def loss_fn() -> torch.Tensor:
        Xm = X * mask_j
        reproj = (w_j * ((Xm[..., :2] - obs_j) ** 2).sum(-1)).sum(dim=(0, 2)) / n_obs
        bone = (inc @ Xm.reshape(J, -1)).reshape(K.N_BONES, Bn, T, 3)
        blen = torch.sqrt((bone**2).sum(-1) + 1e-9)  # [nb, B, T]
        dl = ((blen - L.t()[cls][..., None]) / scale_j) ** 2
        length = (dl.mean(0) * valid).sum(1) / n_frames
        total = cfg.w_reproj * reproj + cfg.w_length * length
        if T >= 3 and cfg.w_smooth > 0:
            acc = ((Xm[:, :, 2:] - 2 * Xm[:, :, 1:-1] + Xm[:, :, :-2]) ** 2).sum(-1).mean(0)
            total = total + cfg.w_smooth * (acc * acc_mask).sum(1) / n_acc
        total = total + cfg.w_length_prior * (((L - prior_t) / prior_t) ** 2).mean(-1)
        return total.sum()

    for _ in range(cfg.iterations):
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        X = (X * mask_j).permute(1, 2, 0, 3).contiguous()  # back to [B, T, J, 3]
        if cfg.rigid_output:  # rebuild every frame from the shared lengths and fitted directions
            bone = torch.matmul(inc, X)
            unit = bone / torch.sqrt((bone**2).sum(-1, keepdim=True) + 1e-12)
            step = unit * L.clamp(min=0.0)[:, None, cls, None]
            for level in K.BONE_LEVELS:
                X[:, :, K.BONE_CHILD[level]] = X[:, :, K.BONE_PARENT[level]] + step[:, :, level]
        X = X.cpu().numpy()
    return [X[i, : len(p)].astype(np.float32) for i, p in enumerate(points)]


def lift_sequences(
    points: list[np.ndarray],
    confidences: list[np.ndarray],
    names: list[str],
    cfg: LiftConfig,
    device: torch.device | None = None,
    depth0: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Lift every 2D manual-joint sequence (body-centred units) to 3D with ``cfg.method``, batching
    sequences of similar length together (at most ``cfg.batch_frames`` padded frames per batch);
    ``depth0`` (per sequence [T_i, 50]) is the ``knn`` method's initial depth (:func:`lift_batch`)."""
    device = device or resolve_device(cfg.device, "lift.device")
    for p, c, n in zip(points, confidences, names, strict=True):
        if p.shape[1:] != (K.N_MANUAL, 2) or c.shape != p.shape[:2]:
            raise LiftError(f"sequence {n!r}: expected [T, {K.N_MANUAL}, 2] points, got {p.shape}")
        check_sequence(p, c, n, cfg.min_confidence)
    if cfg.method == "zelinka_kanis":
        raw = [np.concatenate([p, c[..., None]], axis=-1) for p, c in zip(points, confidences, strict=True)]
        lifted = zelinka_kanis.lift_raw(
            raw, cfg.zk_iterations, cfg.zk_lr, cfg.zk_w_length, cfg.zk_w_velocity,
            batch_frames=cfg.batch_frames, device=device,
        )  # fmt: skip
        return [zelinka_kanis.to_input_units(*r).astype(np.float32) for r in lifted]
    out: list[np.ndarray | None] = [None] * len(points)
    for idx in length_batches([len(p) for p in points], cfg.batch_frames):
        d0 = None if depth0 is None else [depth0[k] for k in idx]
        res = lift_batch([points[k] for k in idx], [confidences[k] for k in idx], cfg, device, d0)
        for k, r in zip(idx, res, strict=True):
            out[k] = r
    return out  # type: ignore[return-value]


def knn_initial_depth(
    points: list[np.ndarray],
    confidences: list[np.ndarray],
    bank: DepthBank,
    cfg: LiftConfig,
    exclude: list[int] | None = None,
) -> list[np.ndarray]:
    """The ``knn`` method's initial depth per sequence ([T_i, 50]): the mean depth of the
    ``cfg.knn_k`` bank frames nearest to each filled 2D frame; ``exclude`` names, per sequence,
    the bank sequence it may not use (itself, when the bank is its own split; -1: none)."""
    filled = [
        fill_missing(p, c >= max(cfg.min_confidence, 1e-12)) for p, c in zip(points, confidences, strict=True)
    ]
    if not filled:
        return []
    query = np.concatenate(filled)
    ex = None if exclude is None else np.repeat(np.asarray(exclude), [len(p) for p in points])
    depth = knn_depth(bank, query, cfg.knn_k, ex)
    return np.split(depth, np.cumsum([len(p) for p in points])[:-1])


def bank_from_split(store: SplitStore, tf: UnitRange, cfg: LiftConfig, where: str = "") -> DepthBank | None:
    """The depth bank of a 2D split with 3D (``gt3d``, the synthetic corpus); None without."""
    if "gt3d" not in store.arrays or not len(store):
        return None
    kind, u, conf = _read_split(store, tf, where or "train")
    if kind != "2d":
        return None
    off = store.offsets
    filled = [
        fill_missing(
            u[off[i] : off[i + 1], : K.N_MANUAL],
            conf[off[i] : off[i + 1], : K.N_MANUAL] >= cfg.min_confidence,
        )
        for i in range(len(store))
    ]
    gt3d = [store.sequence(i, "gt3d") for i in range(len(store))]
    return build_bank(filled, gt3d, cfg.knn_stride, cfg.knn_dims)


def _read_split(store: SplitStore, tf: UnitRange, where: str) -> tuple[str, np.ndarray, np.ndarray | None]:
    """Return (kind, body-centred coordinates [F, J, 2|3], confidences [F, J] or None)."""
    if store.joints not in (MANUAL_JOINTS, MANUAL_FACE_JOINTS):
        raise StoreError(f"{where}: joints are not the 50 manual (+70 face) joints")
    poses = np.asarray(store.poses, dtype=np.float64)
    if store.channels == ["x", "y", "c"]:
        kind, xyz, conf = "2d", poses[..., :2], poses[..., 2]
    elif store.channels == ["x", "y", "z"]:
        kind, xyz, conf = "3d", poses, None
    else:
        raise StoreError(f"{where}: channels {store.channels} are neither [x, y, c] nor [x, y, z]")
    if len(tf.low) != xyz.shape[-1]:
        raise StoreError(
            f"{where}: the normalise transform has {len(tf.low)} channels, the split {xyz.shape[-1]}"
        )
    return kind, tf.inverse(xyz), conf


def lift_split(
    store: SplitStore,
    tf: UnitRange,
    split: str,
    cfg: LiftConfig,
    device: torch.device,
    where: str = "",
    bank: DepthBank | None = None,
    bank_is_split: bool = False,
) -> tuple[np.ndarray, dict[str, float]]:
    """Lift one split (read from ``where``, for messages) to body-centred 3D [F, J, 3]; returns the
    array and its metrics. ``lift.method: knn`` needs the ``bank`` (:func:`bank_from_split`);
    ``bank_is_split``: the bank was built from this split, so no sequence may use its own frames."""
    kind, u, conf = _read_split(store, tf, where or split)
    names = [str(e.get("name", i)) for i, e in enumerate(store.index)]
    t0 = time.perf_counter()
    if kind == "3d":
        bad = np.argwhere(~np.isfinite(u))
        if len(bad):
            seq = int(np.searchsorted(store.offsets, bad[0][0], side="right") - 1)
            raise LiftError(f"{split}: sequence {names[seq]!r}: non-finite 3D value")
        out = u.astype(np.float32)
    else:
        off = store.offsets
        pts = [u[off[i] : off[i + 1], : K.N_MANUAL] for i in range(len(store))]
        cs = [conf[off[i] : off[i + 1], : K.N_MANUAL] for i in range(len(store))]
        depth0 = None
        if cfg.method == "knn":
            if bank is None:
                raise LiftError(f"{split}: lift.method knn needs a depth bank (a train split with 3D)")
            exclude = list(range(len(store))) if bank_is_split else None
            try:
                depth0 = knn_initial_depth(pts, cs, bank, cfg, exclude)
            except ValueError as exc:  # too small a bank for lift.knn_k
                raise LiftError(f"{where or split}: lift.method knn: {exc} (lift.knn_k)") from exc
        lifted = lift_sequences(pts, cs, [f"{split}/{n}" for n in names], cfg, device, depth0)
        out = np.zeros((len(u), len(store.joints), 3), np.float32)
        out[:, : K.N_MANUAL] = np.concatenate(lifted) if lifted else out[:, : K.N_MANUAL]
        if len(store.joints) > K.N_MANUAL:  # face points: observed 2D, depth of the nose
            out[:, K.N_MANUAL :, :2] = u[:, K.N_MANUAL :]
            out[:, K.N_MANUAL :, 2] = out[:, K.NOSE, 2:3]
    seconds = time.perf_counter() - t0
    m: dict[str, float] = {"sequences": len(store), "frames": len(u), "seconds": round(seconds, 3)}
    m["frames_per_s"] = round(len(u) / max(seconds, 1e-9), 1)
    seqs = [out[store.offsets[i] : store.offsets[i + 1], : K.N_MANUAL] for i in range(len(store))]
    if len(store):
        m["bone_length_cv"] = float(np.mean([bone_length_cv(s) for s in seqs if len(s) > 1] or [0.0]))
    if kind == "2d" and len(store):
        n = K.N_MANUAL
        m["reprojection_error"] = reprojection_error(out[:, :n], u[:, :n], conf[:, :n], cfg.min_confidence)
    if "gt3d" in store.arrays and len(store):
        errs = [mpjpe_pa(s, store.sequence(i, "gt3d")) for i, s in enumerate(seqs)]
        errs = [e for e in errs if e]
        for part in ("body", "hands", "left_hand", "right_hand"):
            m[f"mpjpe_pa_{part}"] = float(np.mean([e[part] for e in errs])) if errs else float("nan")
    return out, m
