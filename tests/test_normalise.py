"""Normalise stage: cleaning, signer choice, interpolation, [0, 1] range and exact inverse."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import need_shared

from pipeline.config import ParamsError, parse_section
from pipeline.data.policy import DataConfig
from pipeline.data.skeleton import MANUAL_JOINTS, RAW_JOINTS, RAW_TO_MANUAL
from pipeline.data.sources import ingest
from pipeline.data.store import SplitStore
from pipeline.data.transform import UnitRange
from pipeline.preprocess.normalise import (
    NormaliseConfig,
    NormaliseError,
    denormalise,
    interpolate,
    normalise,
    pick_signer,
)
from pipeline.stages import normalise as normalise_stage

BODY_XY = np.array([[0, -60], [0, 0], [-50, 0], [-60, 80], [-40, 150], [50, 0], [60, 80], [40, 150]], float)


def person(
    T: int, centre: tuple[float, float] = (300.0, 200.0), size: float = 1.0, seed: int = 0, conf: float = 0.9
) -> np.ndarray:
    """A moving raw-layout person [T, 137, 3] with shoulder width 100 * size pixels."""
    rng = np.random.default_rng(seed)
    p = np.zeros((T, len(RAW_JOINTS), 3))
    t = np.arange(T)[:, None]
    p[:, :8, :2] = BODY_XY * size + np.asarray(centre)
    p[:, 3:5, 0] += 10 * np.sin(t / 3)  # right arm moves
    for wrist, start in ((7, 95), (4, 116)):  # left hand near left wrist, right near right
        p[:, start : start + 21, :2] = p[:, wrist : wrist + 1, :2] + rng.normal(0, 8, (21, 2)) * size
    p[:, 25:95, :2] = p[:, :1, :2] + rng.normal(0, 10, (70, 2)) * size
    p[..., 2] = conf
    p[:, 8:25, 2] = 0  # legs not visible
    p[:, 8:25, :2] = 0
    return p.astype(np.float32)


def store(
    seqs: list[np.ndarray], n_people: list[np.ndarray] | None = None, **arrays: list[np.ndarray]
) -> SplitStore:
    """A raw-layout ingested store of ``seqs`` (one person per frame unless ``n_people`` says)."""
    index = [{"name": f"s{i}", "frame_numbers": list(range(len(s)))} for i, s in enumerate(seqs)]
    arr = {"n_people": n_people or [np.ones(len(s), np.uint8) for s in seqs], **arrays}
    return SplitStore.from_sequences(seqs, index, RAW_JOINTS, ["x", "y", "c"], arrays=arr)


def splits(seed: int = 0) -> dict[str, SplitStore]:
    """Three train sequences of different place and size, one dev sequence."""
    train = [person(12, (300 + 20 * k, 200), 1 + 0.1 * k, seed + k) for k in range(3)]
    dev = [person(9, (250, 180), 1.3, seed + 7)]
    return {"train": store(train), "dev": store(dev)}


def manual_pixels(seq: np.ndarray) -> np.ndarray:
    """The x, y pixels of the 50 manual joints of a raw sequence."""
    return seq[:, RAW_TO_MANUAL, :2].astype(np.float64)


# -- range and inverse --------------------------------------------------------------------------
def test_range_and_exact_inverse_2d() -> None:
    stores = splits()
    out, transform, metrics = normalise(stores, NormaliseConfig())
    for split, st in out.items():
        assert st.joints == MANUAL_JOINTS and st.channels == ["x", "y", "c"]
        assert st.poses.min() >= 0 and st.poses.max() <= 1
        for i, entry in enumerate(st.index):
            back = denormalise(st.sequence(i), transform, entry)
            np.testing.assert_allclose(back[..., :2], manual_pixels(stores[split].sequence(i)), atol=1e-3)
            np.testing.assert_allclose(back[..., 2], 0.9, atol=1e-6)  # confidence passes through
            body = denormalise(st.sequence(i), transform)  # body-centred units
            np.testing.assert_allclose(body[:, 1, :2].mean(axis=0), 0, atol=1e-5)
            width = np.linalg.norm(body[:, 2, :2] - body[:, 5, :2], axis=1)
            assert np.median(width) == pytest.approx(1, abs=1e-5)
    # train fits inside the margin; nothing clipped in this dev split
    v = out["train"].poses[..., :2]
    assert v.min() > 0.03 and v.max() < 0.97
    assert metrics["dev"]["values_clipped"] == 0


def test_fitted_on_train_only_and_dev_clipped() -> None:
    stores = splits()
    _, t1, _ = normalise(stores, NormaliseConfig())
    far = person(9, (250, 180), 1.3, 7)
    far[:, 95:116, 0] += 2000  # left hand 20 shoulder widths away in dev
    stores["dev"] = store([far])
    out, t2, metrics = normalise(stores, NormaliseConfig())
    assert (t1.low, t1.high) == (t2.low, t2.high)
    assert metrics["dev"]["values_clipped"] == 9 * 21
    assert out["dev"].poses[:, 8:29, 0].max() == 1.0


def test_transform_saved_by_main_loads(workspace: Callable[..., Path]) -> None:
    """The stage reads data/ingested/<split> and its params section; the saved map inverts exactly."""
    ws = workspace(normalise={"face": False, "min_body_joints": 3, "min_confidence": 0.1, "margin": 0.1})
    for split, st in splits().items():
        st.save(ws / "data" / "ingested" / split)
    normalise_stage.main([])
    saved = json.loads((ws / "data/normalised/transform.json").read_text())
    assert saved["channels"] == ["x", "y"] and saved["fitted_on"] == "train" and saved["margin"] == 0.1
    st = SplitStore.load(ws / "data/normalised/train")
    back = denormalise(st.sequence(0), ws / "data/normalised/transform.json", st.index[0])
    np.testing.assert_allclose(back[..., :2], manual_pixels(splits()["train"].sequence(0)), atol=1e-3)
    metrics = json.loads((ws / "metrics/normalise.json").read_text())
    assert metrics["train"]["sequences"] == 3 and metrics["dev"]["frames"] == 9


def test_pt_skels_3d_round_trip() -> None:
    pt = need_shared("data", "phoenix14t-pt-sample")
    stores, _ = ingest(DataConfig(source="pt_skels", path=str(pt)))
    out, transform, metrics = normalise(stores, NormaliseConfig())
    assert len(transform.low) == 3
    for split, st in out.items():
        assert st.channels == ["x", "y", "z"] and st.poses.shape == stores[split].poses.shape
        assert st.poses.min() >= 0 and st.poses.max() <= 1
        assert metrics[split]["frames_dropped"] == 0
    v = out["train"].sequence(2)
    back = denormalise(v, transform, out["train"].index[2])
    np.testing.assert_allclose(back, stores["train"].sequence(2), atol=1e-5)
    with pytest.raises(ParamsError, match="face=true needs a 2D"):
        normalise(stores, NormaliseConfig(face=True))


def test_real_czech_frames(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    shutil.copytree(need_shared("data", "openpose-czech-demo"), root)
    header = "name|video|start|end|speaker|orth|translation\n"
    (root / "demo.train.corpus.csv").write_text(header + "rec01|rec01/1/*.png|-1|-1|A|X|x .\n")
    (root / "demo.dev.corpus.csv").write_text(header + "rec02|rec02/1/*.png|-1|-1|B|Y|y .\n")
    stores, _ = ingest(DataConfig(source="openpose", path=str(root)))
    out, transform, metrics = normalise(stores, NormaliseConfig())
    assert metrics["train"]["frames_dropped_no_person"] == 1  # the "people": [] frame
    assert out["train"].poses.shape == (31, 50, 3)
    assert metrics["train"]["joints_interpolated"] + metrics["train"]["joints_held"] > 0
    v = out["train"].poses
    assert v.min() >= 0 and v.max() <= 1
    # confident joints come back to their pixels exactly
    entry = out["train"].index[0]
    raw = stores["train"].sequence(0)[[t for t in range(32) if t != 3]][:, RAW_TO_MANUAL]
    back = denormalise(v, transform, entry)
    ok = v[..., 2] > 0
    np.testing.assert_allclose(back[..., :2][ok], raw[..., :2][ok], atol=1e-3)
    assert (raw[..., 2][~ok] < 0.1).all()


# -- cleaning -----------------------------------------------------------------------------------
def test_dropped_frames_counted_and_gt3d_follows() -> None:
    seq = person(8)
    seq[2] = 0  # no person detected
    seq[5, [0, 2, 3, 4, 6, 7], 2] = 0.05  # only 2 confident body joints
    gt = np.random.default_rng(1).normal(size=(8, 137, 3)).astype(np.float32)
    n_people = [np.array([1, 1, 0, 1, 1, 1, 1, 1], np.uint8)]
    stores = {"train": store([seq], n_people, gt3d=[gt])}
    out, _, metrics = normalise(stores, NormaliseConfig(min_body_joints=3))
    m = metrics["train"]
    assert (m["frames_dropped_no_person"], m["frames_dropped_few_body_joints"], m["frames"]) == (1, 1, 6)
    assert out["train"].index[0]["frame_numbers"] == [0, 1, 3, 4, 6, 7]
    assert out["train"].index[0]["frames_dropped"] == 2
    np.testing.assert_array_equal(out["train"].arrays["gt3d"], gt[[0, 1, 3, 4, 6, 7]][:, RAW_TO_MANUAL])
    # with min_body_joints 2 the second frame stays
    _, _, metrics = normalise(stores, NormaliseConfig(min_body_joints=2))
    assert metrics["train"]["frames"] == 7


def test_main_signer_follows_previous_choice() -> None:
    main = person(6, (300, 200))
    other = person(6, (600, 220), conf=1.0, seed=3)  # more confident bystander, far away
    other[:, :8, 2] = 1.0
    first = main.copy()
    first[3] = other[3]  # in frame 3 the bystander is listed first, the signer second
    extra = {2: other[2:3], 3: main[3:4], 4: other[4:5]}
    chosen, kept, dropped = pick_signer(first, np.ones(6, bool), extra, NormaliseConfig())
    np.testing.assert_array_equal(chosen, main)
    assert kept.tolist() == list(range(6)) and sum(dropped.values()) == 0
    # in the first frame the most confident person wins
    chosen, _, _ = pick_signer(first, np.ones(6, bool), {0: other[0:1]}, NormaliseConfig())
    np.testing.assert_array_equal(chosen[0], other[0])


def _write_frames(folder: Path, frames: list[list[np.ndarray]]) -> None:
    """OpenPose frame files (body and hands) of the people of every frame."""
    folder.mkdir(parents=True)
    for t, people in enumerate(frames):
        doc = {"people": [{"pose_keypoints_2d": p[:25].ravel().tolist(),
                           "hand_left_keypoints_2d": p[95:116].ravel().tolist(),
                           "hand_right_keypoints_2d": p[116:].ravel().tolist()} for p in people]}  # fmt: skip
        (folder / f"v_{t:012d}_keypoints.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("via_disk", [False, True])
def test_bystander_listed_first_is_not_chosen(tmp_path: Path, via_disk: bool) -> None:
    """Through ingest: further people reach normalise in memory and from the saved store."""
    main, other = person(8, (300, 200)), person(8, (600, 220), conf=1.0, seed=3)
    frames = [[main[t]] if t < 3 else [other[t], main[t]] for t in range(8)]
    _write_frames(tmp_path / "c" / "v1", frames)
    _write_frames(tmp_path / "c" / "v2", [[main[t]] for t in range(8)])
    header = "name|video|start|end|speaker|orth|translation\n"
    (tmp_path / "c" / "x.train.corpus.csv").write_text(header + "v1|v1|||A|G|t .\nv2|v2|||A|G|t .\n")
    stores, _ = ingest(DataConfig(source="openpose", path=str(tmp_path / "c")))
    saved = tmp_path / "ingested"
    if via_disk:
        stores["train"].save(saved)
        stores = {"train": SplitStore.load(saved, mmap=True)}
    assert stores["train"].extra_people is not None and len(stores["train"].extra_people[0]) == 5
    out, transform, _ = normalise(stores, NormaliseConfig())
    back = denormalise(out["train"].sequence(0), transform, out["train"].index[0])
    np.testing.assert_allclose(back[..., :2], manual_pixels(main), atol=1e-3)
    if via_disk:  # the sparse arrays are required when n_people says there are several people
        (saved / "extra_people.npy").unlink()
        with pytest.raises(NormaliseError, match="n_people records 5 further people but 0 are stored"):
            normalise({"train": SplitStore.load(saved)}, NormaliseConfig())


def test_interpolation_weighted_and_held() -> None:
    T = 6
    xy = np.zeros((T, 1, 2))
    xy[:, 0, 0] = [0, 99, 99, 30, 99, 99]
    conf = np.array([[0.5], [0], [0], [0.5], [0], [0]])
    out, counts = interpolate(xy, conf, conf < 0.1)
    np.testing.assert_allclose(out[:, 0, 0], [0, 10, 20, 30, 30, 30])  # linear, then held
    assert (counts["joints_interpolated"], counts["joints_held"]) == (2, 2)
    conf[3] = 1.0  # the more confident neighbour pulls harder: w_a = .5 * 2, w_b = 1 * 1
    out, _ = interpolate(xy, conf, conf < 0.1)
    assert out[1, 0, 0] == pytest.approx((0.5 * 2 * 0 + 1.0 * 1 * 30) / (0.5 * 2 + 1.0 * 1))
    out, _ = interpolate(xy, np.zeros((T, 1)), np.ones((T, 1), bool))
    assert np.isnan(out).all()  # never seen: left to the caller


def test_missing_joints_filled_with_confidence_zero() -> None:
    stores = splits()
    dev = person(9, (250, 180), 1.3, 7)
    dev[4:6, 100, 2] = 0.02  # left-hand joint 5 missing in frames 4, 5
    dev[:, 120, 2] = 0.0  # right-hand joint 4 never seen in this sequence
    stores["dev"] = store([dev])
    out, transform, metrics = normalise(stores, NormaliseConfig())
    v = out["dev"].sequence(0)
    j_lost, j_never = list(RAW_TO_MANUAL).index(100), list(RAW_TO_MANUAL).index(120)
    assert (v[4:6, j_lost, 2] == 0).all() and (v[:4, j_lost, 2] > 0).all()
    assert (v[:, j_never, 2] == 0).all()
    assert metrics["dev"]["joints_interpolated"] == 2 and metrics["dev"]["joints_filled_mean"] == 9
    # the never-seen joint sits at the train mean body-relative position
    train_body = np.concatenate([denormalise(s, transform) for s in out["train"].sequences()])
    body = denormalise(v, transform)
    np.testing.assert_allclose(
        body[:, j_never, :2], train_body[:, j_never, :2].mean(0)[None].repeat(9, 0), atol=1e-5
    )


def test_face_adds_70_joints() -> None:
    out, _, _ = normalise(splits(), NormaliseConfig(face=True))
    assert out["train"].poses.shape[1] == 120 and out["train"].joints[50] == "face_face0"


def test_needs_train_and_drops_unusable_sequences() -> None:
    with pytest.raises(NormaliseError, match="non-empty train split"):
        normalise({"dev": splits()["dev"]}, NormaliseConfig())
    stores = splits()
    bad = person(5)
    bad[:, [2, 5], 2] = 0  # shoulders never seen: no scale
    stores["dev"] = store([bad, person(4)])
    out, _, metrics = normalise(stores, NormaliseConfig())
    assert metrics["dev"]["sequences_dropped_no_shoulders"] == 1 and len(out["dev"]) == 1


def test_implausible_sequence_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """Wrists and hands 90 shoulder widths from the body in every frame: the sequence is dropped."""
    stores = splits()
    bad = person(9, (250, 180), 1.0, 8)
    bad[:, [4, 7], 0] -= 9000
    bad[:, 95:137, 0] -= 9000
    stores["dev"] = store([bad, person(4)])
    out, _, metrics = normalise(stores, NormaliseConfig())
    m = metrics["dev"]
    assert (m["sequences_dropped_implausible"], m["sequences_dropped"], m["sequences"]) == (1, 1, 1)
    assert len(out["dev"]) == 1 and out["dev"].index[0]["name"] == "s1"
    assert "dev/s0: 9 of 9 kept frames (more than normalise.max_implausible_frames=0.25" in caplog.text
    # implausible in 2 of 9 frames (<= max_implausible_frames): kept, those joints missing
    stores["dev"] = store([person(9, (250, 180), 1.0, 8)])
    glitch = stores["dev"].sequence(0).copy()
    glitch[[3, 6], 4, 0] += 1000  # right wrist 10 shoulder widths away
    stores["dev"] = store([glitch])
    out, transform, metrics = normalise(stores, NormaliseConfig())
    m = metrics["dev"]
    assert (m["sequences_dropped_implausible"], m["joints_implausible"]) == (0, 2)
    v = out["dev"].sequence(0)
    assert (v[[3, 6], 4, 2] == 0).all() and (v[[2, 4, 5, 7], 4, 2] > 0).all()
    back = denormalise(v, transform, out["dev"].index[0])
    np.testing.assert_allclose(back[3, 4, :2], (glitch[2, 4, :2] + glitch[4, 4, :2]) / 2, atol=1e-3)
    # a looser max_reach keeps them; max_implausible_frames 0 drops the sequence
    _, _, metrics = normalise(stores, NormaliseConfig(max_reach=20))
    assert metrics["dev"]["joints_implausible"] == 0
    _, _, metrics = normalise(stores, NormaliseConfig(max_implausible_frames=0))
    assert metrics["dev"]["sequences_dropped_implausible"] == 1


def test_outlier_in_train_does_not_squeeze_map() -> None:
    """A hand 50 shoulder widths away in 2 frames of one of 21 train sequences (hand joints are not
    checked for reach): left out of the fit and clipped, the other sequences keep their spread."""
    clean = [person(12, (300 + 7 * k, 200 - 3 * k), 1 + 0.02 * k, k) for k in range(20)]
    odd = person(12, (300, 200), 1.0, 20)
    odd[[4, 5], 95:116, 0] += 5000
    out, transform, metrics = normalise({"train": store([*clean, odd])}, NormaliseConfig())
    m = metrics["train"]
    assert (m["values_outlier"], m["values_clipped"], m["sequences"]) == (42, 42, 21)
    v = out["train"].poses[: 20 * 12, :, :2]  # the clean sequences
    assert (v.max(axis=(0, 1)) - v.min(axis=(0, 1)) > 0.85).all()
    assert out["train"].sequence(20)[[4, 5], 8:29, 0].max() == 1.0  # clipped
    # without the outlier the map is the plain min/max fit of the same values
    _, plain, metrics = normalise({"train": store(clean)}, NormaliseConfig())
    assert metrics["train"]["values_outlier"] == 0 and metrics["train"]["values_clipped"] == 0
    np.testing.assert_allclose(transform.high, plain.high, atol=0.1)
    np.testing.assert_allclose(transform.low, plain.low, atol=0.1)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"face": "yes"}, "normalise.face='yes'"),
        ({"min_body_joints": 0}, "normalise.min_body_joints=0"),
        ({"min_body_joints": 9}, "normalise.min_body_joints=9"),
        ({"min_confidence": 1.5}, "normalise.min_confidence=1.5"),
        ({"min_confidence": -0.1}, "normalise.min_confidence=-0.1"),
        ({"margin": -1}, "normalise.margin=-1"),
        ({"max_reach": 0}, "normalise.max_reach=0"),
        ({"max_implausible_frames": 1.5}, "normalise.max_implausible_frames=1.5"),
        ({"outlier_range": 0}, "normalise.outlier_range=0"),
        ({"min_conf": 0.1}, "unknown key"),
    ],
)
def test_invalid_params(section: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message.replace(".", r"\.").replace("[", r"\[")):
        parse_section({"normalise": section}, "normalise", NormaliseConfig)


def test_unitrange_inverse_is_exact() -> None:
    u = np.random.default_rng(0).normal(size=(50, 3))
    t = UnitRange.fit(u)
    np.testing.assert_allclose(denormalise(t.forward(u), t), u, atol=1e-12)
