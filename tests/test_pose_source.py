"""``data.source: pose``: pose-format files (MediaPipe Holistic or OpenPose components) in the
PHOENIX / sign-language-datasets layout and in a plain per-split layout (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.openpose import OpenPose_Components

from pipeline.data.policy import DataConfig, ErrorPolicy, IngestError
from pipeline.data.pose_source import HOLISTIC_FACE, ingest_pose, read_pose
from pipeline.data.skeleton import RAW
from pipeline.data.sources import ingest
from tests.conftest import need_shared

BODY33 = [
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP",
    "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL", "RIGHT_HEEL",
    "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
]  # fmt: skip
HAND21 = ["WRIST"] + [f"{f}_{k}" for f in ("THUMB", "INDEX", "MIDDLE", "RING", "PINKY") for k in range(4)]


def holistic_pose(
    frames: int = 5, people: int = 1, seed: int = 0, fmt: str = "XYZC"
) -> tuple[Pose, np.ndarray]:
    """A MediaPipe-Holistic-shaped pose (543 points) with random pixel coordinates; returns it and
    its data ``[T, P, 543, 3]``."""
    rng = np.random.default_rng(seed)
    comps = [
        PoseHeaderComponent("POSE_LANDMARKS", BODY33, [(11, 12)], [(255, 0, 0)], fmt),
        PoseHeaderComponent("FACE_LANDMARKS", [str(k) for k in range(468)], [(0, 1)], [(255, 0, 0)], fmt),
        PoseHeaderComponent("LEFT_HAND_LANDMARKS", HAND21, [(0, 1)], [(255, 0, 0)], fmt),
        PoseHeaderComponent("RIGHT_HAND_LANDMARKS", HAND21, [(0, 1)], [(255, 0, 0)], fmt),
    ]
    header = PoseHeader(0.1, PoseHeaderDimensions(210, 260, 1), comps)
    data = rng.uniform(10, 200, (frames, people, 543, 3)).astype(np.float32)
    conf = rng.uniform(0.5, 1.0, (frames, people, 543)).astype(np.float32)
    return Pose(header, NumPyPoseBody(25, data, conf)), data


def write(pose: Pose, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pose.write(fh)
    return path


def test_holistic_points_map_to_the_openpose_layout(tmp_path: Path) -> None:
    pose, data = holistic_pose()
    pose.body.confidence[1, 0, 33 + 468 : 33 + 468 + 21] = 0  # left hand undetected in frame 1 (read: masked)
    out, fps = read_pose(write(pose, tmp_path / "a.pose").read_bytes(), "a.pose")
    assert fps == 25 and out.shape == (5, 1, 137, 3)
    body = {n: i for i, n in enumerate(BODY33)}
    xy = data[..., :2]
    np.testing.assert_allclose(out[:, 0, RAW["body_r_wrist"], :2], xy[:, 0, body["RIGHT_WRIST"]], rtol=1e-6)
    neck = (xy[:, 0, body["LEFT_SHOULDER"]] + xy[:, 0, body["RIGHT_SHOULDER"]]) / 2
    np.testing.assert_allclose(out[:, 0, RAW["body_neck"], :2], neck, rtol=1e-6)
    np.testing.assert_allclose(out[:, 0, RAW["face_face30"], :2], xy[:, 0, 33 + HOLISTIC_FACE[30]], rtol=1e-6)
    np.testing.assert_allclose(out[:, 0, RAW["rhand_pinky4"], :2], xy[:, 0, 33 + 468 + 21 + 20], rtol=1e-6)
    np.testing.assert_allclose(
        out[:, 0, RAW["face_face68"], :2],
        out[:, 0, RAW["face_face36"] : RAW["face_face42"], :2].mean(1),
        rtol=1e-5,
    )
    assert (out[1, 0, RAW["lhand_wrist"] : RAW["lhand_wrist"] + 21] == 0).all()  # masked = (0, 0, 0)
    assert (out[0, 0, RAW["lhand_wrist"] : RAW["lhand_wrist"] + 21, 2] > 0).all()
    assert (out[:, :, RAW["body_l_big_toe"]] == 0).all()  # no MediaPipe landmark


def test_openpose_component_files_are_read_as_they_are(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    header = PoseHeader(0.1, PoseHeaderDimensions(210, 260, 1), OpenPose_Components)
    data = rng.uniform(10, 200, (4, 1, 137, 2)).astype(np.float32)
    conf = rng.uniform(0.5, 1, (4, 1, 137)).astype(np.float32)
    out, _ = read_pose(
        write(Pose(header, NumPyPoseBody(25, data, conf)), tmp_path / "o.pose").read_bytes(), "o"
    )
    np.testing.assert_allclose(out[..., :2], data, rtol=1e-6)
    np.testing.assert_allclose(out[..., 2], conf, rtol=1e-6)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("garbage", "not a readable .pose file"),
        ("nan", "NaN or inf at frame 2"),
        ("far", "beyond data.max_coordinate=100000"),
        ("components", "are neither MediaPipe Holistic"),
    ],
)
def test_bad_pose_files_are_named(damage: str, message: str, tmp_path: Path) -> None:
    pose, _ = holistic_pose()
    if damage == "nan":
        pose.body.data[2, 0, 0, 0] = np.nan
    if damage == "far":
        pose.body.data[3, 0, 12, 1] = 1e7
    if damage == "components":
        pose.header.components[0].name = "BODY"
    path = write(pose, tmp_path / "bad.pose")
    data = b"not a pose file at all" if damage == "garbage" else path.read_bytes()
    with pytest.raises(IngestError, match=message) as err:
        read_pose(data, str(path))
    assert str(path) in str(err.value)


def plain_corpus(root: Path, n: int = 2) -> Path:
    for split, table in (("train", "csv"), ("validation", "json"), ("test", "csv")):
        rows = [{"name": f"{split}{i}", "text": f"satz {i} im {split}", "gloss": f"G{i}"} for i in range(n)]
        for i, row in enumerate(rows):
            write(holistic_pose(frames=3 + i, seed=i)[0], root / split / f"{row['name']}.pose")
        if table == "json":
            (root / split / "index.json").write_text(json.dumps(rows))
        else:
            lines = ["name,text,gloss"] + [f"{r['name']},{r['text']},{r['gloss']}" for r in rows]
            (root / split / "index.csv").write_text("\n".join(lines) + "\n")
    return root


def test_plain_layout_with_csv_and_json_tables(tmp_path: Path) -> None:
    stores, frames = ingest_pose(plain_corpus(tmp_path), ErrorPolicy("raise"))
    assert sorted(stores) == ["dev", "test", "train"]  # validation -> dev
    assert frames == {"train": 7, "dev": 7, "test": 7}
    assert [e["text"] for e in stores["dev"].index] == ["satz 0 im validation", "satz 1 im validation"]
    assert stores["train"].index[1]["gloss"] == "G1" and len(stores["train"].sequence(1)) == 4


def test_bad_file_raises_or_is_a_counted_skip(tmp_path: Path) -> None:
    root = plain_corpus(tmp_path)
    (root / "test" / "test1.pose").write_bytes(b"\x00\x01broken")
    with pytest.raises(IngestError, match=r"test/test1.pose: not a readable .pose file"):
        ingest_pose(root, ErrorPolicy("raise"))
    policy = ErrorPolicy("skip")
    stores, _ = ingest_pose(root, policy)
    assert len(stores["test"]) == 1 and policy.counts["test"]["bad_pose_file"] == 1
    (root / "test" / "test1.pose").unlink()
    (root / "test" / "stray.pose").write_bytes(b"")  # a file no table row names
    with pytest.raises(IngestError, match="test1.pose found"):  # the row without its file, first
        ingest_pose(root, ErrorPolicy("raise"))
    policy = ErrorPolicy("skip")
    ingest_pose(root, policy)
    assert policy.counts["test"] == {"row_without_frames": 1, "file_without_row": 1}


def test_table_errors_are_named(tmp_path: Path) -> None:
    root = plain_corpus(tmp_path)
    (root / "train" / "index.csv").write_text("id,sentence\nx,y\n")
    with pytest.raises(
        IngestError, match=r"train/index.csv:1: header \['id', 'sentence'\] lacks \['name', 'text'\]"
    ):
        ingest_pose(root, ErrorPolicy("raise"))
    (root / "train" / "index.csv").unlink()
    (root / "validation" / "index.json").write_text('[{"name": "", "text": "x"}]')
    with pytest.raises(IngestError, match=r"validation/index.json\[0\]: expected a non-empty 'name'"):
        ingest_pose(root, ErrorPolicy("raise"))


def test_phoenix_holistic_sample() -> None:
    """The real PHOENIX sentence of sign-language-datasets: same file in the three split folders,
    corpus CSVs with ``dev`` for ``validation``."""
    root = need_shared("data", "phoenix14t-holistic-sample")
    stores, metrics = ingest(DataConfig(source="pose", path=str(root)))
    assert metrics["frames"] == 3 * 86 and sorted(stores) == ["dev", "test", "train"]
    seq = stores["dev"].sequence(0)
    assert (
        stores["dev"].index[0]["folder"]
        == "poses/holistic/validation/25October_2010_Monday_tagesschau-17.pose"
    )
    assert stores["test"].index[0]["text"].startswith("regen und schnee")
    pose = Pose.read((root / "poses/holistic/test/25October_2010_Monday_tagesschau-17.pose").read_bytes())
    right = pose.header.get_point_index("RIGHT_HAND_LANDMARKS", "WRIST")
    detected = ~np.ma.getmaskarray(pose.body.data)[:, 0, right, 0]
    assert 0 < detected.sum() < 86  # the hand is masked in some frames
    assert ((seq[:, RAW["rhand_wrist"], 2] > 0) == detected).all()
    np.testing.assert_allclose(
        seq[detected, RAW["rhand_wrist"], :2], np.ma.getdata(pose.body.data)[detected, 0, right, :2]
    )
    width = np.linalg.norm(seq[:, RAW["body_r_shoulder"], :2] - seq[:, RAW["body_l_shoulder"], :2], axis=1)
    assert 60 < np.median(width) < 110  # a signer's shoulders in a 210 x 260 frame
