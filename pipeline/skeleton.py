"""Joint layouts: raw OpenPose (BODY_25 + face 70 + 2 x hand 21) and the paper's 50 manual joints.

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
RAW_BODY = slice(0, 25)
RAW_FACE = slice(25, 95)
RAW_LHAND = slice(95, 116)
RAW_RHAND = slice(116, 137)

MANUAL_JOINTS = (
    [f"body_{n}" for n in BODY25[:8]] + [f"lhand_{n}" for n in HAND21] + [f"rhand_{n}" for n in HAND21]
)
MANUAL_FACE_JOINTS = MANUAL_JOINTS + [f"face_{n}" for n in FACE70]
# Raw-layout index of every manual (and face) joint.
RAW_TO_MANUAL = np.array([RAW_JOINTS.index(n) for n in MANUAL_JOINTS])
RAW_TO_MANUAL_FACE = np.array([RAW_JOINTS.index(n) for n in MANUAL_FACE_JOINTS])

# Body parts of the manual(+face) layout, for per-part metrics.
PARTS = {
    "body": slice(0, 8),
    "left_hand": slice(8, 29),
    "right_hand": slice(29, 50),
    "face": slice(50, 120),
}

# Kinematic tree of the 50 manual joints: parent index per joint (-1 = root, the neck).
# nose <- neck; shoulders <- neck; elbows <- shoulders; wrists <- elbows;
# each hand's wrist joint <- the body wrist of the same side; fingers as in HAND_PARENTS.
MANUAL_PARENTS = np.array(
    [1, -1, 1, 2, 3, 1, 5, 6]
    + [7 if p < 0 else 8 + p for p in HAND_PARENTS]
    + [4 if p < 0 else 29 + p for p in HAND_PARENTS]
)
# Bones as (parent, child) pairs, and left/right mirror pairs of bones (by child joint).
MANUAL_BONES = [(int(p), c) for c, p in enumerate(MANUAL_PARENTS) if p >= 0]
MIRROR_JOINT = np.array([0, 1, 5, 6, 7, 2, 3, 4] + list(range(29, 50)) + list(range(8, 29)))


def part_slices(n_joints: int) -> dict[str, slice]:
    """Per-part slices valid for a layout of ``n_joints`` (50 manual, or 120 with face)."""
    return {k: s for k, s in PARTS.items() if s.stop <= n_joints}
