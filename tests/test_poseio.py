"""``.pose`` export (:mod:`pipeline.data.poseio`): pose-format's OpenPose schema in pixels, so that
pose-format's own tools (format detection, normalisation helpers, the visualizer, ``Pose.read``) and
our ``data.source: pose`` reader work on it; the round trip through the pixel mapping."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import read_pose

from pipeline.data import poseio
from pipeline.data.skeleton import MANUAL, MANUAL_FACE_JOINTS, MANUAL_JOINTS, PARTS, RAW_TO_MANUAL_FACE

OPENPOSE = ["pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d"]


def _skeleton(frames: int = 6, n_joints: int = 50, seed: int = 0) -> np.ndarray:
    """A plausible signer in body units (neck origin, shoulder width 1, x right, y down, z depth):
    arms down-forward, spread hands (fingers fanned in a tilted plane), a face ring; small jitter."""
    rng = np.random.default_rng(seed)
    pose = np.zeros((n_joints, 3))
    body = {
        "nose": (0, -0.6, -0.1), "neck": (0, 0, 0), "r_shoulder": (-0.5, 0, 0), "r_elbow": (-0.65, 0.9, 0.1),
        "r_wrist": (-0.3, 1.5, -0.3), "l_shoulder": (0.5, 0, 0), "l_elbow": (0.65, 0.9, 0.1),
        "l_wrist": (0.3, 1.4, -0.35),
    }  # fmt: skip
    for name, xyz in body.items():
        pose[MANUAL[f"body_{name}"]] = xyz
    for side, sign in (("l", 1.0), ("r", -1.0)):
        wrist = pose[MANUAL[f"body_{side}_wrist"]]
        pose[MANUAL[f"{side}hand_wrist"]] = wrist
        for f, finger in enumerate(("thumb", "index", "middle", "ring", "pinky")):
            angle = math.radians(60 + 20 * f)
            direction = np.array([sign * math.cos(angle), math.sin(angle), 0.3 * math.cos(angle)])
            for k in range(1, 5):
                pose[MANUAL[f"{side}hand_{finger}{k}"]] = wrist + 0.07 * k * direction
    if n_joints > len(MANUAL_JOINTS):
        t = np.linspace(0, 2 * math.pi, 70, endpoint=False)
        face = [0.3 * np.cos(t), -0.6 + 0.4 * np.sin(t), -0.1 + 0.02 * np.sin(3 * t)]
        pose[PARTS["face"]] = np.stack(face, axis=1)
    return (pose + rng.normal(scale=0.02, size=(frames, n_joints, 3))).astype(np.float32)


def _pose(seq: np.ndarray, **kw: object) -> object:
    from pose_format import Pose

    buf = io.BytesIO()
    poseio.make_pose(seq, 25.0, **kw).write(buf)  # type: ignore[attr-defined]
    return Pose.read(buf.getvalue())


@pytest.mark.parametrize("n_joints", [50, 120])
def test_pose_format_detects_openpose_and_normalises(n_joints: int) -> None:
    from pose_format.utils.generic import (
        correct_wrists,
        detect_known_pose_format,
        hands_components,
        normalize_hands_3d,
        pose_hide_legs,
        pose_normalization_info,
    )

    seq = _skeleton(n_joints=n_joints)
    pose = _pose(seq)
    assert detect_known_pose_format(pose) == "openpose"
    assert [c.name for c in pose.header.components] == OPENPOSE
    assert all(c.format == "XYZC" for c in pose.header.components)
    dims = pose.header.dimensions
    assert (dims.width, dims.height, dims.depth) == (512, 512, 512)
    info = pose_normalization_info(pose.header)  # RShoulder / LShoulder
    assert (info.p1, info.p2) == (2, 5)
    shoulders = pose.body.data[:, 0, [2, 5]]
    width = np.linalg.norm(seq[:, MANUAL["body_l_shoulder"]] - seq[:, MANUAL["body_r_shoulder"]], axis=-1)
    in_pixels = np.linalg.norm(shoulders[:, 1] - shoulders[:, 0], axis=-1)
    np.testing.assert_allclose(in_pixels, poseio.fit_pixels(seq).scale * width, rtol=1e-5)
    normalised = _pose(seq).normalize(info)  # shoulder distance 1, as pose-format's models expect
    s = normalised.body.data[:, 0, [2, 5]]
    assert np.linalg.norm(s[:, 1] - s[:, 0], axis=-1).mean() == pytest.approx(1.0, rel=1e-4)

    (left, right), plane, line = hands_components(pose.header)
    assert (left, right) == ("hand_left_keypoints_2d", "hand_right_keypoints_2d")
    hands = _pose(seq)
    normalize_hands_3d(hands)  # appends both hands, normalised: the old holistic names made it fail
    assert hands.body.data.shape == (len(seq), 1, 137 + 2 * 21, 3)
    for k, comp in enumerate((left, right)):
        hand = np.ma.getdata(hands.body.data[:, 0, 137 + 21 * k : 137 + 21 * (k + 1)])
        names = pose.header.components[OPENPOSE.index(comp)].points
        assert np.isfinite(hand).all()
        np.testing.assert_allclose(hand[:, names.index(line[0])], 0, atol=1e-4)  # BASE at the origin
        mcp = hand[:, names.index(line[1])]  # M_CMC: at distance 1, on the y-z plane
        np.testing.assert_allclose(np.linalg.norm(mcp, axis=-1), 1, atol=1e-4)
        np.testing.assert_allclose(mcp[:, 0], 0, atol=1e-4)
        for p in plane:  # the palm plane (BASE, P_CMC, I_CMC) is z = 0: needs the depth we keep
            np.testing.assert_allclose(hand[:, names.index(p), 2], 0, atol=1e-4)
    hidden = pose_hide_legs(_pose(seq))
    assert float(np.asarray(hidden.body.confidence)[:, 0, 8:15].max()) == 0.0
    wrists = correct_wrists(_pose(seq)).body.data[:, 0]  # the body wrists take the hands' BASE
    for body_wrist, hand in (("RWrist", right), ("LWrist", left)):
        b, h = pose.header.get_point_index(OPENPOSE[0], body_wrist), pose.header.get_point_index(hand, "BASE")
        np.testing.assert_allclose(wrists[:, b], pose.body.data[:, 0, h])


def test_visualizer_draws_our_pose_without_normalising(tmp_path: Path) -> None:
    pytest.importorskip("cv2", reason="pose-format's PoseVisualizer needs OpenCV")
    import imageio.v3 as iio
    from pose_format.pose_visualizer import PoseVisualizer

    seq = _skeleton(frames=4, n_joints=120)
    poseio.write_pose(tmp_path / "a.pose", seq, 25.0, width=320, height=240)
    from pose_format import Pose

    pose = Pose.read((tmp_path / "a.pose").read_bytes())
    v = PoseVisualizer(pose)
    frame = next(iter(v.draw()))
    assert frame.shape == (240, 320, 3)
    ink = (frame != 255).any(axis=-1)
    assert ink.sum() > 500  # a skeleton is drawn
    ys, xs = np.nonzero(ink)
    assert xs.min() > 5 and xs.max() < 315 and ys.min() > 5 and ys.max() < 235  # inside the frame
    for joint in ("body_neck", "body_r_wrist", "lhand_middle4", "face_face30"):
        x, y = np.round(pose.body.data[0, 0, RAW_TO_MANUAL_FACE[MANUAL[joint]], :2]).astype(int)
        assert ink[y - 1 : y + 2, x - 1 : x + 2].any(), joint  # drawn where the file puts it
    v.save_frame(str(tmp_path / "f.png"), frame)
    v.save_gif(str(tmp_path / "a.gif"), v.draw())
    assert iio.imread(tmp_path / "a.gif", index=None).shape[:3] == (len(seq), 240, 320)
    assert iio.imread(tmp_path / "f.png").shape[:2] == (240, 320)


@pytest.mark.parametrize("n_joints", [50, 120])
def test_round_trip_pixels_and_missing_points(tmp_path: Path, n_joints: int) -> None:
    from pose_format import Pose

    seq = _skeleton(frames=5, n_joints=n_joints, seed=3) * 3 + 7  # any scale and offset fits the frame
    seq[2, MANUAL["rhand_index4"]] = np.nan  # a point without data
    pixels = poseio.fit_pixels(seq)
    poseio.write_pose(tmp_path / "a.pose", seq, 30.0, pixels)
    back, fps = read_pose(tmp_path / "a.pose", pixels.as_dict())
    assert back.shape == seq.shape and back.dtype == np.float32 and fps == 30.0
    np.testing.assert_allclose(back, seq, atol=1e-5 * np.nanmax(np.abs(seq)))  # NaN where NaN
    assert np.array_equal(np.isnan(back), np.isnan(seq))
    assert poseio.read_pose(tmp_path / "a.pose", pixels)[0].shape == seq.shape  # the PixelMap itself

    pose = Pose.read((tmp_path / "a.pose").read_bytes())
    data, conf = pose.body.data[:, 0], np.asarray(pose.body.confidence)[:, 0]
    present = np.zeros(137, bool)
    present[RAW_TO_MANUAL_FACE[:n_joints]] = True
    assert (conf[:, ~present] == 0).all() and conf[:, present].sum() == len(seq) * n_joints - 1
    assert np.ma.getmaskarray(data)[:, ~present].all() and not np.ma.getmaskarray(data)[0, present].any()
    hole = RAW_TO_MANUAL_FACE[MANUAL["rhand_index4"]]
    assert conf[2, hole] == 0 and np.ma.getmaskarray(data)[2, hole].all()
    got = np.ma.getdata(data)[conf > 0]  # [points, 3]
    dims = np.array([512, 512, 512])
    assert (got >= 0).all() and (got <= dims).all()  # inside the header's frame
    lo, hi = got.min(axis=0), got.max(axis=0)
    np.testing.assert_allclose((lo + hi) / 2, dims / 2, atol=1e-3)  # centred
    assert np.isclose(lo[:2], 0.1 * 512, atol=1e-3).any()  # the binding side keeps the 10 % margin
    finite = np.isfinite(seq).all(-1)
    in_file = np.ma.getdata(data)[:, RAW_TO_MANUAL_FACE[:n_joints]]
    np.testing.assert_allclose(in_file[finite], pixels.to_pixels(seq[finite]), rtol=1e-6, atol=1e-4)
    assert poseio.PixelMap.from_dict(pixels.as_dict()) == pixels


def test_joint_names_follow_openpose() -> None:
    """Each manual joint lands on the OpenPose point of the same name."""
    body, face, left, right = OPENPOSE
    pairs = {
        "body_nose": (body, "Nose"), "body_neck": (body, "Neck"), "body_r_wrist": (body, "RWrist"),
        "body_l_shoulder": (body, "LShoulder"), "lhand_wrist": (left, "BASE"),
        "lhand_thumb1": (left, "T_STT"),
        "rhand_middle1": (right, "M_CMC"), "rhand_pinky4": (right, "P_DIP"), "face_face0": (face, "FB_0"),
        "face_face36": (face, "FE_36"), "face_face48": (face, "FLO_48"), "face_face69": (face, "FP_69"),
    }  # fmt: skip
    seq = np.zeros((1, len(MANUAL_FACE_JOINTS), 3), np.float32)
    seq[0, :, 0] = np.arange(len(MANUAL_FACE_JOINTS))  # x = manual index
    pixels = poseio.fit_pixels(seq)
    pose = _pose(seq, pixels=pixels)
    x = np.round(pixels.to_body(np.ma.getdata(pose.body.data[0, 0]))[:, 0]).astype(int)
    for joint, (comp, name) in pairs.items():
        assert x[pose.header.get_point_index(comp, name)] == MANUAL[joint], joint


def test_our_pose_source_reads_the_export() -> None:
    """``data.source: pose`` ingests our own exports as OpenPose (raw layout, pixels, missing = 0)."""
    from pipeline.data.pose_source import read_pose as source_read_pose

    seq = _skeleton(frames=3, n_joints=50)
    pixels = poseio.fit_pixels(seq)
    buf = io.BytesIO()
    poseio.make_pose(seq, 25.0, pixels).write(buf)
    raw, fps = source_read_pose(buf.getvalue(), "mem.pose")
    assert raw.shape == (3, 1, 137, 3) and fps == 25.0
    idx = RAW_TO_MANUAL_FACE[:50]
    np.testing.assert_allclose(raw[:, 0, idx, :2], pixels.to_pixels(seq)[..., :2], atol=1e-3)
    assert (raw[:, 0, idx, 2] == 1).all()
    rest = np.setdiff1d(np.arange(137), idx)
    assert (raw[:, 0, rest] == 0).all()


def test_frame_size_and_errors(tmp_path: Path) -> None:
    from pose_format import Pose

    seq = _skeleton(frames=2)
    pose = _pose(seq, width=640, height=480)
    d = pose.header.dimensions
    assert (d.width, d.height, d.depth) == (640, 480, 640)
    xy = np.ma.getdata(pose.body.data)[:, 0, RAW_TO_MANUAL_FACE[:50]]
    assert (xy[..., 0] <= 640).all() and (xy[..., 1] <= 480).all() and (xy >= 0).all()
    still = np.zeros((3, 50, 3), np.float32)  # a degenerate (single-point) skeleton: finite scale
    assert poseio.fit_pixels(still).scale == pytest.approx(512 * 0.8)
    with pytest.raises(ValueError, match="no finite point"):
        poseio.fit_pixels(np.full((2, 50, 3), np.nan))
    with pytest.raises(ValueError, match="expected sides"):
        poseio.fit_pixels(seq, width=0)
    with pytest.raises(ValueError, match=r"expected \[T > 0, J, 3\]"):
        poseio.write_pose(tmp_path / "e.pose", seq[..., :2])
    with pytest.raises(ValueError, match="expected the 50-joint"):
        poseio.write_pose(tmp_path / "e.pose", seq[:, :10])
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    comps = [PoseHeaderComponent("X", ["a"], [], [(0, 0, 0)], "XYZC")]
    body = pose.body.__class__(25.0, np.zeros((1, 1, 1, 3), np.float32), np.ones((1, 1, 1), np.float32))
    other = Pose(PoseHeader(0.2, PoseHeaderDimensions(8, 8, 8), comps), body)
    buf = io.BytesIO()
    other.write(buf)
    with pytest.raises(ValueError, match="expected \\['pose_keypoints_2d'"):
        poseio.read_pose(buf.getvalue())
