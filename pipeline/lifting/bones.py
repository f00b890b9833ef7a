"""The skeletal model of the lifting: kinematic tree of the 50 manual joints, symmetric bone
classes, average body proportions, depth-sign priors and a neutral rest pose.

Coordinates are *body-centred units*: origin at the neck, lengths divided by the shoulder width,
x right, y down (image axes), z away from the camera (right-handed camera frame), so "in front
of the body" means a smaller z. (The synthetic corpus's generator has its own body frame:
:mod:`pipeline.synth.body`.)
"""

from __future__ import annotations

import numpy as np

from pipeline.data.skeleton import MANUAL, MANUAL_JOINTS, MANUAL_PARENTS, MIRROR_JOINT

N_MANUAL = len(MANUAL_JOINTS)
ROOT = int(np.flatnonzero(MANUAL_PARENTS < 0)[0])  # the neck
NOSE = MANUAL["body_nose"]
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
# fixed preference (0): pipeline.lifting.depth_signs.arm_signs chooses them jointly from the torso,
# signing-space and shoulder-torque costs (an earlier "upper arms weakly backward" was chosen after seeing the
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


def bone_of(joint: str) -> int:
    """Index of the bone that ends at manual joint ``joint`` (e.g. ``"body_r_elbow"``: the upper arm)."""
    return _BONE_OF_CHILD[MANUAL[joint]]


NOSE_BONE = bone_of("body_nose")
# (bone, sign): a body turned so the nose moves right (+x) brings its left shoulder back (+z).
SHOULDER_BONES = [(bone_of(f"body_{s}_shoulder"), sx) for s, sx in (("r", -1.0), ("l", 1.0))]
SHOULDER_CLASS = int(BONE_CLASS[SHOULDER_BONES[0][0]])  # both shoulders: one symmetric class
# (upper arm, forearm) bones of the right and the left arm [2, 2], and the shoulder joints
ARM_BONES = np.array([[bone_of(f"body_{s}_{j}") for j in ("elbow", "wrist")] for s in ("r", "l")])
SHOULDERS = [MANUAL["body_r_shoulder"], MANUAL["body_l_shoulder"]]


def bone_vectors(x: np.ndarray) -> np.ndarray:
    """Child minus parent position of every bone: ``[..., 50, C] -> [..., N_BONES, C]``."""
    return x[..., BONE_CHILD, :] - x[..., BONE_PARENT, :]


def bone_lengths(x: np.ndarray) -> np.ndarray:
    """Euclidean length of every bone: ``[..., 50, C] -> [..., N_BONES]``."""
    return np.linalg.norm(bone_vectors(x), axis=-1)


# Direction of every bone in the rest pose (x right, y down, z away; mirrored for the left side
# by ``side``): head up, arms hanging slightly away from the body, hands continuing the forearms
# with the fingers extended and fanned across the palm, thumb towards the body's midline.
_REST_DIRECTION = {
    "nose": (0.0, -1.0, 0.0),
    "shoulder": (1.0, 0.0, 0.0),
    "elbow": (0.2, 1.0, 0.0),
    "wrist": (0.1, 1.0, -0.3),
}
_REST_FINGER_X = {"thumb": -0.4, "index": -0.15, "middle": 0.0, "ring": 0.1, "pinky": 0.2}


def rest_pose() -> np.ndarray:
    """A neutral frontal pose ``[50, 3]`` of average proportions (:data:`PRIOR_LENGTHS`).

    Lifting places a joint never seen in a sequence at its parent plus its rest-pose offset.
    """
    x = np.zeros((N_MANUAL, 3))
    for level in BONE_LEVELS:
        for b in level:
            name = MANUAL_JOINTS[BONE_CHILD[b]]
            part, joint = name.split("_", 1)
            side = 1.0 if part == "lhand" or joint.startswith("l_") else -1.0  # image x of the side
            if part == "body":
                d = np.array(_REST_DIRECTION[joint.split("_")[-1]])
            else:
                finger = joint.rstrip("1234")
                d = np.array([_REST_FINGER_X.get(finger, 0.0), 1.0, 0.0])
            d = d * np.array([side, 1.0, 1.0])
            x[BONE_CHILD[b]] = x[BONE_PARENT[b]] + PRIOR_LENGTHS[b] * d / np.linalg.norm(d)
    return x
