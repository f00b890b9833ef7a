"""Stage ``lift``: 2D -> 3D skeletal-model lifting of the 50 manual joints (Zelinka & Kanis 2020 style).

Reads ``data/normalised/<split>/`` (channels x, y, c in [0, 1]) and its ``transform.json``; writes
``data/lifted/<split>/`` (channels x, y, z in [0, 1]), ``data/lifted/transform.json`` (a
:class:`~pipeline.transform.UnitRange` fitted on the train split) and ``metrics/lift.json``.

Model, per sequence, in body-centred units (neck origin, shoulder width 1, x right, y down, z away
from the camera): unknown 3D joints ``X[t, j]`` (the root, the neck, has z = 0) and one length per
left/right-symmetric bone class shared by all frames. Projection is orthographic in body-centred
units; because normalise already divides every sequence by its shoulder width, this is the weak
perspective camera with its scale absorbed into the bone lengths. Objective::

    w_reproj  * sum_tj c_tj |X_tj[xy] - p_tj|^2 / sum c                (confidence-weighted 2D fit)
  + w_length  * mean_tb ((|X_t,child - X_t,parent| - L_b) / s_b)^2     (bone-length consistency)
  + w_smooth  * mean_tj |X_t+1,j - 2 X_tj + X_t-1,j|^2                 (temporal smoothness)
  + w_length_prior * mean_b ((L_b - Lbar_b) / Lbar_b)^2                (average body proportions)

Initialisation: missing joints (c < min_confidence) are interpolated in time from confident
frames; bone lengths start at a high quantile of their confident 2D lengths after a light temporal
smoothing (a bone is never longer in 2D than in 3D under orthography; jitter inflates the quantile),
for the shoulders a low quantile (signers face the camera: the shoulders get depth only where
their 2D looks shortened), floored by a fraction of the average proportions; each bone's depth
step is ``+-sqrt(L^2 - |d_2D|^2)``. Signs are chosen by Viterbi passes over time (a flip costs the squared
jump of the depth step, so signs only flip where a bone crosses the image plane): per bone for the
nose (in front of the neck), shoulders (body yaw from the nose) and hand bones (follow the forearm /
their parent bone); jointly for upper arm + forearm (4 states per arm) with costs on the wrist:
not inside the torso when seen over it, in front of the body (signing space), and minimum
gravitational torque at the shoulder. Then Adam refines all unknowns, batched over many sequences
(padding + masks), on the GPU when ``lift.device`` allows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from pipeline import kinematics as K
from pipeline.config import ParamsError, check_choice, check_positive, load_params, section
from pipeline.skeleton import MANUAL_FACE_JOINTS, MANUAL_JOINTS
from pipeline.store import SPLITS, SplitStore, StoreError
from pipeline.transform import UnitRange

log = logging.getLogger(__name__)

SRC = Path("data/normalised")
DST = Path("data/lifted")
METRICS = Path("metrics/lift.json")


class LiftError(ValueError):
    """A sequence that cannot be lifted (NaN, no confident joints, no spatial extent)."""


@dataclass
class LiftConfig:
    """The ``lift`` section of params.yaml."""

    device: str = "auto"  # auto | cpu | cuda
    iterations: int = 20  # Adam steps
    lr: float = 0.02  # Adam step size (body-centred units)
    batch_frames: int = 16384  # padded frames per optimisation batch
    min_confidence: float = 0.1  # joints below this confidence do not enter the 2D fit
    w_reproj: float = 1.0
    w_length: float = 1.0
    w_smooth: float = 0.5
    w_length_prior: float = 0.01
    w_sign_prior: float = 1.0  # Viterbi: unary weight of the depth-direction prior
    init_quantile: float = 0.9  # initial bone length = this quantile of its 2D lengths
    shoulder_quantile: float | None = 0.05  # ... for the shoulder bones (None = init_quantile)
    length_floor: float = 0.8  # ... but at least this fraction of the average proportion
    length_smooth: float = 1.0  # Gaussian sigma (frames) on the 2D before taking length quantiles
    margin: float = 0.05  # relative margin of the [0, 1] map fitted on train
    rigid_output: bool = True  # rebuild the output from the shared lengths (exactly rigid bones)
    joint_arm: bool = True  # choose upper-arm and forearm depth signs jointly (4-state Viterbi)
    w_torso: float = 2.0  # Viterbi: cost of a wrist seen over the torso lying behind the chest
    w_space: float = 1.0  # ... the same cost, weaker, for wrists not over the torso (signing space)
    w_torque: float = 1.0  # ... cost of the arm's gravitational torque at the shoulder (minimum effort)
    torso_depth: float = 0.25  # chest surface in front of the shoulder plane (shoulder widths)
    torso_half_width: float = 0.4  # half the chest/waist breadth (shoulder widths): torso's 2D extent in x
    torso_length: float = 1.3  # neck to hips (shoulder widths): the torso's 2D extent below the neck

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> LiftConfig:
        """Validate the ``lift`` params section."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(p) - known)
        if unknown:
            raise ParamsError(f"params.yaml: unknown key(s) lift.{unknown} (known: {sorted(known)})")
        cfg = cls(**p)
        check_choice(cfg.device, ("auto", "cpu", "cuda"), "lift.device")
        for key in ("iterations", "lr", "batch_frames", "init_quantile"):
            check_positive(getattr(cfg, key), f"lift.{key}")
        for key in ("min_confidence", "w_reproj", "w_length", "w_smooth", "w_length_prior"):
            check_positive(getattr(cfg, key), f"lift.{key}", allow_zero=True)
        for key in ("w_sign_prior", "length_floor", "length_smooth", "margin"):
            check_positive(getattr(cfg, key), f"lift.{key}", allow_zero=True)
        for key in ("w_torso", "w_space", "w_torque", "torso_depth", "torso_half_width", "torso_length"):
            check_positive(getattr(cfg, key), f"lift.{key}", allow_zero=True)
        if cfg.init_quantile > 1:
            raise ParamsError(f"params.yaml: lift.init_quantile={cfg.init_quantile} must be <= 1")
        if cfg.shoulder_quantile is not None and not 0 < cfg.shoulder_quantile <= 1:
            raise ParamsError(
                f"params.yaml: lift.shoulder_quantile={cfg.shoulder_quantile} must be null or in (0, 1]"
            )
        return cfg


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ParamsError("params.yaml: lift.device=cuda but CUDA is not available")
    return torch.device(name)


def denormalise(v: np.ndarray, transform: UnitRange | str | Path) -> np.ndarray:
    """Map lifted [0, 1] values ``[..., 3]`` back to body-centred 3D units (exact inverse)."""
    if not isinstance(transform, UnitRange):
        transform = UnitRange.load(transform)
    return transform.inverse(np.asarray(v))


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
    a joint never confident is placed at its parent plus the average-proportion offset."""
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


def _rest_pose_2d() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = K.synthetic_signer(8, rng)
    return x.mean(axis=0)[:, :2]


_REST_2D = _rest_pose_2d()


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
            if k == _SHOULDER_CLASS and cfg.shoulder_quantile is not None:
                quantile = cfg.shoulder_quantile
            q[k] = np.quantile(vals, quantile)
    # the person's overall scale relative to the average proportions (median over bones)
    ratio = q / prior
    usable = np.isfinite(ratio) & (prior > 0.05)
    scale = float(np.median(ratio[usable])) if usable.any() else 1.0
    floor = cfg.length_floor * scale * prior
    out = np.where(np.isfinite(q), np.maximum(np.nan_to_num(q), floor), scale * prior)
    return out


# -- depth-sign resolution ------------------------------------------------------------------
def _viterbi_signs(
    m: torch.Tensor, prior: torch.Tensor, w_prior: float, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-frame sign (+-1) of depth steps ``m`` [B, T, n] (relative, >= 0) minimising
    ``sum_t w_prior * m_t * relu(-s_t * prior_t) + (s_t m_t - s_t-1 m_t-1)^2``."""
    signs = torch.tensor([1.0, -1.0], dtype=m.dtype, device=m.device)  # state 0: +, 1: -
    unary = w_prior * m[..., None] * torch.relu(-signs * prior[..., None])  # [B, T, n, 2]
    step = signs * m[..., None]
    trans = (step[:, 1:, :, None, :] - step[:, :-1, :, :, None]) ** 2  # [B, T-1, n, 2, 2]
    return signs[_viterbi(unary, trans, valid)]


_NOSE_BONE = int(np.flatnonzero(K.BONE_CHILD == K.NOSE)[0])
# (bone, sign): a body turned so the nose moves right (+x) brings its left shoulder back (+z).
_SHOULDER_BONES = [
    (int(np.flatnonzero(MANUAL_JOINTS.index(f"body_{s}_shoulder") == K.BONE_CHILD)[0]), sx)
    for s, sx in (("r", -1.0), ("l", 1.0))
]
_SHOULDER_CLASS = int(K.BONE_CLASS[_SHOULDER_BONES[0][0]])  # both shoulders: one symmetric class


def _viterbi(unary: torch.Tensor, trans: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Minimum-cost state path: ``unary`` [B, T, n, S] costs, ``trans`` [B, T-1, n, S, S] costs
    from state i at t-1 to state j at t; returns the states [B, T, n] (long). Frames where
    ``valid`` [B, T] is 0 (padding) cost nothing, so they cannot change the path of real frames."""
    if valid is not None:
        unary = unary * valid[:, :, None, None]
        trans = trans * valid[:, 1:, None, None, None]
    B, T, n, S = unary.shape
    cost = unary[:, 0]
    back = torch.zeros((B, T, n, S), dtype=torch.long, device=unary.device)
    for t in range(1, T):
        total = cost[..., :, None] + trans[:, t - 1]  # [B, n, S_prev, S]
        cost, back[:, t] = total.min(dim=-2)
        cost = cost + unary[:, t]
    state = torch.zeros((B, T, n), dtype=torch.long, device=unary.device)
    state[:, T - 1] = cost.argmin(dim=-1)
    for t in range(T - 1, 0, -1):
        state[:, t - 1] = back[:, t].gather(-1, state[:, t, :, None])[..., 0]
    return state


# (upper arm, forearm) bones of the right and the left arm [2, 2], and the shoulder joints
_ARMS = np.array(
    [
        [
            int(np.flatnonzero(MANUAL_JOINTS.index(f"body_{s}_{j}") == K.BONE_CHILD)[0])
            for j in ("elbow", "wrist")
        ]
        for s in ("r", "l")
    ]
)
_SHOULDERS = [MANUAL_JOINTS.index("body_r_shoulder"), MANUAL_JOINTS.index("body_l_shoulder")]
_ARM_STATES = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # (upper, fore)


def torso_weight(xy: torch.Tensor, cfg: LiftConfig) -> torch.Tensor:
    """How much a 2D point ``xy`` [B, T, n, 2] lies over the torso (1 inside, 0 outside, a soft
    edge 0.1 wide): |x| below ``cfg.torso_half_width``, y from the neck down ``cfg.torso_length``
    (body-centred units)."""
    x, y = xy[..., 0].abs(), xy[..., 1]
    inside_x = torch.clamp((cfg.torso_half_width - x) / 0.1 + 0.5, 0.0, 1.0)  # 0.1 wide soft edge
    return inside_x * ((y > 0.0) & (y < cfg.torso_length)).to(xy.dtype)


def arm_signs(
    xy: torch.Tensor,
    z: torch.Tensor,
    mag: torch.Tensor,
    L: torch.Tensor,
    cfg: LiftConfig,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Depth signs [B, T, 2 arms, 2 (upper arm, forearm)] of both arm bones chosen jointly by a
    4-state Viterbi per arm. Unary per state, with the wrist depth ``z_w`` it implies: the sign
    prior (none by default), ``(w_torso * o + w_space * (1 - o)) * relu(z_w - z_front) / reach``
    (a wrist seen over the torso, ``o`` = :func:`torso_weight`, cannot lie behind the chest surface
    ``z_front``; elsewhere signing happens in front of the body) and ``w_torque * |c| / reach``
    (the arm's centre of mass ``c`` horizontally close to the shoulder: minimum effort);
    transition = squared jump of both depth steps relative to the bone lengths."""
    states = _ARM_STATES.to(xy.dtype).to(xy.device)  # [S, 2]
    bones = torch.as_tensor(_ARMS, device=xy.device)  # [2 arms, (upper arm, forearm)]
    m = mag[..., bones]  # [B, T, 2, 2]
    scale = L[:, None, bones] + 0.05  # [B, 1, 2, 2]
    reach = L[:, None, bones].sum(-1)[..., None]  # [B, 1, 2, 1] arm length
    prior = torch.as_tensor(K.BONE_SIGN_PRIOR, dtype=xy.dtype, device=xy.device)[bones]  # [2, 2]
    step = states[None, None, None] * m[..., None, :]  # [B, T, 2, S, 2] depth steps
    unary = (
        cfg.w_sign_prior * (m / scale)[..., None, :] * torch.relu(-states[None, None, None] * prior[:, None])
    ).sum(-1)
    if cfg.w_torso > 0 or cfg.w_space > 0:
        zs = z[..., _SHOULDERS]  # [B, T, 2] shoulder depths
        zw = zs[..., None] + step.sum(-1)  # [B, T, 2, S] wrist depth per state
        over = torso_weight(xy[:, :, K.BONE_CHILD[_ARMS[:, 1]]], cfg)  # [B, T, 2]
        front = zs.mean(-1, keepdim=True) - cfg.torso_depth  # [B, T, 1] chest surface
        weight = cfg.w_torso * over + cfg.w_space * (1.0 - over)
        unary = unary + weight[..., None] * torch.relu(zw - front[..., None]) / reach
    if cfg.w_torque > 0:  # centre of mass: upper arm 55 %, forearm + hand 45 % of the arm's mass,
        # each at its segment's middle; x is observed, so only the depth differs between states
        dx = xy[:, :, K.BONE_CHILD[_ARMS], 0] - xy[:, :, K.BONE_PARENT[_ARMS], 0]  # [B, T, 2, 2]
        com_x = (0.55 * 0.5 * dx[..., 0] + 0.45 * (dx[..., 0] + 0.5 * dx[..., 1]))[..., None]
        com_z = 0.55 * 0.5 * step[..., 0] + 0.45 * (step[..., 0] + 0.5 * step[..., 1])  # [B, T, 2, S]
        unary = unary + cfg.w_torque * torch.sqrt(com_x**2 + com_z**2 + 1e-9) / reach
    r = step / scale[..., None, :]  # [B, T, 2, S, 2]
    trans = ((r[:, 1:, :, None, :, :] - r[:, :-1, :, :, None, :]) ** 2).sum(-1)  # [B, T-1, 2, S, S]
    return states[_viterbi(unary, trans, valid)]  # [B, T, 2, 2]


def initial_depth(
    xy: torch.Tensor, lengths: torch.Tensor, cfg: LiftConfig, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Depth z [B, T, 50] (root 0) from 2D ``xy`` [B, T, 50, 2] and class lengths [B, C];
    ``valid`` [B, T] marks real (1) and padded (0) frames."""
    B, T = xy.shape[:2]
    child, parent = torch.as_tensor(K.BONE_CHILD), torch.as_tensor(K.BONE_PARENT)
    L = lengths[:, K.BONE_CLASS]  # [B, nb]
    d2 = ((xy[:, :, child] - xy[:, :, parent]) ** 2).sum(-1)  # [B, T, nb]
    mag = torch.sqrt(torch.clamp(L[:, None] ** 2 - d2, min=0.0))
    rel = mag / (L[:, None] + 0.05)
    fixed = torch.as_tensor(K.BONE_SIGN_PRIOR, dtype=xy.dtype, device=xy.device)
    dz = torch.zeros_like(mag)
    z = torch.zeros((B, T, K.N_MANUAL), dtype=xy.dtype, device=xy.device)
    arm = None
    for level in K.BONE_LEVELS:
        prior = fixed[level].expand(B, T, len(level)).clone()
        if level is K.BONE_LEVELS[0]:  # shoulders: the nose's x offset tells the body's yaw
            turn = (xy[..., K.NOSE, 0] - xy[..., K.ROOT, 0]) / (L[:, None, _NOSE_BONE] + 1e-6)
            for b, sx in _SHOULDER_BONES:
                prior[..., int(np.flatnonzero(level == b)[0])] = torch.clamp(3.0 * sx * turn, -1.0, 1.0)
        follow = fixed[level] > 1.5
        if follow.any():
            fb = torch.as_tensor(K.BONE_FOLLOW[level[follow.cpu().numpy()]])
            prior[..., follow] = dz[..., fb] / (L[:, None, fb] + 1e-6)
        if cfg.joint_arm and level is K.BONE_LEVELS[1]:
            arm = arm_signs(xy, z, mag, L, cfg, valid)
        if arm is not None and level is K.BONE_LEVELS[1]:
            s = arm[..., 0]
        elif arm is not None and level is K.BONE_LEVELS[2]:
            s = arm[..., 1]
        else:
            s = _viterbi_signs(rel[..., level], prior, cfg.w_sign_prior, valid)
        dz[..., level] = s * mag[..., level]
        z[..., K.BONE_CHILD[level]] = z[..., K.BONE_PARENT[level]] + dz[..., level]
    return z


# -- batched optimisation -------------------------------------------------------------------
def _pad(seqs: list[np.ndarray], T: int, dtype: torch.dtype) -> torch.Tensor:
    out = np.zeros((len(seqs), T, *seqs[0].shape[1:]))
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return torch.as_tensor(out, dtype=dtype)


def lift_batch(
    points: list[np.ndarray], confidences: list[np.ndarray], cfg: LiftConfig, device: torch.device
) -> list[np.ndarray]:
    """Lift a batch of 2D sequences (``[T_i, 50, 2]`` body-centred, confidences ``[T_i, 50]``)
    to 3D ``[T_i, 50, 3]`` body-centred; sequences must have passed :func:`check_sequence`."""
    dtype = torch.float32
    T = max(len(p) for p in points)
    confs = [c >= max(cfg.min_confidence, 1e-12) for c in confidences]
    filled = [fill_missing(p, ok) for p, ok in zip(points, confs, strict=True)]
    lengths0 = np.stack([init_lengths(f, ok, cfg) for f, ok in zip(filled, confs, strict=True)])
    obs = _pad(filled, T, dtype).to(device)  # [B, T, J, 2]
    w = _pad([np.where(ok, c, 0.0) for ok, c in zip(confs, confidences, strict=True)], T, dtype).to(device)
    valid = _pad([np.ones(len(p)) for p in points], T, dtype).to(device)  # [B, T]
    L0 = torch.as_tensor(lengths0, dtype=dtype, device=device)
    z0 = initial_depth(obs, L0, cfg, valid)

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
) -> list[np.ndarray]:
    """Lift every 2D manual-joint sequence (body-centred units) to 3D, batching sequences of
    similar length together (at most ``cfg.batch_frames`` padded frames per batch)."""
    device = device or resolve_device(cfg.device)
    for p, c, n in zip(points, confidences, names, strict=True):
        if p.shape[1:] != (K.N_MANUAL, 2) or c.shape != p.shape[:2]:
            raise LiftError(f"sequence {n!r}: expected [T, {K.N_MANUAL}, 2] points, got {p.shape}")
        check_sequence(p, c, n, cfg.min_confidence)
    order = sorted(range(len(points)), key=lambda i: len(points[i]))
    out: list[np.ndarray | None] = [None] * len(points)
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j - i + 1) * len(points[order[j]]) <= cfg.batch_frames:
            j += 1
        idx = order[i:j]
        res = lift_batch([points[k] for k in idx], [confidences[k] for k in idx], cfg, device)
        for k, r in zip(idx, res, strict=True):
            out[k] = r
        i = j
    return out  # type: ignore[return-value]


# -- metrics --------------------------------------------------------------------------------
def reprojection_error(x3d: np.ndarray, p: np.ndarray, c: np.ndarray, min_confidence: float) -> float:
    """Confidence-weighted mean 2D distance (body-centred units) between lifted and observed joints."""
    w = np.where(c >= max(min_confidence, 1e-12), c, 0.0)
    d = np.linalg.norm(x3d[..., :2] - p, axis=-1)
    return float((w * d).sum() / max(w.sum(), 1e-12))


def mpjpe_pa(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """MPJPE after per-sequence similarity Procrustes, body (joints 0-7) and hands (8-49), as a
    fraction of the ground truth's mean shoulder width. ``pred``/``gt``: one sequence [T, 50+, 3]."""
    pred, gt = pred[:, : K.N_MANUAL].astype(np.float64), gt[:, : K.N_MANUAL].astype(np.float64)
    ok = np.isfinite(gt).all(axis=-1)
    if not ok.any():
        return {}
    aligned = K.procrustes_align(pred[ok], gt[ok])
    err = np.full(ok.shape, np.nan)
    err[ok] = np.linalg.norm(aligned - gt[ok], axis=-1)
    sw = K.shoulder_width(gt)
    return {
        "body": float(np.nanmean(err[:, :8]) / sw),
        "hands": float(np.nanmean(err[:, 8:]) / sw),
    }


# -- stage ----------------------------------------------------------------------------------
def _read_split(store: SplitStore, tf: UnitRange, split: str) -> tuple[str, np.ndarray, np.ndarray | None]:
    """Return (kind, body-centred coordinates [F, J, 2|3], confidences [F, J] or None)."""
    if store.joints not in (MANUAL_JOINTS, MANUAL_FACE_JOINTS):
        raise StoreError(f"{SRC / split}: joints are not the 50 manual (+70 face) joints")
    poses = np.asarray(store.poses, dtype=np.float64)
    if store.channels == ["x", "y", "c"]:
        kind, xyz, conf = "2d", poses[..., :2], poses[..., 2]
    elif store.channels == ["x", "y", "z"]:
        kind, xyz, conf = "3d", poses, None
    else:
        raise StoreError(f"{SRC / split}: channels {store.channels} are neither [x, y, c] nor [x, y, z]")
    if len(tf.low) != xyz.shape[-1]:
        raise StoreError(
            f"{SRC / 'transform.json'} has {len(tf.low)} channels but {split} has {xyz.shape[-1]} coordinates"
        )
    return kind, tf.inverse(xyz), conf


def lift_split(
    store: SplitStore, tf: UnitRange, split: str, cfg: LiftConfig, device: torch.device
) -> tuple[np.ndarray, dict[str, float]]:
    """Lift one split to body-centred 3D [F, J, 3]; returns the array and its metrics."""
    kind, u, conf = _read_split(store, tf, split)
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
        lifted = lift_sequences(pts, cs, [f"{split}/{n}" for n in names], cfg, device)
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
        m["bone_length_cv"] = float(np.mean([K.bone_length_cv(s) for s in seqs if len(s) > 1] or [0.0]))
    if kind == "2d" and len(store):
        w = np.where(conf[:, : K.N_MANUAL] >= max(cfg.min_confidence, 1e-12), conf[:, : K.N_MANUAL], 0)
        d = np.linalg.norm(out[:, : K.N_MANUAL, :2] - u[:, : K.N_MANUAL], axis=-1)
        m["reprojection_error"] = float((w * d).sum() / max(w.sum(), 1e-12))
    if "gt3d" in store.arrays and len(store):
        errs = [mpjpe_pa(s, store.sequence(i, "gt3d")) for i, s in enumerate(seqs)]
        errs = [e for e in errs if e]
        for part in ("body", "hands"):
            m[f"mpjpe_pa_{part}"] = float(np.mean([e[part] for e in errs])) if errs else float("nan")
    return out, m


def main() -> None:
    """Lift every split of data/normalised into data/lifted and write metrics/lift.json."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_params()
    cfg = LiftConfig.from_params(section(params, "lift"))
    torch.manual_seed(int(params.get("seed", 0)))
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    tf = UnitRange.load(SRC / "transform.json")
    missing = [s for s in SPLITS if not (SRC / s).is_dir()]
    if missing:
        raise StoreError(
            f"{SRC}: no {'/'.join(missing)} split — the corpus must have train, dev and test "
            f"(*.<split>.corpus.csv for OpenPose sources); lift and the later stages need all three"
        )
    stores = {s: SplitStore.load(SRC / s) for s in SPLITS}
    lifted, metrics = {}, {"device": device.type}
    for split, store in stores.items():
        lifted[split], metrics[split] = lift_split(store, tf, split, cfg, device)
        log.info("lift %s: %s", split, metrics[split])
    out_tf = UnitRange.fit(lifted["train"], margin=cfg.margin)
    DST.mkdir(parents=True, exist_ok=True)
    out_tf.save(DST / "transform.json")
    for split, store in stores.items():
        v = out_tf.forward(lifted[split])
        outside = int(((v < 0) | (v > 1)).sum())
        metrics[split]["clipped_values"] = outside
        metrics[split]["clipped_fraction"] = outside / max(v.size, 1)
        if outside:
            log.warning("lift %s: %d values outside [0, 1] clipped", split, outside)
        extra = {**store.extra, "lift": {"source_channels": store.channels, "units": "body-centred"}}
        SplitStore(
            np.clip(v, 0.0, 1.0).astype(np.float32),
            store.offsets,
            store.index,
            store.joints,
            ["x", "y", "z"],
            store.fps,
            {k: np.asarray(a) for k, a in store.arrays.items()},
            extra,
        ).save(DST / split)
    total = sum(metrics[s]["frames"] for s in SPLITS)
    secs = sum(metrics[s]["seconds"] for s in SPLITS)
    metrics["frames_per_s"] = round(total / max(secs, 1e-9), 1)
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    METRICS.write_text(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
