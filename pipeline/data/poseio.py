""".pose export (pose-format library) of generated sign poses.

:func:`write_pose` writes a ``[T, J, 3]`` sequence of the manual layout (50 joints: BODY_25 0-7,
left hand, right hand; optionally + 70 face points, :mod:`pipeline.data.skeleton`) as a
``pose_format.Pose`` with one person and the components ``POSE_LANDMARKS`` (8 body points),
``LEFT_HAND_LANDMARKS``, ``RIGHT_HAND_LANDMARKS`` (21 each) and ``FACE_LANDMARKS`` (70, when
present), each listing its point names and limbs (bones inside the component; the wrist-to-hand
bones cross components and are not limbs). Point format ``XYZC``; values are written as given
(the CLI writes body-centred 3D units: neck origin, shoulder width 1, x right, y down), all
confidences 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.skeleton import (
    FACE_BONES,
    HAND21,
    HAND_PARENTS,
    MANUAL_FACE_JOINTS,
    MANUAL_JOINTS,
    MANUAL_PARENTS,
    PARTS,
)

BODY_NAMES = ["NOSE", "NECK", "RIGHT_SHOULDER", "RIGHT_ELBOW", "RIGHT_WRIST", "LEFT_SHOULDER", "LEFT_ELBOW",
              "LEFT_WRIST"]  # fmt: skip
HAND_NAMES = [n.upper() for n in HAND21]


def components(n_joints: int) -> list[tuple[str, list[str], list[tuple[int, int]], slice]]:
    """``(name, points, limbs, slice of the joint axis)`` per pose-format component of the layout."""
    if n_joints not in (len(MANUAL_JOINTS), len(MANUAL_FACE_JOINTS)):
        raise ValueError(f"{n_joints} joints: expected the 50-joint manual layout or 120 with the face")
    body = [(int(p), c) for c, p in enumerate(MANUAL_PARENTS[PARTS["body"]]) if p >= 0]
    hand = [(int(p), c) for c, p in enumerate(HAND_PARENTS) if p >= 0]
    out = [
        ("POSE_LANDMARKS", BODY_NAMES, body, PARTS["body"]),
        ("LEFT_HAND_LANDMARKS", HAND_NAMES, hand, PARTS["left_hand"]),
        ("RIGHT_HAND_LANDMARKS", HAND_NAMES, hand, PARTS["right_hand"]),
    ]
    if n_joints > len(MANUAL_JOINTS):
        out.append(
            (
                "FACE_LANDMARKS",
                [str(k) for k in range(PARTS["face"].stop - PARTS["face"].start)],
                FACE_BONES,
                PARTS["face"],
            )
        )
    return out


def make_pose(poses: np.ndarray, fps: float = 25.0) -> object:
    """A ``pose_format.Pose`` (one person, confidences 1) of ``poses [T, J, 3]``."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    arr = np.asarray(poses, np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3 or len(arr) == 0:
        raise ValueError(f"poses of shape {arr.shape}: expected [T > 0, J, 3]")
    comps = []
    for k, (name, points, limbs, _) in enumerate(components(arr.shape[1])):
        colors = [
            ((70 * k + 40 * i) % 256, (120 + 30 * k) % 256, (200 - 25 * i) % 256) for i in range(len(limbs))
        ]
        comps.append(PoseHeaderComponent(name, points, limbs, colors, "XYZC"))
    extent = np.abs(arr).max()
    side = max(1, int(np.ceil(2 * extent)))
    header = PoseHeader(0.1, PoseHeaderDimensions(side, side, side), comps)
    data = arr[:, None]  # [T, people=1, J, 3]
    body = NumPyPoseBody(float(fps), data, np.ones(data.shape[:3], np.float32))
    return Pose(header, body)


def write_pose(path: str | Path, poses: np.ndarray, fps: float = 25.0) -> Path:
    """Write ``poses [T, J, 3]`` as a ``.pose`` file."""
    p = Path(path)
    pose = make_pose(poses, fps)
    with p.open("wb") as fh:
        pose.write(fh)
    return p
