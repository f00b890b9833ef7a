""".pose export (pose-format library) of generated sign poses.

:func:`write_pose` writes a ``[T, J, 3]`` sequence of the manual layout (50 joints: BODY_25 0-7,
left hand, right hand; optionally + 70 face points, :mod:`pipeline.skeleton`) as a
``pose_format.Pose`` with one person and the components ``POSE_LANDMARKS`` (8 body points),
``LEFT_HAND_LANDMARKS``, ``RIGHT_HAND_LANDMARKS`` (21 each) and ``FACE_LANDMARKS`` (70, when
present), each listing its point names and limbs (bones inside the component; the wrist-to-hand
bones cross components and are not limbs). Point format ``XYZC``; values are written as given
(the CLI writes body-centred 3D units: neck origin, shoulder width 1, x right, y down), all
confidences 1. :func:`read_pose` reads a file back as ``(data [T, J, 3] float32, fps)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.skeleton import HAND21, HAND_PARENTS, MANUAL_JOINTS, MANUAL_PARENTS, PARTS

BODY_NAMES = ["NOSE", "NECK", "RIGHT_SHOULDER", "RIGHT_ELBOW", "RIGHT_WRIST", "LEFT_SHOULDER", "LEFT_ELBOW",
              "LEFT_WRIST"]  # fmt: skip
HAND_NAMES = [n.upper() for n in HAND21]
# iBUG 68-point face contours (+ 2 pupils, 68 and 69, drawn as points): closed contours repeat their start.
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


def components(n_joints: int) -> list[tuple[str, list[str], list[tuple[int, int]], slice]]:
    """``(name, points, limbs, slice of the joint axis)`` per pose-format component of the layout."""
    if n_joints not in (len(MANUAL_JOINTS), len(MANUAL_JOINTS) + 70):
        raise ValueError(f"{n_joints} joints: expected the 50-joint manual layout or 120 with the face")
    body = [(int(p), c) for c, p in enumerate(MANUAL_PARENTS[:8]) if p >= 0]
    hand = [(int(p), c) for c, p in enumerate(HAND_PARENTS) if p >= 0]
    out = [
        ("POSE_LANDMARKS", BODY_NAMES, body, PARTS["body"]),
        ("LEFT_HAND_LANDMARKS", HAND_NAMES, hand, PARTS["left_hand"]),
        ("RIGHT_HAND_LANDMARKS", HAND_NAMES, hand, PARTS["right_hand"]),
    ]
    if n_joints > len(MANUAL_JOINTS):
        out.append(("FACE_LANDMARKS", [str(k) for k in range(70)], FACE_BONES, PARTS["face"]))
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


def read_pose(path: str | Path) -> tuple[np.ndarray, float]:
    """``(data [T, J, 3] float32, fps)`` of a one-person ``.pose`` file."""
    from pose_format import Pose

    pose = Pose.read(Path(path).read_bytes())
    data = np.asarray(
        pose.body.data.filled(np.nan) if np.ma.isMaskedArray(pose.body.data) else pose.body.data
    )
    return data[:, 0].astype(np.float32), float(pose.body.fps)
