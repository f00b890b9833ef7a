""".pose export (pose-format library) of generated sign poses, in pose-format's OpenPose schema.

:func:`write_pose` writes a ``[T, J, 3]`` sequence of the manual layout (50 joints: BODY_25 0-7,
left hand, right hand; optionally + 70 face points, :mod:`pipeline.data.skeleton`) as a
``pose_format.Pose`` with one person and pose-format's own OpenPose components
(``pose_format.utils.openpose.OpenPose_Components``: ``pose_keypoints_2d`` with the 25 BODY_25
names, ``face_keypoints_2d`` (70), ``hand_left_keypoints_2d``, ``hand_right_keypoints_2d`` (21
each); 137 points in the raw OpenPose order, their names, limbs and colours), but with point format
``XYZC``: the depth is kept, which pose-format's 3D helpers need (``normalize_hands_3d``). So
pose-format detects the file as ``openpose`` and its tools work on it unchanged:
``pose_format.utils.generic`` (``pose_normalization_info``, ``hands_components``,
``normalize_hands_3d``, ``pose_hide_legs``, ``correct_wrists``), ``Pose.normalize``,
``PoseVisualizer`` (needs OpenCV), and our own ``data.source: pose`` reader
(:mod:`pipeline.data.pose_source`).

Points the layout lacks (BODY_25 8-24: hips, legs, eyes, ears, feet; the face of a 50-joint
layout) and non-finite input points are missing: value 0, confidence 0, masked. Every other point
has confidence 1.

Coordinates are pixels of a ``width x height`` frame (default 512 x 512; ``depth = max(width,
height)``), the header's dimensions. The input (the translate CLI's body-centred 3D units: neck
origin, shoulder width 1, x right, y down, z away from the camera) is mapped by one uniform scale
and an offset per file, :class:`PixelMap` (:func:`fit_pixels`: the whole sequence's bounding box,
centred, fills the frame less a 10 % margin on each side)::

    pixel = scale * body + offset        body = (pixel - offset) / scale      (x, y, z alike)

The mapping is not stored in the ``.pose`` file (its header has no field for it): the translate CLI
records it per sentence in ``index.json`` (``items[k].pose_pixels``: ``scale``, ``offset``,
``width``, ``height``, ``depth``); :func:`read_pose` with it gives the body-centred input back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.skeleton import MANUAL_FACE_JOINTS, MANUAL_JOINTS, RAW_JOINTS, RAW_TO_MANUAL_FACE

DEFAULT_SIZE = 512  # frame width and height in pixels
MARGIN = 0.1  # share of each frame side left free on either side of the skeleton
MIN_EXTENT = 1.0  # body units: a smaller bounding-box side is treated as this (no blown-up dots)
COMPONENTS = ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d")
POINT_FORMAT = "XYZC"


@dataclass(frozen=True)
class PixelMap:
    """``pixel = scale * body + offset`` per axis (x, y, z), into a ``width x height x depth`` frame."""

    scale: float
    offset: tuple[float, float, float]
    width: int = DEFAULT_SIZE
    height: int = DEFAULT_SIZE
    depth: int = DEFAULT_SIZE

    def to_pixels(self, body: np.ndarray) -> np.ndarray:
        return np.asarray(body, np.float64) * self.scale + np.asarray(self.offset, np.float64)

    def to_body(self, pixels: np.ndarray) -> np.ndarray:
        return (np.asarray(pixels, np.float64) - np.asarray(self.offset, np.float64)) / self.scale

    def as_dict(self) -> dict[str, Any]:
        """The ``index.json`` form (``pose_pixels``)."""
        return {
            "scale": self.scale,
            "offset": list(self.offset),
            "width": self.width,
            "height": self.height,
            "depth": self.depth,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PixelMap:
        ox, oy, oz = (float(v) for v in d["offset"])
        return cls(float(d["scale"]), (ox, oy, oz), int(d["width"]), int(d["height"]), int(d["depth"]))


def _as_poses(poses: np.ndarray) -> np.ndarray:
    arr = np.asarray(poses, np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3 or len(arr) == 0:
        raise ValueError(f"poses of shape {arr.shape}: expected [T > 0, J, 3]")
    if arr.shape[1] not in (len(MANUAL_JOINTS), len(MANUAL_FACE_JOINTS)):
        raise ValueError(f"{arr.shape[1]} joints: expected the 50-joint manual layout or 120 with the face")
    return arr


def fit_pixels(
    poses: np.ndarray, width: int = DEFAULT_SIZE, height: int = DEFAULT_SIZE, margin: float = MARGIN
) -> PixelMap:
    """The :class:`PixelMap` that centres the bounding box of all finite points of ``poses [T, J, 3]``
    in a ``width x height x max(width, height)`` frame, one scale for the three axes, each side of the
    box at least ``margin`` of the frame side from the frame's edges (a box side below
    :data:`MIN_EXTENT` body units counts as that)."""
    arr = _as_poses(poses)
    if width <= 0 or height <= 0 or max(width, height) > 0xFFFF:
        raise ValueError(f"frame {width} x {height}: expected sides of 1..65535 pixels")
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin {margin}: expected 0 <= margin < 0.5")
    pts = arr.reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if not len(pts):
        raise ValueError("poses have no finite point")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    dims = np.array([width, height, max(width, height)], np.float64)
    scale = float(np.min(dims * (1 - 2 * margin) / np.maximum(hi - lo, MIN_EXTENT)))
    ox, oy, oz = (float(v) for v in dims / 2 - scale * (lo + hi) / 2)
    return PixelMap(scale, (ox, oy, oz), int(width), int(height), int(dims[2]))


def header_components() -> list[Any]:
    """pose-format's OpenPose components (names, limbs, colours) with point format ``XYZC``."""
    from pose_format.pose_header import PoseHeaderComponent
    from pose_format.utils.openpose import OpenPose_Components

    return [
        PoseHeaderComponent(c.name, list(c.points), list(c.limbs), list(c.colors), POINT_FORMAT)
        for c in OpenPose_Components
    ]


def make_pose(
    poses: np.ndarray,
    fps: float = 25.0,
    pixels: PixelMap | None = None,
    *,
    width: int = DEFAULT_SIZE,
    height: int = DEFAULT_SIZE,
) -> Any:
    """A ``pose_format.Pose`` (one person, OpenPose components, ``XYZC`` pixels) of ``poses [T, J, 3]``
    in body units; ``pixels`` defaults to :func:`fit_pixels` ``(poses, width, height)``."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    arr = _as_poses(poses)
    if pixels is None:
        pixels = fit_pixels(arr, width, height)
    comps = header_components()
    assert sum(len(c.points) for c in comps) == len(RAW_JOINTS)  # the raw OpenPose layout, in order
    n_frames, n_joints = arr.shape[:2]
    valid = np.isfinite(arr).all(axis=-1)  # [T, J]
    data = np.zeros((n_frames, len(RAW_JOINTS), 3), np.float32)
    conf = np.zeros((n_frames, len(RAW_JOINTS)), np.float32)
    idx = RAW_TO_MANUAL_FACE[:n_joints]
    data[:, idx] = np.where(valid[..., None], pixels.to_pixels(np.where(valid[..., None], arr, 0.0)), 0.0)
    conf[:, idx] = valid
    mask = np.repeat((conf == 0)[..., None], 3, axis=-1)
    dims = PoseHeaderDimensions(pixels.width, pixels.height, pixels.depth)
    header = PoseHeader(0.2, dims, comps)
    body = NumPyPoseBody(float(fps), np.ma.masked_array(data[:, None], mask[:, None]), conf[:, None])
    return Pose(header, body)


def write_pose(
    path: str | Path,
    poses: np.ndarray,
    fps: float = 25.0,
    pixels: PixelMap | None = None,
    *,
    width: int = DEFAULT_SIZE,
    height: int = DEFAULT_SIZE,
) -> Path:
    """Write ``poses [T, J, 3]`` (body units) as a ``.pose`` file (:func:`make_pose`)."""
    p = Path(path)
    pose = make_pose(poses, fps, pixels, width=width, height=height)
    with p.open("wb") as fh:
        pose.write(fh)
    return p


def read_pose(
    source: str | Path | bytes,
    pixels: PixelMap | dict[str, Any] | None = None,
    n_joints: int | None = None,
) -> tuple[np.ndarray, float]:
    """``(poses [T, J, 3] float32, fps)`` of a ``.pose`` file written by :func:`write_pose` (person 0):
    the manual layout (``n_joints`` 50 or 120; default 120 when any face point is present), missing
    points NaN; in body units when ``pixels`` (the :class:`PixelMap` or its ``index.json`` dict) is
    given, else in the file's pixels."""
    from pose_format import Pose

    pose = Pose.read(source if isinstance(source, bytes) else Path(source).read_bytes())
    names = [c.name for c in pose.header.components]
    if tuple(names) != COMPONENTS or pose.header.num_dims() != 3:
        raise ValueError(f"components {names} ({pose.header.num_dims()}D): expected {list(COMPONENTS)} XYZC")
    data = np.asarray(np.ma.getdata(pose.body.data)[:, 0], np.float64)  # [T, 137, 3]
    missing = (np.asarray(pose.body.confidence)[:, 0] <= 0) | np.ma.getmaskarray(pose.body.data)[:, 0].any(-1)
    if n_joints is None:
        face = RAW_TO_MANUAL_FACE[len(MANUAL_JOINTS) :]
        n_joints = len(MANUAL_FACE_JOINTS) if (~missing[:, face]).any() else len(MANUAL_JOINTS)
    if n_joints not in (len(MANUAL_JOINTS), len(MANUAL_FACE_JOINTS)):
        raise ValueError(f"n_joints {n_joints}: expected 50 or 120")
    idx = RAW_TO_MANUAL_FACE[:n_joints]
    out = data[:, idx]
    if pixels is not None:
        pm = pixels if isinstance(pixels, PixelMap) else PixelMap.from_dict(pixels)
        out = pm.to_body(out)
    out[missing[:, idx]] = math.nan
    return out.astype(np.float32), float(pose.body.fps)
