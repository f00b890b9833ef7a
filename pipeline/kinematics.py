"""Kinematic tree of the 50 manual joints, average body proportions, Procrustes metrics and a
synthetic 3D signer used by the lift stage's tests and benchmark.

Coordinates are *body-centred units*: origin at the neck, lengths divided by the shoulder width,
x right, y down (image axes), z away from the camera (right-handed camera frame), so "in front
of the body" means a smaller z.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.skeleton import MANUAL_JOINTS, MANUAL_PARENTS, MIRROR_JOINT

N_MANUAL = len(MANUAL_JOINTS)
ROOT = int(np.flatnonzero(MANUAL_PARENTS < 0)[0])  # the neck
NOSE = MANUAL_JOINTS.index("body_nose")
# One bone per non-root joint, identified by its child joint.
BONE_CHILD = np.array([j for j in range(N_MANUAL) if MANUAL_PARENTS[j] >= 0])
BONE_PARENT = MANUAL_PARENTS[BONE_CHILD].astype(np.int64)
N_BONES = len(BONE_CHILD)


def _depth(j: int) -> int:
    d = 0
    while MANUAL_PARENTS[j] >= 0:
        j, d = int(MANUAL_PARENTS[j]), d + 1
    return d


JOINT_DEPTH = np.array([_depth(j) for j in range(N_MANUAL)])
BONE_DEPTH = JOINT_DEPTH[BONE_CHILD]
# Bones grouped by tree level (parents are always placed before children).
BONE_LEVELS = [np.flatnonzero(d == BONE_DEPTH) for d in range(1, int(BONE_DEPTH.max()) + 1)]
_BONE_OF_CHILD = {int(c): b for b, c in enumerate(BONE_CHILD)}
# Index of each bone's parent bone (-1 for bones that start at the root).
BONE_PARENT_BONE = np.array([_BONE_OF_CHILD.get(int(p), -1) for p in BONE_PARENT])

# Left/right symmetric bone classes: a bone and its mirror share one length.
_CLASS_KEY = [min(int(c), int(MIRROR_JOINT[c])) for c in BONE_CHILD]
_KEYS = sorted(set(_CLASS_KEY))
BONE_CLASS = np.array([_KEYS.index(k) for k in _CLASS_KEY])
N_CLASSES = len(_KEYS)

# Average adult proportions in shoulder widths (biacromial breadth ~0.38 m; anthropometric
# tables: upper arm ~0.30 m, forearm ~0.26 m, hand ~0.19 m). Keyed by child-joint name suffix.
_BODY_LENGTHS = {"nose": 0.60, "shoulder": 0.50, "elbow": 0.80, "wrist": 0.68}
_FINGER_LENGTHS = {  # wrist->base, then the three phalanges
    "thumb": (0.12, 0.12, 0.09, 0.07),
    "index": (0.24, 0.11, 0.07, 0.06),
    "middle": (0.24, 0.12, 0.08, 0.06),
    "ring": (0.23, 0.11, 0.07, 0.06),
    "pinky": (0.22, 0.08, 0.06, 0.05),
}
HAND_LINK = 0.02  # body wrist -> hand-model wrist: the same point seen by two detectors


def _prior_length(child: str) -> float:
    part, name = child.split("_", 1)
    if part == "body":
        return _BODY_LENGTHS[name.split("_")[-1]]
    if name == "wrist":
        return HAND_LINK
    return _FINGER_LENGTHS[name[:-1]][int(name[-1]) - 1]


PRIOR_LENGTHS = np.array([_prior_length(MANUAL_JOINTS[c]) for c in BONE_CHILD])  # [N_BONES]
HAND_BONES = np.array([MANUAL_JOINTS[c].split("_")[0] in ("lhand", "rhand") for c in BONE_CHILD])
# Prior on the sign of each bone's depth step (-1 = towards the camera), used to resolve the
# orthographic depth ambiguity: the nose is in front of the neck. Upper arms and forearms have no
# fixed preference (0): pipeline.lift.arm_signs chooses them jointly from the torso, signing-space
# and shoulder-torque costs (an earlier "upper arms weakly backward" was chosen after seeing the
# project's own generator and was dropped). Shoulders and the detector link have no preference
# either. Hand bones follow the forearm / their parent bone (fingers continue the hand's
# direction; they do not hyper-extend backwards); 2 marks "follow parent".
_SIGN_PRIOR = {"nose": -1.0, "shoulder": 0.0, "elbow": 0.0, "wrist": 0.0}
BONE_SIGN_PRIOR = np.array(
    [
        _SIGN_PRIOR[MANUAL_JOINTS[c].split("_")[-1]] if MANUAL_JOINTS[c].startswith("body") else
        (0.0 if MANUAL_JOINTS[c].endswith("_wrist") else 2.0)
        for c in BONE_CHILD
    ]
)  # fmt: skip
# For "follow parent" bones the bone whose direction is followed (skip the zero-length link).
BONE_FOLLOW = np.array(
    [
        BONE_PARENT_BONE[BONE_PARENT_BONE[b]] if BONE_PARENT_BONE[b] >= 0
        and MANUAL_JOINTS[BONE_CHILD[BONE_PARENT_BONE[b]]].endswith("_wrist")
        and not MANUAL_JOINTS[BONE_CHILD[BONE_PARENT_BONE[b]]].startswith("body")
        else BONE_PARENT_BONE[b]
        for b in range(N_BONES)
    ]
)  # fmt: skip


def bone_vectors(x: np.ndarray) -> np.ndarray:
    """Child minus parent position of every bone: ``[..., 50, C] -> [..., N_BONES, C]``."""
    return x[..., BONE_CHILD, :] - x[..., BONE_PARENT, :]


def bone_lengths(x: np.ndarray) -> np.ndarray:
    """Euclidean length of every bone: ``[..., 50, C] -> [..., N_BONES]``."""
    return np.linalg.norm(bone_vectors(x), axis=-1)


def bone_length_cv(x: np.ndarray, min_length: float = 1e-6) -> float:
    """Mean over bones of the coefficient of variation of a bone's length across frames.

    ``x`` is one sequence ``[T, 50, 3]``; bones with mean length below ``min_length`` (the
    zero-length detector link) are left out.
    """
    lengths = bone_lengths(x)
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
    r, left = MANUAL_JOINTS.index("body_r_shoulder"), MANUAL_JOINTS.index("body_l_shoulder")
    return float(np.linalg.norm(x[:, r] - x[:, left], axis=-1).mean())


# -- synthetic signer (tests and benchmark) ---------------------------------------------------
def _smooth(rng: np.random.Generator, t: np.ndarray, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Sum of three random sinusoids (0.2-1.5 Hz), roughly in [-1, 1], shape ``[T, *shape]``."""
    out = np.zeros((len(t), *shape))
    for _ in range(3):
        f = rng.uniform(0.2, 1.5, shape)
        ph = rng.uniform(0, 2 * np.pi, shape)
        out += np.sin(2 * np.pi * f * t[(...,) + (None,) * len(shape)] + ph) / 3
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


_FINGER_BASE = {  # (along the hand axis, across the palm) in shoulder widths, for a unit hand
    "thumb": (0.04, 0.06),
    "index": (0.0, 0.045),
    "middle": (0.0, 0.0),
    "ring": (0.0, -0.04),
    "pinky": (0.0, -0.075),
}


def synthetic_signer(
    length: int, rng: np.random.Generator, fps: float = 25.0, elbow_back: float = 0.25
) -> np.ndarray:
    """One synthetic signing sequence ``[length, 50, 3]`` in body-centred units.

    Wrists move smoothly in a box in front of the chest, elbows follow by two-bone inverse
    kinematics (elbows down and out), hands carry a smooth orientation and per-finger flexion;
    bone lengths are the average proportions scaled per signer; the whole body is turned by a
    random yaw/pitch. Left/right lengths are identical, so the tree is exactly symmetric.
    ``elbow_back`` is the backward component of the elbow pole (larger: elbows further back).
    """
    t = np.arange(length) / fps
    scale = rng.uniform(0.9, 1.1, N_CLASSES)
    lengths = PRIOR_LENGTHS * scale[BONE_CLASS]
    L = dict(zip((MANUAL_JOINTS[c] for c in BONE_CHILD), lengths, strict=True))
    x = np.zeros((length, N_MANUAL, 3))
    j = MANUAL_JOINTS.index
    x[:, j("body_nose")] = _unit(np.array([0.0, -0.92, -0.4])) * L["body_nose"]
    for side, sx in (("r", -1.0), ("l", 1.0)):
        s = np.array([sx * L[f"body_{side}_shoulder"], 0.0, 0.0])
        x[:, j(f"body_{side}_shoulder")] = s
        a, b = L[f"body_{side}_elbow"], L[f"body_{side}_wrist"]
        w = np.stack(
            [
                sx * 0.25 + 0.35 * _smooth(rng, t),
                0.85 + 0.45 * _smooth(rng, t),
                -0.55 + 0.25 * _smooth(rng, t),
            ],
            axis=-1,
        )
        d = w - s
        dist = np.clip(np.linalg.norm(d, axis=-1, keepdims=True), 0.3, 0.98 * (a + b))
        n = d / np.linalg.norm(d, axis=-1, keepdims=True)
        w = s + n * dist
        cos_a = np.clip((a * a + dist**2 - b * b) / (2 * a * dist), -1, 1)
        pole = np.array([sx * 0.6, 1.0, elbow_back])  # elbows down, out and (elbow_back > 0) back
        u = _unit(pole - (n @ pole)[:, None] * n)
        e = s + a * (cos_a * n + np.sqrt(1 - cos_a**2) * u)
        x[:, j(f"body_{side}_elbow")] = e
        x[:, j(f"body_{side}_wrist")] = w
        # hand frame: axis h continues the forearm with a smooth wrist bend; twist about h
        fore = _unit(w - e)
        h = _unit(fore + 0.6 * _smooth(rng, t, (3,)))
        ref = np.array([0.0, 0.0, -1.0])
        n0 = _unit(ref - (h @ ref)[:, None] * h)
        tw = 1.2 * _smooth(rng, t)[:, None]
        n0 = n0 * np.cos(tw) + np.cross(h, n0) * np.sin(tw)
        across = np.cross(n0, h) * sx
        hand = "lhand" if side == "l" else "rhand"
        wrist = w + _unit(rng.normal(size=3)) * L[f"{hand}_wrist"]
        x[:, j(f"{hand}_wrist")] = wrist
        flex = 0.6 + 0.5 * _smooth(rng, t, (5,))  # radians per joint
        for k, finger in enumerate(_FINGER_BASE):
            base_axis = h if finger != "thumb" else _unit(h + 0.8 * across)
            along, side_off = _FINGER_BASE[finger]
            mc = L[f"{hand}_{finger}1"]
            p = wrist + mc * _unit(base_axis + (side_off + along) * 3 * across)
            x[:, j(f"{hand}_{finger}1")] = p
            for m in range(2, 5):
                ang = flex[:, k : k + 1] * (m - 1)
                direction = np.cos(ang) * base_axis + np.sin(ang) * n0
                p = p + L[f"{hand}_{finger}{m}"] * direction
                x[:, j(f"{hand}_{finger}{m}")] = p
    rot = Rotation.from_euler("yx", [rng.uniform(-0.5, 0.5), rng.uniform(-0.15, 0.15)])
    return rot.apply(x.reshape(-1, 3)).reshape(x.shape)


def project(x: np.ndarray, distance: float | None = None) -> np.ndarray:
    """Project body-centred 3D ``[..., 3]`` to 2D: orthographic, or perspective from a camera
    ``distance`` shoulder widths in front of the neck (rescaled so the neck plane keeps scale)."""
    if distance is None:
        return x[..., :2].copy()
    return x[..., :2] * (distance / (distance + x[..., 2:3]))
