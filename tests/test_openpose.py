"""OpenPose JSON parser (real frames of the Czech demo, malformed input) and the frame order of a video
folder as the ingest of a tree reads it (by frame number, duplicates and empty folders rejected)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import need_shared

from pipeline.data.corpus_csv import write_corpus
from pipeline.data.openpose import OpenPoseError, frame_number, parse_frame
from pipeline.data.policy import DataConfig, IngestError
from pipeline.data.skeleton import RAW_BODY, RAW_FACE, RAW_JOINTS, RAW_LHAND, RAW_RHAND
from pipeline.data.sources import ingest
from pipeline.data.store import SplitStore


def read_frame(path: Path) -> np.ndarray:
    """``[P, 137, 3]`` of one frame file, parsed from its bytes."""
    return parse_frame(path.read_bytes(), path)


def ingest_video(root: Path, name: str) -> SplitStore:
    """Ingest a tree holding the one video folder ``root/<name>`` as the train split."""
    row = {"name": name, "video": f"{name}/1/*.png", "signer": "A", "gloss": "X", "text": "x ."}
    write_corpus(root / "c.train.corpus.csv", [row])
    stores, _ = ingest(DataConfig(source="openpose", path=str(root), on_error="raise"))
    return stores["train"]


@pytest.fixture
def demo() -> Path:
    """The real OpenPose output of the Czech demo (skipped when ../shared is absent)."""
    return need_shared("data", "openpose-czech-demo")


def _reference(path: Path) -> list[dict]:
    """The ``people`` list of a frame file as plain JSON."""
    return json.loads(path.read_text())["people"]


def test_real_frame_values_match_json(demo: Path) -> None:
    f = demo / "rec01" / "20160520_000000014489_keypoints.json"
    arr = read_frame(f)
    ref = _reference(f)[0]
    assert arr.shape == (1, len(RAW_JOINTS), 3) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[0, RAW_BODY].ravel(), ref["pose_keypoints_2d"], rtol=1e-6)
    np.testing.assert_allclose(arr[0, RAW_LHAND].ravel(), ref["hand_left_keypoints_2d"], rtol=1e-6)
    # empty face array (face model off) -> zeros, i.e. confidence 0 = missing
    assert ref["face_keypoints_2d"] == []
    assert not arr[0, RAW_FACE].any()
    # joints written as 0,0,0 stay zero (nose..R wrist undetected here), the L shoulder is kept
    assert ref["pose_keypoints_2d"][:15] == [0] * 15
    assert not arr[0, :5].any() and arr[0, 5, 2] > 0
    # low-confidence hands are kept as written (normalise decides what is missing)
    assert 0 < arr[0, RAW_LHAND, 2].max() < 0.3
    assert not arr[0, RAW_RHAND].any()


def test_real_empty_people_frame(demo: Path) -> None:
    f = demo / "rec01" / "20160520_000000014492_keypoints.json"
    assert _reference(f) == []
    assert read_frame(f).shape == (0, len(RAW_JOINTS), 3)


def test_video_ordered_by_frame_number_not_prefix(demo: Path, tmp_path: Path) -> None:
    files = sorted((demo / "rec02").glob("*_keypoints.json"))
    video = tmp_path / "rec02"
    video.mkdir()
    for i, f in enumerate(files):  # prefixes in reverse alphabetical order of the frame numbers
        n = frame_number(f)
        shutil.copy(f, video / f"{chr(ord('z') - i)}vid_{n:012d}_keypoints.json")
    store = ingest_video(tmp_path, "rec02")
    assert store.index[0]["frame_numbers"] == sorted(frame_number(f) for f in files)
    assert store.poses.shape == (len(files), len(RAW_JOINTS), 3)
    for t, f in enumerate(files):
        ref = read_frame(f)
        assert store.arrays["n_people"][t] == len(ref)
        np.testing.assert_array_equal(store.poses[t], ref[0])


def test_confidence_above_one_kept(demo: Path) -> None:
    # real OpenPose hand scores slightly exceed 1 (heat-map peaks)
    arr = read_frame(demo / "rec02" / "20160604_000000003885_keypoints.json")
    assert arr[0, RAW_LHAND, 2].max() > 1.0


def _person(**parts: list[float]) -> dict:
    """An OpenPose person object: every body joint at (1, 2) with confidence 0.5, ``parts`` override."""
    p = {"pose_keypoints_2d": [1.0, 2.0, 0.5] * 25, "face_keypoints_2d": []}
    p.update(parts)
    return p


def test_several_people_kept_in_order() -> None:
    doc = {"version": 1.3, "people": [_person(), _person(pose_keypoints_2d=[3.0, 4.0, 0.9] * 25)]}
    arr = parse_frame(json.dumps(doc).encode())
    assert arr.shape == (2, 137, 3)
    np.testing.assert_allclose(arr[0, 0], [1.0, 2.0, 0.5])
    np.testing.assert_allclose(arr[1, 24], [3.0, 4.0, 0.9], rtol=1e-6)
    assert not arr[:, 95:].any()  # absent hand keys -> missing


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"people": [{"pose_keypoints_2d": [1, 2', "truncated JSON"),
        (b"not json", "invalid or truncated JSON"),
        (b'{"people": [{"pose_keypoints_2d": [NaN, 1, 1]}]}', "NaN or inf"),
        (b'{"people": [{"pose_keypoints_2d": [1e999, 1, 1]}]}', "NaN or inf"),
        (b'{"version": 1.2}', "'people' list"),
        (b'{"people": [{"face_keypoints_2d": []}]}', "no 'pose_keypoints_2d'"),
        (
            json.dumps({"people": [_person(pose_keypoints_2d=[1.0] * 74)]}).encode(),
            "has 74 values, expected 75",
        ),
        (
            json.dumps({"people": [_person(hand_left_keypoints_2d=[0.5] * 60)]}).encode(),
            "hand_left_keypoints_2d has 60 values, expected 63",
        ),
        (json.dumps({"people": [_person(pose_keypoints_2d=["a"] * 75)]}).encode(), "non-numeric"),
        (json.dumps({"people": [_person(pose_keypoints_2d=[1.0, 1.0, -0.5] * 25)]}).encode(), "negative"),
        # issue 15: strict values
        (
            json.dumps({"people": [_person(pose_keypoints_2d=["100.0", 1.0, 0.5] + [1.0] * 72)]}).encode(),
            "pose_keypoints_2d[0] is str '100.0', expected a number",
        ),
        (
            json.dumps({"people": [_person(pose_keypoints_2d=[1.0, True, 0.5] + [1.0] * 72)]}).encode(),
            "pose_keypoints_2d[1] is bool True, expected a number",
        ),
        (
            json.dumps({"people": [_person(hand_right_keypoints_2d=[1.0, None, 0.5] * 21)]}).encode(),
            "hand_right_keypoints_2d[1] is null, expected a number",
        ),
        (
            json.dumps({"people": [_person(face_keypoints_2d=[1.0, 1.0, 1e30] * 70)]}).encode(),
            "face_keypoints_2d joint 0 has confidence 1e+30 > 1.5",
        ),
        (
            json.dumps({"people": [_person(pose_keypoints_2d=[1, 1, 0.5] * 24 + [3e7, 1, 0.5])]}).encode(),
            "pose_keypoints_2d joint 24 has coordinate 3e+07 px",
        ),
    ],
)
def test_bad_frames_raise_naming_file(data: bytes, message: str) -> None:
    with pytest.raises(OpenPoseError, match="clip_000000000007_keypoints.json") as info:
        parse_frame(data, "vid/clip_000000000007_keypoints.json")
    assert message in str(info.value)


def test_empty_and_duplicate_videos(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    with pytest.raises(IngestError, match="folder 'v' holds no \\*_keypoints.json frames"):
        ingest_video(tmp_path, "v")
    doc = json.dumps({"people": []})
    (tmp_path / "v" / "a_000000000001_keypoints.json").write_text(doc)
    (tmp_path / "v" / "b_000000000001_keypoints.json").write_text(doc)
    (tmp_path / "v" / "a_000000000002_keypoints.json").write_text(doc)
    with pytest.raises(IngestError, match=r"/v: several files for frame number\(s\) \[1\]"):
        ingest_video(tmp_path, "v")
    with pytest.raises(OpenPoseError, match="not an OpenPose frame file name"):
        frame_number("frame_1_keypoints.json")
