"""The synthetic signer's body: proportions, arm chain, hand and face kinematics, pinhole camera.

Body frame (metres): origin at the neck, X to the signer's LEFT, Y up, Z forward (toward the camera)
-- the generator's own frame; the lifted poses use body-centred image axes instead
(:mod:`pipeline.lifting.bones`: x right in the image, y down, z away from the camera). The camera
looks at the signer, so camera coordinates are x = X (the signer's left is on the image's right), y
= -Y (down), z = D - Z (forward, depth). Everything is vectorised over frames: inputs ``[T, ...]``
arrays, outputs ``[T, 137, 3]`` in :data:`pipeline.data.skeleton.RAW_JOINTS` order. Bone lengths of
the body, arms and hands are fixed per signer, so they are constant over time by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from pipeline.data.skeleton import BODY25, RAW, RAW_BODY, RAW_FACE, RAW_JOINTS, RAW_LHAND, RAW_RHAND

N_RAW = len(RAW_JOINTS)
_B = {name: i for i, name in enumerate(BODY25)}  # BODY_25 index = raw index of the body joints


LEFT_HANDED_SHARE = 0.15  # default share of left-handed signers (params synthetic.signing.left_handed)


@dataclass(frozen=True)
class Signer:
    """Body proportions (metres), signing style and camera placement of one signer."""

    name: str
    shoulder_width: float  # 0.36..0.44
    upper_arm: float
    forearm: float
    hand_length: float  # wrist to middle fingertip, 0.18..0.20
    torso: float  # neck to mid-hip
    head: float  # head/face scale factor
    speed: float  # signing speed factor (>1 = faster)
    distance: float  # camera distance (m)
    offset_x: float  # lateral placement in the image (m)
    offset_y: float  # vertical placement (m)
    sway: float  # torso/head sway amplitude (rad)
    # signing style
    left_handed: bool = False  # the dominant hand is the left (signs mirrored)
    space: float = 1.0  # signing-space size: movement amplitude and reach of neutral-space loci
    sloppiness: float = 0.0  # handshapes blended this far toward the relaxed hand (0..0.3)
    smoothness: float = 1.0  # transition low-pass width factor (0.8..1.3)
    expressivity: float = 1.0  # amplitude of brows, mouthing, nods and shakes (0.7..1.3)
    blink_rate: float = 0.3  # spontaneous blinks per second

    def to_dict(self) -> dict[str, float | str]:
        """Plain dict for metadata."""
        return asdict(self)


def make_signers(n: int, rng: np.random.Generator, left_handed: float = LEFT_HANDED_SHARE) -> list[Signer]:
    """``n`` signers whose proportions, speeds and styles are spread over realistic ranges;
    ``round(left_handed * n)`` of them are left-handed."""

    def spread(lo: float, hi: float) -> np.ndarray:
        grid = (np.arange(n) + rng.uniform(0.2, 0.8, n)) / n  # stratified, then shuffled
        return lo + (hi - lo) * rng.permutation(grid)

    size = spread(0.92, 1.08)  # overall body size, correlated proportions
    sw, speed = spread(0.36, 0.44), spread(0.8, 1.25)
    hand = spread(0.18, 0.20)
    body = [
        dict(
            name=f"Signer{i + 1:02d}",
            shoulder_width=float(sw[i]),
            upper_arm=float(0.30 * size[i] * rng.uniform(0.97, 1.03)),
            forearm=float(0.255 * size[i] * rng.uniform(0.97, 1.03)),
            hand_length=float(hand[i]),
            torso=float(0.52 * size[i]),
            head=float(size[i] * rng.uniform(0.96, 1.04)),
            speed=float(speed[i]),
            distance=float(rng.uniform(2.4, 2.6)),
            offset_x=float(rng.uniform(-0.06, 0.06)),
            offset_y=float(rng.uniform(-0.03, 0.03)),
            sway=float(rng.uniform(0.01, 0.03)),
        )
        for i in range(n)
    ]
    # style: drawn after the proportions, so that those stay as they were for a seed
    space, slop, smooth = spread(0.85, 1.15), spread(0.0, 0.3), spread(0.8, 1.3)
    expr, blink = spread(0.7, 1.3), spread(0.15, 0.45)
    left = set(rng.permutation(n)[: round(left_handed * n)].tolist())
    return [
        Signer(
            **b,
            left_handed=i in left,
            space=float(space[i]),
            sloppiness=float(slop[i]),
            smoothness=float(smooth[i]),
            expressivity=float(expr[i]),
            blink_rate=float(blink[i]),
        )  # fmt: skip
        for i, b in enumerate(body)
    ]


# --- helpers -------------------------------------------------------------------------------
def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def euler_matrix(angles: np.ndarray) -> np.ndarray:
    """``[T, 3]`` (pitch about X, yaw about Y, roll about Z) -> rotation matrices ``[T, 3, 3]``."""
    p, y, r = angles[:, 0], angles[:, 1], angles[:, 2]
    cp, sp, cy, sy, cr, sr = np.cos(p), np.sin(p), np.cos(y), np.sin(y), np.cos(r), np.sin(r)
    one, zero = np.ones_like(p), np.zeros_like(p)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rz @ rx @ ry


def arm_chain(
    shoulder: np.ndarray, target: np.ndarray, l1: float, l2: float, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone arm: elbow and wrist for a wrist ``target`` (clamped to the reachable shell).

    The elbow lies in the plane of shoulder, wrist and ``pole`` (the preferred elbow
    direction), so |elbow - shoulder| = l1 and |wrist - elbow| = l2 exactly.
    """
    d = target - shoulder
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    dhat = d / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(l1 - l2) + 1e-3, l1 + l2 - 1e-3)
    wrist = shoulder + dhat * dist
    a = (dist**2 + l1**2 - l2**2) / (2 * dist)
    h = np.sqrt(np.maximum(l1**2 - a**2, 0.0))
    perp = normalize(pole - np.sum(pole * dhat, -1, keepdims=True) * dhat)
    elbow = shoulder + a * dhat + h * perp
    return elbow, wrist


# --- hand ----------------------------------------------------------------------------------
# Per finger (index, middle, ring, pinky): wrist->MCP length, lateral MCP offset (toward the
# thumb), phalanx lengths, base splay; all relative to the hand length.
_PALM = np.array([0.46, 0.45, 0.43, 0.41])
_LATERAL = np.array([0.19, 0.06, -0.06, -0.17])
_PHAL = np.array([[0.22, 0.14, 0.11], [0.24, 0.17, 0.13], [0.22, 0.16, 0.12], [0.17, 0.11, 0.10]])
_SPLAY = np.array([0.10, 0.0, -0.10, -0.20])
_THUMB = np.array([0.25, 0.17, 0.14])  # metacarpal, proximal, distal


def hand_points(
    wrist: np.ndarray,
    u: np.ndarray,
    n: np.ndarray,
    angles: np.ndarray,
    spread: np.ndarray,
    opposition: np.ndarray,
    length: float,
    side: str,
) -> np.ndarray:
    """21 OpenPose hand joints ``[T, 21, 3]`` by forward kinematics.

    ``u`` = finger direction, ``n`` = palm normal (the way the palm faces), both unit ``[T, 3]``
    and orthogonal; ``angles`` ``[T, 5, 3]`` flexion (rad) of thumb, index, middle, ring,
    pinky joints; ``spread`` and ``opposition`` ``[T]`` in [0, 1]. ``side`` is ``"right"``
    or ``"left"`` (the thumb points to the other side of the palm).
    """
    T = len(wrist)
    t = np.cross(u, n) if side == "right" else np.cross(n, u)  # toward the thumb
    out = np.empty((T, 21, 3))
    out[:, 0] = wrist
    # fingers: [T, 4] splay angle, direction in the (u, t) plane, flexion toward n
    splay = _SPLAY[None] * (0.4 + 1.6 * spread[:, None])
    d = np.cos(splay)[..., None] * u[:, None] + np.sin(splay)[..., None] * t[:, None]  # [T,4,3]
    mcp = wrist[:, None] + length * (_PALM[None, :, None] * u[:, None] + _LATERAL[None, :, None] * t[:, None])
    phi = np.cumsum(angles[:, 1:], axis=2)  # [T,4,3]
    steps = (
        length
        * _PHAL[None, :, :, None]
        * (np.cos(phi)[..., None] * d[:, :, None] + np.sin(phi)[..., None] * n[:, None, None])
    )  # [T,4,3 joints,3]
    chain = mcp[:, :, None] + np.cumsum(steps, axis=2)
    fingers = np.concatenate([mcp[:, :, None], chain], axis=2)  # [T,4,4,3]
    out[:, 5:] = fingers.reshape(T, 16, 3)
    # thumb: CMC near the wrist on the thumb side; opposition turns it toward the palm
    cmc = wrist + length * (0.10 * u + 0.14 * t)
    base = normalize(np.cos(0.7) * u + np.sin(0.7) * t)
    o = 0.9 * opposition[:, None]
    dt = normalize(np.cos(o) * base + np.sin(o) * n)
    bend = normalize(n - 0.6 * t)
    bend = normalize(bend - np.sum(bend * dt, -1, keepdims=True) * dt)
    tphi = np.cumsum(angles[:, 0], axis=1)  # [T,3]
    tsteps = (
        length
        * _THUMB[None, :, None]
        * (np.cos(tphi)[..., None] * dt[:, None] + np.sin(tphi)[..., None] * bend[:, None])
    )
    out[:, 1] = cmc
    out[:, 2:5] = cmc[:, None] + np.cumsum(tsteps, axis=1)
    return out


# --- head and face -------------------------------------------------------------------------
def _face_template() -> np.ndarray:
    """70 face points (iBUG 68 + 2 pupils) in the head frame (neck origin), metres."""
    pts = np.zeros((70, 3))
    th = -np.pi / 2 + np.pi * np.arange(17) / 16  # jaw: signer's right ear -> chin -> left ear
    pts[0:17] = np.stack([0.068 * np.sin(th), 0.225 - 0.105 * np.cos(th), 0.01 + 0.07 * np.cos(th)], -1)
    bx = np.linspace(0.058, 0.014, 5)  # brows: outer -> inner (right), inner -> outer (left)
    by = 0.258 + 0.006 * np.sin(np.linspace(0.3, 2.8, 5))
    pts[17:22] = np.stack([-bx, by, 0.085 + 0.01 * np.linspace(0, 1, 5)], -1)
    pts[22:27] = np.stack([bx[::-1], by[::-1], 0.085 + 0.01 * np.linspace(1, 0, 5)], -1)
    pts[27:31] = np.stack([np.zeros(4), np.linspace(0.238, 0.192, 4), np.linspace(0.09, 0.118, 4)], -1)
    pts[31:36] = np.stack([np.linspace(-0.017, 0.017, 5), [0.183, 0.181, 0.180, 0.181, 0.183],
                           [0.098, 0.103, 0.106, 0.103, 0.098]], -1)  # fmt: skip
    ang = np.array([np.pi, 2 * np.pi / 3, np.pi / 3, 0.0, -np.pi / 3, -2 * np.pi / 3])  # 36..41
    for k, (cx, order) in enumerate(((-0.032, ang), (0.032, np.pi - ang))):
        ex = cx + 0.014 * np.cos(order)
        ey = 0.232 + 0.005 * np.sin(order)
        pts[36 + 6 * k : 42 + 6 * k] = np.stack([ex, ey, np.full(6, 0.082)], -1)
        pts[68 + k] = [cx, 0.232, 0.084]
    a_out = np.linspace(np.pi, 0, 7)  # 48..54 upper lip right->left, 55..59 lower left->right
    pts[48:55] = np.stack(
        [0.026 * np.cos(a_out), 0.152 + 0.008 * np.sin(a_out), 0.095 + 0.008 * np.sin(a_out)], -1
    )
    a_lo = np.linspace(-np.pi / 6, -5 * np.pi / 6, 5)
    pts[55:60] = np.stack(
        [0.024 * np.cos(a_lo), 0.150 + 0.012 * np.sin(a_lo), 0.095 + 0.006 * np.cos(a_lo)], -1
    )
    a_in = np.linspace(np.pi, 0, 5)  # 60..64 inner upper, 65..67 inner lower
    pts[60:65] = np.stack([0.018 * np.cos(a_in), 0.151 + 0.003 * np.sin(a_in), np.full(5, 0.097)], -1)
    a_il = np.linspace(-np.pi / 4, -3 * np.pi / 4, 3)
    pts[65:68] = np.stack([0.016 * np.cos(a_il), 0.150 + 0.003 * np.sin(a_il), np.full(3, 0.097)], -1)
    return pts


FACE_TEMPLATE = _face_template()
_LOWER_LIP = np.r_[55:60, 65:68]
_UPPER_LID, _LOWER_LID = np.r_[37:39, 43:45], np.r_[40:42, 46:48]
_PUPILS = np.r_[68:70]
_CORNERS, _CORNER_SIDE = np.r_[48, 54, 60, 64], np.array([-1.0, 1.0, -1.0, 1.0])
_LIPS_MID = np.r_[49:54, 55:60, 61:64, 65:68]
_INNER_BROWS, _INNER_SIDE = np.r_[20:22, 22:24], np.array([-1.0, -1.0, 1.0, 1.0])
_JAW_LOW = np.arange(4, 13)
_BROWS = np.arange(17, 27)
# BODY_25 head joints (HEAD_JOINTS) in the head frame
HEAD_JOINTS = ("nose", "r_eye", "l_eye", "r_ear", "l_ear")
HEAD_POINTS = np.array(
    [[0.0, 0.196, 0.122], [-0.032, 0.232, 0.084], [0.032, 0.232, 0.084], [-0.075, 0.215, -0.005],
     [0.075, 0.215, -0.005]]
)  # fmt: skip


def face_points(
    brows: np.ndarray,
    mouth: np.ndarray,
    scale: float,
    eyes: np.ndarray | None = None,
    lips: np.ndarray | None = None,
) -> np.ndarray:
    """Face ``[T, 70, 3]`` in the head frame; ``brows`` in [-1, 1] raises/lowers the brows (a
    furrow also pulls the inner brows together), ``mouth`` in [0, 1] opens the jaw, ``eyes`` in
    [0, 1] closes the eyelids (1 = closed), ``lips`` in [-1, 1] rounds (+, corners in and lips
    forward) or spreads (-) the mouth."""
    pts = np.broadcast_to(FACE_TEMPLATE * scale, (len(brows), 70, 3)).copy()
    pts[:, _BROWS, 1] += 0.007 * scale * brows[:, None]
    furrow = np.clip(-brows, 0, None)[:, None]
    pts[:, _INNER_BROWS, 0] -= 0.004 * scale * furrow * _INNER_SIDE
    if eyes is not None:
        pts[:, _UPPER_LID, 1] -= 0.0075 * scale * eyes[:, None]
        pts[:, _LOWER_LID, 1] += 0.0010 * scale * eyes[:, None]
        pts[:, _PUPILS, 1] -= 0.0035 * scale * eyes[:, None]
    if lips is not None:
        pts[:, _CORNERS, 0] -= 0.006 * scale * lips[:, None] * _CORNER_SIDE
        pts[:, _LIPS_MID, 2] += 0.004 * scale * np.clip(lips, 0, None)[:, None]
    pts[:, _LOWER_LIP, 1] -= 0.022 * scale * mouth[:, None]
    jaw_w = np.sin(np.linspace(0, np.pi, len(_JAW_LOW)))
    pts[:, _JAW_LOW, 1] -= 0.015 * scale * mouth[:, None] * jaw_w[None]
    return pts


# --- whole body ----------------------------------------------------------------------------
@dataclass
class Controls:
    """Per-frame control signals of one sequence (body frame, metres / radians)."""

    palm_r: np.ndarray  # [T,3] right palm-centre target
    palm_l: np.ndarray
    u_r: np.ndarray  # [T,3] finger direction
    n_r: np.ndarray  # [T,3] palm normal
    u_l: np.ndarray
    n_l: np.ndarray
    ang_r: np.ndarray  # [T,5,3] finger flexion
    ang_l: np.ndarray
    spread_r: np.ndarray  # [T]
    spread_l: np.ndarray
    opp_r: np.ndarray  # [T]
    opp_l: np.ndarray
    brows: np.ndarray  # [T]
    mouth: np.ndarray  # [T]
    head: np.ndarray  # [T,3] head pitch/yaw/roll
    torso: np.ndarray  # [T,3] torso sway
    eyes: np.ndarray | None = None  # [T] eyelid closure, 0 open .. 1 closed (blinks)
    lips: np.ndarray | None = None  # [T] lip rounding (+) / spreading (-) of mouthing


def _orthonormal(u: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = normalize(u)
    n = n - np.sum(n * u, -1, keepdims=True) * u
    # where the palm normal passes through zero (e.g. turning the palm over), fall back
    # smoothly to a direction perpendicular to the fingers
    side = np.cross(u, np.array([0.0, 1.0, 0.0]))
    side = np.where(np.linalg.norm(side, axis=-1, keepdims=True) < 0.3, np.cross(u, [1.0, 0.0, 0.0]), side)
    weight = np.clip(0.3 - np.linalg.norm(n, axis=-1, keepdims=True), 0.0, None)
    n = n + weight * normalize(side)
    n = n - np.sum(n * u, -1, keepdims=True) * u
    return u, normalize(n)


def _away_from(target: np.ndarray, shoulder: np.ndarray, r: float) -> np.ndarray:
    """Move wrist targets closer than ``r`` to the shoulder forward (+Z) until they are ``r`` away."""
    d = target - shoulder
    dz = np.sqrt(np.maximum(r**2 - d[:, 0] ** 2 - d[:, 1] ** 2, d[:, 2] ** 2))
    out = target.copy()
    out[:, 2] = shoulder[:, 2] + np.maximum(d[:, 2], dz)
    return out


_ARM = {s: tuple(_B[f"{s}_{j}"] for j in ("shoulder", "elbow", "wrist")) for s in ("r", "l")}
_LOWER = np.array(  # hips and legs: static, below the swaying upper body
    sorted(_B[n] for n in BODY25 if n == "mid_hip" or n.endswith(("hip", "knee", "ankle", "toe", "heel")))
)


def pose_body_frame(s: Signer, c: Controls) -> np.ndarray:
    """All 137 raw joints ``[T, 137, 3]`` in the body frame (see module doc)."""
    T = len(c.palm_r)
    J = np.zeros((T, N_RAW, 3))
    half = s.shoulder_width / 2
    hip_y = -s.torso
    # torso (rigid, neck-centred) and legs (static)
    body = np.zeros((len(BODY25), 3))
    body[_B["r_shoulder"]], body[_B["l_shoulder"]] = [-half, -0.02, 0.0], [half, -0.02, 0.0]
    body[_B["mid_hip"]] = [0.0, hip_y, 0.0]
    body[_B["r_hip"]], body[_B["l_hip"]] = [-0.09, hip_y, 0.0], [0.09, hip_y, 0.0]
    for side, s_ in ((-1, "r"), (1, "l")):
        knee, ankle, big, small, heel = (
            _B[f"{s_}_{j}"] for j in ("knee", "ankle", "big_toe", "small_toe", "heel")
        )
        x = 0.1 * side
        body[knee] = [x, hip_y - 0.45, 0.02]
        body[ankle] = [x, hip_y - 0.88, 0.0]
        body[big] = [x + 0.02 * side, hip_y - 0.93, 0.16]
        body[small] = [x + 0.06 * side, hip_y - 0.93, 0.13]
        body[heel] = [x, hip_y - 0.93, -0.04]
    J[:, RAW_BODY] = body
    # head: rigid rotation about the neck
    rh = euler_matrix(c.head)
    head = (HEAD_POINTS * s.head) @ rh.transpose(0, 2, 1)
    for k, name in enumerate(HEAD_JOINTS):
        J[:, RAW[f"body_{name}"]] = head[:, k]
    J[:, RAW_FACE] = face_points(c.brows, c.mouth, s.head, c.eyes, c.lips) @ rh.transpose(0, 2, 1)
    # arms and hands
    for sgn, sh, el, wr, hand_slice, palm, u, n, ang, spr, opp, side in (
        (-1, *_ARM["r"], RAW_RHAND, c.palm_r, c.u_r, c.n_r, c.ang_r, c.spread_r, c.opp_r, "right"),
        (1, *_ARM["l"], RAW_LHAND, c.palm_l, c.u_l, c.n_l, c.ang_l, c.spread_l, c.opp_l, "left"),
    ):
        u, n = _orthonormal(u, n)
        shoulder = J[:, sh]
        target = _away_from(palm - 0.42 * s.hand_length * u, shoulder, 0.45 * (s.upper_arm + s.forearm))
        pole = np.broadcast_to(np.array([0.2 * sgn, -1.0, -0.3]), (T, 3))
        elbow, wrist = arm_chain(shoulder, target, s.upper_arm, s.forearm, pole)
        J[:, el], J[:, wr] = elbow, wrist
        J[:, hand_slice] = hand_points(wrist, u, n, ang, spr, opp, s.hand_length, side)
    # torso sway: upper body (everything except hips and legs) rotates about mid-hip
    rt = euler_matrix(c.torso)
    upper = np.setdiff1d(np.arange(N_RAW), _LOWER)
    mid = body[_B["mid_hip"]]
    J[:, upper] = (J[:, upper] - mid) @ rt.transpose(0, 2, 1) + mid
    return J


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics (pixels) and image size."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def to_dict(self) -> dict[str, float]:
        """Plain dict for ``SplitStore.extra``."""
        return asdict(self)

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """Camera coordinates ``[..., 3]`` (z > 0) -> pixels ``[..., 2]``."""
        z = xyz[..., 2]
        return np.stack([self.fx * xyz[..., 0] / z + self.cx, self.fy * xyz[..., 1] / z + self.cy], -1)


def make_camera(width: int, height: int) -> Camera:
    """Camera framing an upper body like PHOENIX (about 240 px per metre at 2.5 m)."""
    f = 600.0 * height / 260.0
    return Camera(fx=f, fy=f, cx=width / 2.0, cy=height / 2.0, width=width, height=height)


def to_camera(body: np.ndarray, s: Signer, cam: Camera) -> np.ndarray:
    """Body-frame joints -> camera coordinates: neck about 0.35 of the image height from the top."""
    neck_v = 0.35 * cam.height  # pixel row of the neck
    y0 = (neck_v - cam.cy) / cam.fy * s.distance + s.offset_y
    out = np.empty_like(body)
    out[..., 0] = body[..., 0] + s.offset_x
    out[..., 1] = -body[..., 1] + y0
    out[..., 2] = s.distance - body[..., 2]
    return out
