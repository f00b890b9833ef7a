"""Joint layouts: raw OpenPose (BODY_25 + face 70 + 2 x hand 21) and the paper's 50 manual joints.

Code addresses joints by name through :data:`RAW` and :data:`MANUAL` (``RAW["lhand_wrist"]``,
``MANUAL["body_neck"]``), never by bare index.

Raw layout (``RAW_JOINTS``, 137 joints), in the order of the OpenPose JSON keys:
``pose_keypoints_2d`` (25), ``face_keypoints_2d`` (70), ``hand_left_keypoints_2d`` (21),
``hand_right_keypoints_2d`` (21).

Manual layout (``MANUAL_JOINTS``, 50 joints), the layout of Progressive Transformers'
``.skels`` and of ``../shared/data/openpose-czech-demo/selected_2d.npz``: BODY_25 0..7
(nose, neck, R shoulder, R elbow, R wrist, L shoulder, L elbow, L wrist), the 21 left-hand
joints, the 21 right-hand joints. With ``normalise.face: true`` the 70 face points follow
(``MANUAL_FACE_JOINTS``, 120 joints).
"""

from __future__ import annotations

import numpy as np

BODY25 = [
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye",
    "r_ear", "l_ear", "l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel",
]  # fmt: skip
HAND21 = ["wrist"] + [f"{f}{k}" for f in ("thumb", "index", "middle", "ring", "pinky") for k in range(1, 5)]
HAND_PARENTS = [-1] + [0 if k % 4 == 1 else k - 1 for k in range(1, 21)]
FACE70 = [f"face{k}" for k in range(70)]

# OpenPose JSON keys, in raw-layout order, with their joint counts.
OPENPOSE_PARTS = (
    ("pose_keypoints_2d", 25),
    ("face_keypoints_2d", 70),
    ("hand_left_keypoints_2d", 21),
    ("hand_right_keypoints_2d", 21),
)
RAW_JOINTS = (
    [f"body_{n}" for n in BODY25]
    + [f"face_{n}" for n in FACE70]
    + [f"lhand_{n}" for n in HAND21]
    + [f"rhand_{n}" for n in HAND21]
)
RAW = {name: i for i, name in enumerate(RAW_JOINTS)}  # raw-layout index by joint name
RAW_BODY = slice(0, 25)
RAW_FACE = slice(25, 95)
RAW_LHAND = slice(95, 116)
RAW_RHAND = slice(116, 137)

MANUAL_JOINTS = (
    [f"body_{n}" for n in BODY25[:8]] + [f"lhand_{n}" for n in HAND21] + [f"rhand_{n}" for n in HAND21]
)
MANUAL_FACE_JOINTS = MANUAL_JOINTS + [f"face_{n}" for n in FACE70]
MANUAL = {name: i for i, name in enumerate(MANUAL_FACE_JOINTS)}  # manual(+face)-layout index by name
# Raw-layout index of every manual (and face) joint.
RAW_TO_MANUAL = np.array([RAW_JOINTS.index(n) for n in MANUAL_JOINTS])
RAW_TO_MANUAL_FACE = np.array([RAW_JOINTS.index(n) for n in MANUAL_FACE_JOINTS])

# Body parts of the manual(+face) layout, for per-part metrics.
PARTS = {
    "body": slice(MANUAL["body_nose"], MANUAL["body_l_wrist"] + 1),
    "left_hand": slice(MANUAL["lhand_wrist"], MANUAL["lhand_pinky4"] + 1),
    "right_hand": slice(MANUAL["rhand_wrist"], MANUAL["rhand_pinky4"] + 1),
    "face": slice(MANUAL["face_face0"], MANUAL["face_face69"] + 1),
}

# Kinematic tree of the 50 manual joints: parent index per joint (-1 = root, the neck).
# nose <- neck; shoulders <- neck; elbows <- shoulders; wrists <- elbows;
# each hand's wrist joint <- the body wrist of the same side; fingers as in HAND_PARENTS.
_BODY_PARENT = {
    "nose": "neck", "neck": None, "r_shoulder": "neck", "r_elbow": "r_shoulder", "r_wrist": "r_elbow",
    "l_shoulder": "neck", "l_elbow": "l_shoulder", "l_wrist": "l_elbow",
}  # fmt: skip


def _parent(name: str) -> int:
    part, joint = name.split("_", 1)
    if part == "body":
        parent = _BODY_PARENT[joint]
        return -1 if parent is None else MANUAL[f"body_{parent}"]
    p = HAND_PARENTS[HAND21.index(joint)]  # a hand's wrist hangs off the body wrist of its side
    return MANUAL[f"body_{part[0]}_wrist"] if p < 0 else MANUAL[f"{part}_{HAND21[p]}"]


MANUAL_PARENTS = np.array([_parent(n) for n in MANUAL_JOINTS])
# Bones as (parent, child) pairs, and left/right mirror pairs of bones (by child joint).
MANUAL_BONES = [(int(p), c) for c, p in enumerate(MANUAL_PARENTS) if p >= 0]
_MIRROR_NAME = {"r_": "l_", "l_": "r_", "rhand_": "lhand_", "lhand_": "rhand_"}


def _mirror_name(name: str) -> str:
    part, rest = name.split("_", 1)
    if part == "body":
        side = rest[:2]
        return f"body_{_MIRROR_NAME[side]}{rest[2:]}" if side in ("r_", "l_") else name
    return _MIRROR_NAME[f"{part}_"] + rest


MIRROR_JOINT = np.array([MANUAL[_mirror_name(n)] for n in MANUAL_JOINTS])  # left <-> right


# iBUG 68-point face contours (+ 2 pupils, 68 and 69, drawn as points): closed contours repeat
# their start. Indices within the 70 face points.
FACE_CONTOURS: list[list[int]] = [
    list(range(0, 17)),  # jaw
    list(range(17, 22)),  # right brow
    list(range(22, 27)),  # left brow
    list(range(27, 31)),  # nose bridge
    list(range(31, 36)),  # nostrils
    [*range(36, 42), 36],  # right eye
    [*range(42, 48), 42],  # left eye
    [*range(48, 60), 48],  # outer lips
    [*range(60, 68), 60],  # inner lips
]
FACE_BONES = [(a, b) for c in FACE_CONTOURS for a, b in zip(c[:-1], c[1:], strict=True)]


def part_of(joint: int) -> str:
    """Name of the :data:`PARTS` entry that holds manual-layout joint ``joint``."""
    return next(name for name, sl in PARTS.items() if sl.start <= joint < sl.stop)


def part_bones(n_joints: int) -> dict[str, list[tuple[int, int]]]:
    """Bones ``(parent, child)`` inside each part of a layout of ``n_joints`` (50 manual, or 120):
    body and hand bones of :data:`MANUAL_BONES` whose two joints lie in the part (a hand's link to
    the body wrist is left out), the face's :data:`FACE_BONES` contours."""
    out: dict[str, list[tuple[int, int]]] = {}
    for name, sl in part_slices(n_joints).items():
        if name == "face":
            out[name] = [(sl.start + a, sl.start + b) for a, b in FACE_BONES]
        else:
            inside = range(sl.start, sl.stop)
            out[name] = [(p, c) for p, c in MANUAL_BONES if p in inside and c in inside]
    return out


def part_slices(n_joints: int) -> dict[str, slice]:
    """Per-part slices valid for a layout of ``n_joints`` (50 manual, or 120 with face)."""
    return {k: s for k, s in PARTS.items() if s.stop <= n_joints}
