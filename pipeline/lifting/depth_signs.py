"""Depth signs of the lifting: per-frame choice of each bone's direction towards or away from the
camera, by Viterbi passes over time (docs/ARCHITECTURE.md#lift).

Under orthography a bone of length ``L`` seen with 2D length ``d`` has a depth step
``+-sqrt(L^2 - d^2)``; the sign is unobservable from one view. :func:`initial_depth` decides it
level by level down the kinematic tree: per bone for the nose (in front of the neck), the
shoulders (body yaw from the nose) and the hand bones (follow the forearm / their parent bone),
jointly for upper arm + forearm (:func:`arm_signs`, 4 states per arm). A sign flip costs the
squared jump of the depth step, so signs only flip where a bone crosses the image plane.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.lifting import bones as K
from pipeline.lifting.config import LiftConfig


def viterbi_signs(
    m: torch.Tensor, prior: torch.Tensor, w_prior: float, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-frame sign (+-1) of depth steps ``m`` [B, T, n] (relative, >= 0) minimising
    ``sum_t w_prior * m_t * relu(-s_t * prior_t) + (s_t m_t - s_t-1 m_t-1)^2``."""
    signs = torch.tensor([1.0, -1.0], dtype=m.dtype, device=m.device)  # state 0: +, 1: -
    unary = w_prior * m[..., None] * torch.relu(-signs * prior[..., None])  # [B, T, n, 2]
    step = signs * m[..., None]
    trans = (step[:, 1:, :, None, :] - step[:, :-1, :, :, None]) ** 2  # [B, T-1, n, 2, 2]
    return signs[viterbi(unary, trans, valid)]


def viterbi(unary: torch.Tensor, trans: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
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
    bones = torch.as_tensor(K.ARM_BONES, device=xy.device)  # [2 arms, (upper arm, forearm)]
    m = mag[..., bones]  # [B, T, 2, 2]
    scale = L[:, None, bones] + 0.05  # [B, 1, 2, 2]
    reach = L[:, None, bones].sum(-1)[..., None]  # [B, 1, 2, 1] arm length
    prior = torch.as_tensor(K.BONE_SIGN_PRIOR, dtype=xy.dtype, device=xy.device)[bones]  # [2, 2]
    step = states[None, None, None] * m[..., None, :]  # [B, T, 2, S, 2] depth steps
    unary = (
        cfg.w_sign_prior * (m / scale)[..., None, :] * torch.relu(-states[None, None, None] * prior[:, None])
    ).sum(-1)
    if cfg.w_torso > 0 or cfg.w_space > 0:
        zs = z[..., K.SHOULDERS]  # [B, T, 2] shoulder depths
        zw = zs[..., None] + step.sum(-1)  # [B, T, 2, S] wrist depth per state
        over = torso_weight(xy[:, :, K.BONE_CHILD[K.ARM_BONES[:, 1]]], cfg)  # [B, T, 2]
        front = zs.mean(-1, keepdim=True) - cfg.torso_depth  # [B, T, 1] chest surface
        weight = cfg.w_torso * over + cfg.w_space * (1.0 - over)
        unary = unary + weight[..., None] * torch.relu(zw - front[..., None]) / reach
    if cfg.w_torque > 0:  # centre of mass: upper arm 55 %, forearm + hand 45 % of the arm's mass,
        # each at its segment's middle; x is observed, so only the depth differs between states
        dx = xy[:, :, K.BONE_CHILD[K.ARM_BONES], 0] - xy[:, :, K.BONE_PARENT[K.ARM_BONES], 0]  # [B, T, 2, 2]
        com_x = (0.55 * 0.5 * dx[..., 0] + 0.45 * (dx[..., 0] + 0.5 * dx[..., 1]))[..., None]
        com_z = 0.55 * 0.5 * step[..., 0] + 0.45 * (step[..., 0] + 0.5 * step[..., 1])  # [B, T, 2, S]
        unary = unary + cfg.w_torque * torch.sqrt(com_x**2 + com_z**2 + 1e-9) / reach
    r = step / scale[..., None, :]  # [B, T, 2, S, 2]
    trans = ((r[:, 1:, :, None, :, :] - r[:, :-1, :, :, None, :]) ** 2).sum(-1)  # [B, T-1, 2, S, S]
    return states[viterbi(unary, trans, valid)]  # [B, T, 2, 2]


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
            turn = (xy[..., K.NOSE, 0] - xy[..., K.ROOT, 0]) / (L[:, None, K.NOSE_BONE] + 1e-6)
            for b, sx in K.SHOULDER_BONES:
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
            s = viterbi_signs(rel[..., level], prior, cfg.w_sign_prior, valid)
        dz[..., level] = s * mag[..., level]
        z[..., K.BONE_CHILD[level]] = z[..., K.BONE_PARENT[level]] + dz[..., level]
    return z
