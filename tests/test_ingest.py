"""Ingest stage: OpenPose trees (dir/zip/tar), pt_skels importer, gt3d sidecar, bad input."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED, need_shared

from pipeline.config import ParamsError, parse_section
from pipeline.data.corpus_csv import HEADER as CSV_HEADER
from pipeline.data.openpose import OpenPoseError, parse_frame
from pipeline.data.policy import DataConfig, IngestError
from pipeline.data.skeleton import MANUAL_JOINTS, RAW_JOINTS
from pipeline.data.sources import ingest
from pipeline.data.store import SplitStore, StoreError
from pipeline.stages import ingest as ingest_stage

HEADER = "|".join(CSV_HEADER)


@pytest.fixture
def demo() -> Path:
    """The real OpenPose output of the Czech demo (skipped when ../shared is absent)."""
    return need_shared("data", "openpose-czech-demo")


@pytest.fixture
def pt() -> Path:
    """The Progressive-Transformers sample (skipped when ../shared is absent)."""
    return need_shared("data", "phoenix14t-pt-sample")


def write_corpus(path: Path, names: list[str]) -> None:
    """A hand-written corpus CSV with one row per video folder name."""
    rows = [f"{n}|{n}/1/*.png|-1|-1|Signer0{i}|GLOSS{i} X|satz {i} ." for i, n in enumerate(names)]
    path.write_text("\n".join([HEADER, *rows]) + "\n")


def frame_doc(t: int, people: int = 1) -> dict:
    """An OpenPose 1.3 frame document with ``people`` copies of a body that moves with ``t``."""
    pose = np.full((25, 3), 0.9)
    pose[:, 0] = 100 + t + np.arange(25)
    pose[:, 1] = 200 - t
    person = {"pose_keypoints_2d": pose.ravel().tolist(), "face_keypoints_2d": []}
    person["hand_left_keypoints_2d"] = [0.0] * 63
    person["hand_right_keypoints_2d"] = [0.0] * 63
    return {"version": 1.3, "people": [person] * people}


def write_video(folder: Path, n: int, prefix: str = "cam") -> None:
    """``n`` frame files numbered from 5 in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        (folder / f"{prefix}_{t + 5:012d}_keypoints.json").write_text(json.dumps(frame_doc(t)))


def tiny_tree(root: Path) -> Path:
    """openpose/<split>/<name>/ frames + annotations/*.corpus.csv, like the synthetic corpus."""
    for split, names in {"train": ["a1", "a2"], "dev": ["b1"]}.items():
        for k, name in enumerate(names):
            write_video(root / "openpose" / split / name, 4 + k)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        write_corpus(root / "annotations" / f"PHOENIX-2014-T.{split}.corpus.csv", names)
    return root


def run(path: Path, source: str = "openpose", on_error: str = "raise") -> tuple[dict[str, SplitStore], dict]:
    """Ingest ``path`` as the ``data`` section would."""
    return ingest(DataConfig(source=source, path=str(path), on_error=on_error))


# -- openpose source --------------------------------------------------------------------------
def test_czech_demo_folder_with_written_corpus(tmp_path: Path, demo: Path) -> None:
    """How a folder of OpenPose output without corpus CSV is used: write one CSV per split."""
    root = tmp_path / "demo"
    shutil.copytree(demo, root)
    write_corpus(root / "demo.train.corpus.csv", ["rec01"])
    write_corpus(root / "demo.dev.corpus.csv", ["rec02"])
    stores, metrics = run(root)
    assert metrics["train"] == {"sequences": 1, "frames": 32, "skipped": {}, "skipped_total": 0}
    assert metrics["dev"]["frames"] == 18 and metrics["frames_per_s"] > 0
    train = stores["train"]
    assert train.poses.shape == (32, len(RAW_JOINTS), 3) and train.channels == ["x", "y", "c"]
    entry = train.index[0]
    assert (entry["name"], entry["signer"], entry["gloss"]) == ("rec01", "Signer00", "GLOSS0 X")
    files = sorted((root / "rec01").glob("*_keypoints.json"))
    assert entry["frame_numbers"] == list(range(14489, 14489 + 32))
    for t in (0, 3, 31):  # frame 3 = 14492 has "people": []
        ref = parse_frame(files[t].read_bytes(), files[t])
        np.testing.assert_array_equal(train.poses[t], ref[0] if len(ref) else 0)
    assert train.arrays["n_people"].tolist() == [0 if t == 3 else 1 for t in range(32)]


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archives_equal_directory(tmp_path: Path, kind: str) -> None:
    root = tiny_tree(tmp_path / "corpus")
    ref, _ = run(root)
    archive = tmp_path / f"corpus.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for f in sorted(root.rglob("*")):
                zf.write(f, f.relative_to(tmp_path).as_posix())
    else:
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(root, arcname="corpus")
    got, metrics = run(archive)
    assert metrics["train"]["sequences"] == 2 and metrics["dev"]["frames"] == 4
    for split in ref:
        np.testing.assert_array_equal(got[split].poses, ref[split].poses)
        assert [e["name"] for e in got[split].index] == [e["name"] for e in ref[split].index]


def test_gt3d_sidecar_in_archive_is_not_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tiny_tree(tmp_path / "synthetic")
    seqs = [np.zeros((n, 137, 3), np.float32) for n in (4, 5)]
    SplitStore.from_sequences(seqs, [{"name": "a1"}, {"name": "a2"}], RAW_JOINTS, ["x", "y", "z"]).save(
        root / "gt3d" / "train"
    )
    archive = tmp_path / "synthetic.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(root.rglob("*")):
            zf.write(f, f.relative_to(root).as_posix())
    stores, _ = run(archive, source="synthetic")
    assert "gt3d" not in stores["train"].arrays and len(stores["train"]) == 2
    assert "gt3d sidecar inside an archive is not read" in caplog.text


def test_extra_people_kept_sparse(tmp_path: Path) -> None:
    root = tiny_tree(tmp_path / "c")
    f = next((root / "openpose" / "train" / "a1").glob("*_000000000006_*"))
    f.write_text(json.dumps(frame_doc(1, people=3)))
    stores, _ = run(root)
    st = stores["train"]
    assert st.arrays["n_people"][:4].tolist() == [1, 3, 1, 1]
    people, frames = st.extra_people
    assert people.shape == (2, 137, 3) and frames.tolist() == [1, 1]
    st.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("extra_people*.npy")) == [
        "extra_people.npy",
        "extra_people_frame.npy",
    ]
    p2, f2 = SplitStore.load(tmp_path / "out").extra_people
    np.testing.assert_array_equal(p2, people)
    np.testing.assert_array_equal(f2, frames)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: np.save(d / "extra_people_frame.npy", np.array([1, 1, 2])),  # 3 frames for 2 people
        lambda d: np.save(d / "extra_people_frame.npy", np.array([1, 9])),  # frame 9 of 9 frames
        lambda d: np.save(d / "extra_people_frame.npy", np.array([-1, 1])),
    ],
)
def test_store_load_rejects_inconsistent_extra_people(tmp_path: Path, damage: Callable[[Path], Any]) -> None:
    root = tiny_tree(tmp_path / "c")
    f = next((root / "openpose" / "train" / "a1").glob("*_000000000006_*"))
    f.write_text(json.dumps(frame_doc(1, people=3)))
    stores, _ = run(root)
    assert stores["train"].poses.shape[0] == 9
    stores["train"].save(tmp_path / "out")
    damage(tmp_path / "out")
    with pytest.raises(StoreError, match=r"out: extra_people arrays are inconsistent"):
        SplitStore.load(tmp_path / "out")


def test_gt3d_sidecar_attached_and_checked(tmp_path: Path) -> None:
    root = tiny_tree(tmp_path / "synthetic")
    for split, names, lengths in (("train", ["a1", "a2"], [4, 5]), ("dev", ["b1"], [4])):
        seqs = [np.random.default_rng(0).normal(size=(n, 137, 3)).astype(np.float32) for n in lengths]
        SplitStore.from_sequences(seqs, [{"name": n} for n in names], RAW_JOINTS, ["x", "y", "z"]).save(
            root / "gt3d" / split
        )
    stores, _ = run(root, source="synthetic")
    side = SplitStore.load(root / "gt3d" / "train")
    np.testing.assert_array_equal(stores["train"].arrays["gt3d"], side.poses)
    # bad frame skipped -> the same gt3d row is dropped
    bad = sorted((root / "openpose" / "train" / "a2").iterdir())[2]
    bad.write_text("{")
    stores, m = run(root, source="synthetic", on_error="skip")
    np.testing.assert_array_equal(stores["train"].sequence(1, "gt3d"), np.delete(side.sequence(1), 2, axis=0))
    assert m["train"]["skipped"] == {"bad_frame_file": 1}
    # frame-count mismatch -> error naming the sequence
    bad.unlink()
    with pytest.raises(IngestError, match=r"gt3d/train has 5 frames for 'a2', the video 4"):
        run(root, source="synthetic")


# -- pt_skels source --------------------------------------------------------------------------
def test_pt_skels_sample(pt: Path) -> None:
    stores, metrics = run(pt, source="pt_skels")
    for split in ("train", "dev", "test"):
        st = stores[split]
        lines = (pt / f"{split}.skels").read_text().splitlines()
        assert len(st) == 5 == metrics[split]["sequences"]
        assert st.joints == MANUAL_JOINTS and st.channels == ["x", "y", "z"]
        assert st.lengths.tolist() == [len(line.split()) // 151 for line in lines]
        # the 151st value (progress counter) is dropped; coordinates kept in order
        first = np.array(lines[0].split(), np.float32).reshape(-1, 151)
        np.testing.assert_array_equal(st.sequence(0), first[:, :150].reshape(-1, 50, 3))
        assert st.index[0]["text"] == (pt / f"{split}.text").read_text().splitlines()[0]
        assert st.index[0]["video"].startswith(f"{split}/")


def test_main_pt_skels_relative_path(pt: Path, workspace: Callable[..., Path]) -> None:
    """The stage resolves a relative ``data.path`` against the working directory."""
    ws = workspace(
        data={"source": "pt_skels", "path": "shared/data/phoenix14t-pt-sample", "on_error": "raise"}
    )
    (ws / "shared").symlink_to(SHARED)
    ingest_stage.main([])
    metrics = json.loads((ws / "metrics" / "ingest.json").read_text())
    assert metrics["source"] == "pt_skels" and metrics["test"]["sequences"] == 5
    assert SplitStore.load(ws / "data" / "ingested" / "dev").poses.shape[1:] == (50, 3)


# -- bad input ---------------------------------------------------------------------------------
def corrupt(root: Path, kind: str) -> str:
    """Make one kind of bad input in a tiny tree; returns the expected message fragment."""
    frames = root / "openpose" / "train" / "a1"
    first = sorted(frames.iterdir())[0]
    ann = root / "annotations"
    if kind == "invalid_json":
        first.write_text("not json")
        return "invalid or truncated JSON"
    if kind == "truncated_json":
        first.write_text(first.read_text()[:50])
        return "invalid or truncated JSON"
    if kind == "wrong_length":
        doc = frame_doc(0)
        doc["people"][0]["hand_right_keypoints_2d"] = [0.0] * 62
        first.write_text(json.dumps(doc))
        return "hand_right_keypoints_2d has 62 values"
    if kind == "nan":
        first.write_text(first.read_text().replace("0.9", "NaN", 1))
        return "NaN or inf"
    if kind in ("string_value", "null_value", "bool_value", "huge_confidence", "far_coordinate"):
        doc = frame_doc(0)
        pose = doc["people"][0]["pose_keypoints_2d"]
        value, message = {
            "string_value": ("100.0", "pose_keypoints_2d[0] is str '100.0'"),
            "null_value": (None, "pose_keypoints_2d[0] is null"),
            "bool_value": (True, "pose_keypoints_2d[0] is bool True"),
            "huge_confidence": (1e30, "pose_keypoints_2d joint 0 has confidence 1e+30"),
            "far_coordinate": (2e5, "pose_keypoints_2d joint 0 has coordinate 200000 px beyond 100000 px"),
        }[kind]
        pose[2 if kind == "huge_confidence" else 0] = value
        first.write_text(json.dumps(doc))
        return message
    if kind == "empty_video":
        shutil.rmtree(frames)
        frames.mkdir()
        return "holds no *_keypoints.json frames"
    if kind == "row_without_frames":
        shutil.rmtree(frames)
        return "no frame folder found"
    if kind == "folder_without_row":
        write_video(root / "openpose" / "train" / "zz", 3)
        return "frames with no corpus row"
    if kind == "unknown_split":
        (ann / "PHOENIX-2014-T.val.corpus.csv").write_text(HEADER + "\n")
        return "unknown split 'val'"
    raise AssertionError(kind)


BAD_OPENPOSE = {
    "invalid_json": "bad_frame_file",
    "truncated_json": "bad_frame_file",
    "wrong_length": "bad_frame_file",
    "nan": "bad_frame_file",
    "string_value": "bad_frame_file",
    "null_value": "bad_frame_file",
    "bool_value": "bad_frame_file",
    "huge_confidence": "bad_frame_file",
    "far_coordinate": "bad_frame_file",
    "empty_video": "empty_video",
    "row_without_frames": "row_without_frames",
    "folder_without_row": "folder_without_row",
    "unknown_split": "unknown_split",
}


@pytest.mark.parametrize("kind", sorted(BAD_OPENPOSE))
def test_bad_openpose_input_raises_or_is_counted(tmp_path: Path, kind: str) -> None:
    root = tiny_tree(tmp_path / "c")
    message = corrupt(root, kind)
    with pytest.raises(ValueError, match="|".join(["a1", "zz", "val"])) as info:
        run(root)
    assert message in str(info.value) and isinstance(info.value, (IngestError, OpenPoseError))
    _, metrics = run(root, on_error="skip")
    split = "unknown" if kind == "unknown_split" else "train"
    assert metrics[split]["skipped"] == {BAD_OPENPOSE[kind]: 1}
    frames_lost = {"bad_frame_file": 1, "empty_video": 4, "row_without_frames": 4}.get(BAD_OPENPOSE[kind], 0)
    assert metrics["train"]["frames"] == 4 + 5 - frames_lost


def test_video_with_only_bad_frames_is_skipped(tmp_path: Path) -> None:
    root = tiny_tree(tmp_path / "c")
    for f in (root / "openpose" / "dev" / "b1").iterdir():
        f.write_text("{")
    stores, metrics = run(root, on_error="skip")
    assert metrics["dev"]["skipped"] == {"bad_frame_file": 4, "empty_video": 1}
    assert len(stores["dev"]) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name|video|speaker\na|a/1/*.png|x\n", "header is"),
        (HEADER + "\na1|a1/1/*.png|-1|-1|S|G\n", ":2: 6 fields, expected 7"),
        (HEADER + "\na1|a1/1/*.png|-1|-1|S|G|t .\na1|a1/1/*.png|-1|-1|S|G|t .\n", ":3: duplicate sequence"),
    ],
)
def test_bad_corpus_csv(tmp_path: Path, text: str, message: str) -> None:
    root = tiny_tree(tmp_path / "c")
    (root / "annotations" / "PHOENIX-2014-T.train.corpus.csv").write_text(text)
    with pytest.raises(IngestError, match="PHOENIX-2014-T.train.corpus.csv") as info:
        run(root, on_error="skip")
    assert message in str(info.value)


def test_no_corpus_csv_explains(tmp_path: Path) -> None:
    write_video(tmp_path / "rec", 2)
    with pytest.raises(IngestError, match="no \\*.corpus.csv corpus file; write one"):
        run(tmp_path)


def pt_copy(tmp_path: Path) -> Path:
    """A writable copy of the Progressive-Transformers sample."""
    dst = tmp_path / "pt"
    shutil.copytree(need_shared("data", "phoenix14t-pt-sample"), dst)
    return dst


def _edit_line(path: Path, i: int, fn: Callable[[str], str]) -> None:
    """Replace line ``i`` of ``path`` by ``fn(line)``."""
    lines = path.read_text().split("\n")
    lines[i] = fn(lines[i])
    path.write_text("\n".join(lines))


def pt_corrupt(root: Path, kind: str) -> tuple[str, str]:
    """Make one kind of bad pt_skels input; returns the file:line and the message fragment expected."""
    skels = root / "train.skels"
    if kind == "not_multiple":
        _edit_line(skels, 1, lambda s: s + " 0.5")
        return "train.skels:2", "is not a multiple of 151"
    if kind == "counter_range":
        _edit_line(skels, 2, lambda s: " ".join(s.split()[:150] + ["1.5"] + s.split()[151:]))
        return "train.skels:3", "progress counter 1.5 is outside [0, 1]"
    if kind == "counter_decreasing":
        _edit_line(skels, 0, lambda s: " ".join(s.split()[151:302] + s.split()[:151] + s.split()[302:]))
        return "train.skels:1", "progress counter decreases at frame 1"
    if kind == "nan":
        _edit_line(skels, 3, lambda s: "nan " + s.split(" ", 1)[1])
        return "train.skels:4", "NaN or inf"
    if kind == "empty_line":
        _edit_line(skels, 4, lambda s: "")
        return "train.skels:5", "empty skeleton line"
    if kind == "line_count_mismatch":
        (root / "train.gloss").write_text("\n".join((root / "train.gloss").read_text().split("\n")[1:]))
        return "train.gloss", "line counts differ"
    if kind == "unknown_split":
        shutil.copy(root / "dev.skels", root / "val.skels")
        return "val.skels", "unknown split 'val'"
    raise AssertionError(kind)


BAD_PT = {
    "not_multiple": ("train", "bad_skels_line", 4),
    "counter_range": ("train", "bad_skels_line", 4),
    "counter_decreasing": ("train", "bad_skels_line", 4),
    "nan": ("train", "bad_skels_line", 4),
    "empty_line": ("train", "empty_video", 4),
    "line_count_mismatch": ("train", "line_count_mismatch", None),
    "unknown_split": ("unknown", "unknown_split", 5),
}


@pytest.mark.parametrize("kind", sorted(BAD_PT))
def test_bad_pt_skels_raises_or_is_counted(tmp_path: Path, kind: str) -> None:
    root = pt_copy(tmp_path)
    where, message = pt_corrupt(root, kind)
    with pytest.raises(IngestError, match=where.replace(".", r"\.")) as info:
        run(root, source="pt_skels")
    assert message in str(info.value)
    stores, metrics = run(root, source="pt_skels", on_error="skip")
    split, reason, n_train = BAD_PT[kind]
    assert metrics[split]["skipped"] == {reason: 1}
    assert len(stores["train"]) == n_train if n_train is not None else "train" not in stores
    assert len(stores["dev"]) == 5


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"source": "kinect", "path": "x"}, ParamsError, "data.source='kinect' is invalid"),
        ({"source": "openpose", "path": "x", "on_error": "ignore"}, ParamsError, "data.on_error='ignore'"),
        ({"source": "openpose", "path": None}, ParamsError, "data.path=None is invalid"),
        ({"source": "openpose", "path": ""}, ParamsError, "data.path='' is invalid"),
        ({"source": "openpose", "path": "/nonexistent/corpus"}, IngestError, "no such file or directory"),
        ({"source": "pt_skels", "path": os.devnull}, IngestError, "not a directory"),
    ],
)
def test_invalid_params(data: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ingest(parse_section({"data": data}, "data", DataConfig))
    assert issubclass(error, ValueError)
