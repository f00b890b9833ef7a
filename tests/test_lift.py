"""Tests of the lifting (pipeline/lifting/: bones, depth signs, lift, metrics) and the lift stage."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import need_shared
from scipy.spatial.transform import Rotation

from pipeline.config import ParamsError, parse_section, resolve_device
from pipeline.data.skeleton import MANUAL_FACE_JOINTS, MANUAL_JOINTS, MANUAL_PARENTS, MIRROR_JOINT, PARTS
from pipeline.data.store import SplitStore, StoreError
from pipeline.data.transform import UnitRange
from pipeline.lifting import bones as K
from pipeline.lifting import depth_signs, knn_prior, lift
from pipeline.lifting.config import LiftConfig
from pipeline.lifting.metrics import (
    bone_length_cv,
    mpjpe_pa,
    procrustes_align,
    reprojection_error,
    shoulder_width,
)
from pipeline.lifting.toy import project, synthetic_signer
from pipeline.stages import lift as lift_stage

CFG = LiftConfig(iterations=30, batch_frames=4096)
CPU = torch.device("cpu")


def _observe(gt: np.ndarray, rng: np.random.Generator, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic 2D of a body-centred 3D sequence, re-normalised by the 2D shoulder width."""
    p = project(gt) + rng.normal(0, noise, gt[..., :2].shape)
    p = (p - p[:, K.ROOT : K.ROOT + 1]) / np.linalg.norm(p[:, 2] - p[:, 5], axis=-1).mean()
    return p, np.ones(p.shape[:2])


def _pa(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE after similarity Procrustes, as a fraction of the truth's shoulder width."""
    return float(np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean() / shoulder_width(gt))


# -- kinematic tree -------------------------------------------------------------------------
def test_tree_bones_levels_and_symmetry():
    assert K.N_BONES == 49 and MANUAL_JOINTS.index("body_neck") == K.ROOT
    # every bone's parent joint is placed at a lower level than its child
    seen = {K.ROOT}
    for level in K.BONE_LEVELS:
        assert all(int(p) in seen for p in K.BONE_PARENT[level])
        seen |= {int(c) for c in K.BONE_CHILD[level]}
    assert seen == set(range(50))
    # a bone and its mirror share a class and a prior length; the classes are distinct otherwise
    for b, c in enumerate(K.BONE_CHILD):
        mb = int(np.flatnonzero(MIRROR_JOINT[c] == K.BONE_CHILD)[0])
        assert K.BONE_CLASS[b] == K.BONE_CLASS[mb]
        assert K.PRIOR_LENGTHS[b] == K.PRIOR_LENGTHS[mb]
        assert MANUAL_PARENTS[MIRROR_JOINT[c]] == MIRROR_JOINT[MANUAL_PARENTS[c]]
    assert K.N_CLASSES == 25
    assert K.PRIOR_LENGTHS[K.BONE_CHILD.tolist().index(2)] == 0.5  # neck->shoulder: half width


def test_bone_lengths_and_cv():
    rng = np.random.default_rng(0)
    x = synthetic_signer(20, rng)
    lengths = K.bone_lengths(x)
    assert lengths.shape == (20, 49)
    np.testing.assert_allclose(lengths, lengths[:1].repeat(20, 0), atol=1e-9)  # rigid bones
    for b, c in enumerate(K.BONE_CHILD):  # exact left/right symmetry of the generator
        mb = int(np.flatnonzero(MIRROR_JOINT[c] == K.BONE_CHILD)[0])
        assert lengths[0, b] == pytest.approx(lengths[0, mb])
    assert bone_length_cv(x) < 1e-9
    y = x.copy()
    y[::2, 3] += 0.2  # move the right elbow every other frame
    assert bone_length_cv(y) > 1e-3  # two of 48 bones vary by ~10 %


def test_rest_pose_has_prior_lengths_mirror_symmetry_and_head_up():
    rest = K.rest_pose()
    assert rest.shape == (50, 3) and np.array_equal(rest[K.ROOT], [0, 0, 0])
    np.testing.assert_allclose(K.bone_lengths(rest), K.PRIOR_LENGTHS, rtol=1e-12)
    # left/right mirror: x flips, y and z stay (central joints have x = 0)
    np.testing.assert_allclose(rest[MIRROR_JOINT], rest * [-1, 1, 1], atol=1e-12)
    assert rest[K.NOSE, 1] < rest[K.ROOT, 1]  # image y points down: the nose is above the neck
    r_shoulder, r_wrist = MANUAL_JOINTS.index("body_r_shoulder"), MANUAL_JOINTS.index("body_r_wrist")
    assert rest[r_shoulder, 0] < 0 and rest[r_wrist, 1] > rest[r_shoulder, 1]  # right side, arms hang


def test_fill_missing_interpolates_and_places_unseen_joints_by_the_rest_pose():
    rng = np.random.default_rng(12)
    p = _observe(synthetic_signer(6, rng), rng)[0]
    conf = np.ones(p.shape[:2], bool)
    elbow, wrist = MANUAL_JOINTS.index("body_r_elbow"), MANUAL_JOINTS.index("body_r_wrist")
    conf[2:4, elbow] = False  # seen in frames 0, 1, 4, 5: linear in time between frames 1 and 4
    hand = [j for j, n in enumerate(MANUAL_JOINTS) if n.startswith("rhand_")]
    conf[:, hand] = False  # the right hand is never seen
    out = lift.fill_missing(p, conf)
    np.testing.assert_array_equal(out[conf], p[conf])
    np.testing.assert_allclose(out[2, elbow], p[1, elbow] + (p[4, elbow] - p[1, elbow]) / 3)
    np.testing.assert_allclose(out[3, elbow], p[1, elbow] + 2 * (p[4, elbow] - p[1, elbow]) / 3)
    # an unseen joint sits at its (filled) parent plus its rest-pose 2D offset: the whole hand
    # hangs off the observed body wrist as in the rest pose
    rest = K.rest_pose()[:, :2]
    for j in hand:
        offset = np.broadcast_to(rest[j] - rest[wrist], (6, 2))
        np.testing.assert_allclose(out[:, j] - out[:, wrist], offset, atol=1e-12)


def test_procrustes_undoes_similarity_but_not_reflection():
    rng = np.random.default_rng(1)
    gt = synthetic_signer(10, rng)
    rot = Rotation.from_euler("xyz", [0.3, -1.0, 2.0])
    moved = 2.5 * rot.apply(gt.reshape(-1, 3)).reshape(gt.shape) + [1.0, -2.0, 3.0]
    assert _pa(moved, gt) < 1e-6
    flipped = gt * [1, 1, -1]  # depth flip = reflection: must stay an error
    assert _pa(flipped, gt) > 0.05


def test_mpjpe_pa_reports_each_hand_and_their_mean():
    rng = np.random.default_rng(3)
    gt = synthetic_signer(20, rng)
    assert all(v < 1e-6 for v in mpjpe_pa(gt * 1.7 + 0.3, gt).values())  # a similarity: no error
    pred = gt.copy()
    pred[:, PARTS["right_hand"]] += rng.normal(0, 0.02, pred[:, PARTS["right_hand"]].shape)  # only it errs
    e = mpjpe_pa(pred, gt)
    assert set(e) == {"body", "hands", "left_hand", "right_hand"}
    assert e["right_hand"] > 3 * e["left_hand"] and e["right_hand"] > 3 * e["body"]
    assert e["hands"] == pytest.approx((e["left_hand"] + e["right_hand"]) / 2)  # 21 joints each
    assert mpjpe_pa(pred, np.full_like(gt, np.nan)) == {}  # no finite ground truth: nothing to report


# -- lifting ---------------------------------------------------------------------------------
def test_known_synthetic_case_recovered():
    # a signer for whom the priors hold: elbows behind the shoulder line, average proportions;
    # the generator turns the body by up to +-29 deg, so the shoulders have real depth: no
    # frontal-shoulder prior (shoulder_quantile) here
    rng = np.random.default_rng(2)
    gts = [synthetic_signer(60, rng, elbow_back=1.5) for _ in range(4)]
    obs = [_observe(g, rng, 0.002) for g in gts]
    cfg = dataclasses.replace(CFG, length_floor=1.0, shoulder_quantile=None)
    out = lift.lift_sequences([o[0] for o in obs], [o[1] for o in obs], list("abcd"), cfg, CPU)
    errs, flats = [], []
    for o, g, (p, _) in zip(out, gts, obs, strict=True):
        assert o.shape == (60, 50, 3)
        errs.append(_pa(o, g))
        flats.append(_pa(np.concatenate([p, np.zeros((60, 50, 1))], -1), g))
        assert reprojection_error(o, p, np.ones((60, 50)), 0.1) < 0.04
        assert bone_length_cv(o) < 1e-4  # rigid output: one length per bone
        assert o[:, K.ROOT, 2].max() == 0  # the root carries no depth
        assert np.median(o[:, 4, 2]) < 0 and np.median(o[:, 7, 2]) < 0  # wrists in front
    # MPJPE-PA (fraction of shoulder width): well below the flat (z = 0) solution
    assert np.mean(errs) < 0.15
    assert np.mean(errs) < 0.75 * np.mean(flats)


def test_true_lengths_and_signs_give_exact_depth():
    rng = np.random.default_rng(3)
    g = synthetic_signer(40, rng)
    L = np.zeros(K.N_CLASSES)
    L[K.BONE_CLASS] = K.bone_lengths(g)[0]
    z = depth_signs.initial_depth(torch.tensor(g[None, ..., :2]), torch.tensor(L[None]), CFG)[0].numpy()
    dz, dz_true = z[:, K.BONE_CHILD] - z[:, K.BONE_PARENT], K.bone_vectors(g)[..., 2]
    np.testing.assert_allclose(np.abs(dz), np.abs(dz_true), atol=1e-6)


def test_zero_confidence_joints_do_not_pull_the_fit():
    rng = np.random.default_rng(4)
    g = synthetic_signer(40, rng)
    p, c = _observe(g, rng, 0.002)
    drop = rng.random(c.shape) < 0.1
    drop[:, K.ROOT] = False
    c[drop] = 0.0
    base = lift.lift_sequences([p], [c], ["s"], CFG, CPU)[0]
    corrupt = p.copy()
    corrupt[drop] = rng.uniform(-50, 50, (drop.sum(), 2))
    again = lift.lift_sequences([corrupt], [c], ["s"], CFG, CPU)[0]
    np.testing.assert_allclose(again, base, atol=1e-4)
    assert np.abs(base).max() < 5  # the wild values did not leak in


def test_deterministic_and_independent_of_batching():
    rng = np.random.default_rng(5)
    obs = [_observe(synthetic_signer(n, rng), rng, 0.01) for n in (30, 45, 50)]
    pts, cs = [o[0] for o in obs], [o[1] for o in obs]
    a = lift.lift_sequences(pts, cs, list("abc"), CFG, CPU)
    b = lift.lift_sequences(pts, cs, list("abc"), CFG, CPU)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    one = lift.lift_sequences(pts[:1], cs[:1], ["a"], CFG, CPU)[0]
    np.testing.assert_allclose(one, a[0], atol=1e-4)


@pytest.mark.parametrize(
    ("kind", "message"),
    [("zeros", "all-zero"), ("nan", "non-finite"), ("noconf", "no joint has confidence")],
)
def test_bad_sequences_are_named(kind, message):
    rng = np.random.default_rng(6)
    good = _observe(synthetic_signer(10, rng), rng)
    p, c = good[0].copy(), good[1].copy()
    if kind == "zeros":
        p[:] = 0.0
    elif kind == "nan":
        p[3, 7, 1] = np.nan
    else:
        c[:] = 0.0
    with pytest.raises(lift.LiftError, match=rf"'dev/broken'.*{message}"):
        lift.lift_sequences([good[0], p], [good[1], c], ["dev/ok", "dev/broken"], CFG, CPU)


def _lift_section(**values: object) -> LiftConfig:
    """The ``lift`` section ``values`` parsed as params.yaml is."""
    return parse_section({"lift": values}, "lift", LiftConfig)


def test_config_validation():
    assert _lift_section(iterations=5).iterations == 5
    with pytest.raises(ParamsError, match=r"unknown key\(s\) lift.bogus"):
        _lift_section(bogus=1)
    with pytest.raises(ParamsError, match="lift.device='tpu' is invalid"):
        _lift_section(device="tpu")
    assert _lift_section(shoulder_quantile=None).shoulder_quantile is None
    for bad in (0.0, 1.5):
        with pytest.raises(ParamsError, match=rf"lift.shoulder_quantile={bad}"):
            _lift_section(shoulder_quantile=bad)
    assert resolve_device("cpu", "lift.device") == CPU
    if not torch.cuda.is_available():
        with pytest.raises(ParamsError, match="lift.device='cuda': CUDA is not available"):
            resolve_device("cuda", "lift.device")


# -- sign selection and length components ------------------------------------------------------
J = MANUAL_JOINTS.index


def test_viterbi_prefers_cheap_path_and_ignores_padding():
    # 2 states; 4 real frames (frame 2 slightly prefers state 0), then 3 padded frames preferring 0
    unary = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.2], [1.0, 0.0], [0.0, 9.0], [0.0, 9.0], [0.0, 9.0]])
    unary = unary[None, :, None]  # [1, 7, 1, 2]
    trans = torch.tensor([[0.0, 0.5], [0.5, 0.0]]).expand(1, 6, 1, 2, 2)
    # real frames alone: stay in state 1 (0.2 is cheaper than two switches of 0.5)
    assert depth_signs.viterbi(unary[:, :4], trans[:, :3])[0, :, 0].tolist() == [1, 1, 1, 1]
    valid = torch.tensor([[1.0, 1, 1, 1, 0, 0, 0]])
    assert depth_signs.viterbi(unary, trans, valid)[0, :4, 0].tolist() == [1, 1, 1, 1]
    assert depth_signs.viterbi(unary, trans)[0, :, 0].tolist() == [1, 1, 1, 1, 0, 0, 0]  # without the mask


def test_torso_weight():
    pts = torch.tensor([[0.0, 0.5], [0.4, 0.5], [-0.6, 0.5], [0.0, -0.2], [0.0, 1.5], [-0.3, 1.0]])
    w = depth_signs.torso_weight(pts[None, None], CFG)[0, 0]
    np.testing.assert_allclose(w.numpy(), [1.0, 0.5, 0.0, 0.0, 0.0, 1.0])  # soft edge at |x| = 0.4


def _arm_frame(wrist: list[float]) -> torch.Tensor:
    """One frame: right shoulder (-0.5, 0), elbow (-0.6, 0.5), wrist as given; left arm hanging."""
    xy = np.zeros((1, 1, 50, 2))
    xy[..., J("body_r_shoulder"), :], xy[..., J("body_l_shoulder"), :] = [-0.5, 0.0], [0.5, 0.0]
    xy[..., J("body_r_elbow"), :], xy[..., J("body_r_wrist"), :] = [-0.6, 0.5], wrist
    xy[..., J("body_l_elbow"), :], xy[..., J("body_l_wrist"), :] = [0.5, 0.8], [0.5, 1.48]
    return torch.tensor(xy)


def test_arm_signs_keep_a_wrist_over_the_torso_in_front_of_the_chest():
    L = np.zeros(K.N_CLASSES)
    L[K.BONE_CLASS] = K.PRIOR_LENGTHS  # upper arm 0.8, forearm 0.68: depth steps 0.616, 0.512
    cfg = dataclasses.replace(CFG, w_torque=0.0, w_space=0.0)
    z = depth_signs.initial_depth(_arm_frame([-0.2, 0.7]), torch.tensor(L[None]), cfg)[0, 0]
    # of the four sign pairs (wrist z +1.13, +0.10, -0.10, -1.13) only both forward clears the chest
    assert float(z[J("body_r_elbow")]) == pytest.approx(-0.616, abs=1e-3)
    assert float(z[J("body_r_wrist")]) == pytest.approx(-1.128, abs=1e-3)
    assert float(z[J("body_r_wrist")]) < -cfg.torso_depth


def test_arm_signs_minimum_torque_bends_the_arm():
    L = np.zeros(K.N_CLASSES)
    L[K.BONE_CLASS] = K.PRIOR_LENGTHS
    cfg = dataclasses.replace(CFG, w_torso=0.0, w_space=0.0, w_torque=1.0)
    z = depth_signs.initial_depth(_arm_frame([-0.9, 0.7]), torch.tensor(L[None]), cfg)[0, 0]
    # the arm's centre of mass nearest the shoulder: upper arm and forearm go opposite ways
    dz_upper = float(z[J("body_r_elbow")] - z[J("body_r_shoulder")])
    dz_fore = float(z[J("body_r_wrist")] - z[J("body_r_elbow")])
    assert abs(dz_upper) == pytest.approx(0.616, abs=1e-3) and abs(dz_fore) == pytest.approx(0.577, abs=1e-3)
    assert dz_upper * dz_fore < 0
    # adding the signing-space cost picks the bent pose with the wrist in front (elbow forward)
    cfg = dataclasses.replace(cfg, w_space=1.0)
    z = depth_signs.initial_depth(_arm_frame([-0.9, 0.7]), torch.tensor(L[None]), cfg)[0, 0]
    assert float(z[J("body_r_elbow")]) == pytest.approx(-0.616, abs=1e-3)
    assert float(z[J("body_r_wrist")]) == pytest.approx(-0.616 + 0.577, abs=1e-3)


def test_length_smoothing_removes_jitter_inflation():
    rng = np.random.default_rng(10)
    g = synthetic_signer(200, rng)
    p, c = _observe(g, rng, noise=0.03)
    true = np.zeros(K.N_CLASSES)
    sw2d = np.linalg.norm(project(g)[:, 2] - project(g)[:, 5], axis=-1).mean()  # as _observe
    true[K.BONE_CLASS] = K.bone_lengths(g)[0] / sw2d
    arm = K.BONE_CLASS[K.ARM_BONES[0]]  # right upper arm, forearm
    raw = lift.init_lengths(p, c > 0, dataclasses.replace(CFG, length_smooth=0.0))
    smooth = lift.init_lengths(p, c > 0, dataclasses.replace(CFG, length_smooth=1.0))
    # jitter inflates the high quantile; smoothing the 2D first removes most of that bias
    assert (np.abs(smooth[arm] / true[arm] - 1) < np.abs(raw[arm] / true[arm] - 1)).all()
    assert (np.abs(smooth[arm] / true[arm] - 1) < 0.05).all()


def test_low_shoulder_quantile_keeps_frontal_shoulders_flat():
    # a signer facing the camera: 2D shoulders at +-0.5 with detector jitter, arms as generated
    rng = np.random.default_rng(11)
    p, c = _observe(synthetic_signer(120, rng), rng, noise=0.002)
    for j, sx in ((J("body_r_shoulder"), -0.5), (J("body_l_shoulder"), 0.5)):
        p[:, j] = [sx, 0.0] + rng.normal(0, 0.02, (len(p), 2))
    depth = {}
    for q in (None, 0.05):
        cfg = dataclasses.replace(CFG, shoulder_quantile=q)
        L = lift.init_lengths(p, c > 0, cfg)[K.SHOULDER_CLASS]
        half = np.median(np.linalg.norm(p[:, J("body_r_shoulder")] - p[:, K.ROOT], axis=-1))
        assert (L - half > 0.005) if q is None else (half - L > 0.005)
        out = lift.lift_sequences([p], [c], ["s"], cfg, CPU)[0]
        depth[q] = np.abs(out[:, [J("body_r_shoulder"), J("body_l_shoulder")], 2]).mean()
    # jitter turns a long shoulder bone into fake body yaw; a short one stays in the image plane
    assert depth[0.05] < 0.4 * depth[None] and depth[0.05] < 0.05


# -- stage -----------------------------------------------------------------------------------
def _write_normalised(root: Path, three_d: bool, face: bool = False) -> dict[str, list[np.ndarray]]:
    """data/normalised/{train,dev,test} + transform.json of synthetic signers (2D with confidences,
    or their 3D); returns the 3D truths ``gt`` and the unnormalised sequences ``raw`` per split."""
    rng = np.random.default_rng(7)
    joints = MANUAL_FACE_JOINTS if face else MANUAL_JOINTS
    gts, raw = {}, {}
    for split, n in (("train", 3), ("dev", 2), ("test", 1)):
        gts[split] = [synthetic_signer(int(rng.integers(20, 30)), rng) for _ in range(n)]
        seqs = []
        for g in gts[split]:
            if three_d:
                seqs.append(g)
                continue
            p, c = _observe(g, rng, 0.003)
            if face:
                fp = p[:, :1] + rng.normal(0, 0.05, (len(p), 70, 2))
                p, c = np.concatenate([p, fp], 1), np.concatenate([c, np.ones((len(p), 70))], 1)
            seqs.append(np.concatenate([p, c[..., None]], -1))
        raw[split] = seqs
    dims = 3 if three_d else 2
    tf = UnitRange.fit(np.concatenate([s[..., :dims] for s in raw["train"]]).reshape(-1, dims), margin=0.1)
    (root / "data/normalised").mkdir(parents=True)
    tf.save(root / "data/normalised/transform.json")
    for split, seqs in raw.items():
        mapped = [np.concatenate([tf.forward(s[..., :dims]), s[..., dims:]], -1) for s in seqs]
        idx = [{"name": f"{split}-{i}", "text": "x"} for i in range(len(seqs))]
        SplitStore.from_sequences(
            mapped, idx, joints, ["x", "y", "z"] if three_d else ["x", "y", "c"],
            arrays={"gt3d": gts[split]},
        ).save(root / "data/normalised" / split)  # fmt: skip
    return {"gt": gts, "raw": raw}


def _run_stage(workspace: Callable[..., Path], **lift_params: object) -> dict:
    """Run the lift stage in the workspace (cwd) and return metrics/lift.json."""
    section = {"iterations": 20, "batch_frames": 2048, "device": "cpu", **lift_params}
    root = workspace(profile="default", seed=3, lift=section)
    lift_stage.main([])
    return json.loads((root / "metrics/lift.json").read_text())


def test_stage_2d_outputs_inverse_and_metrics(tmp_path, workspace):
    made = _write_normalised(tmp_path, three_d=False, face=True)
    metrics = _run_stage(workspace)
    tf = UnitRange.load(tmp_path / "data/lifted/transform.json")
    for split in ("train", "dev", "test"):
        st = SplitStore.load(tmp_path / "data/lifted" / split)
        assert st.channels == ["x", "y", "z"] and st.joints == MANUAL_FACE_JOINTS
        assert st.poses.min() >= 0 and st.poses.max() <= 1
        assert "gt3d" in st.arrays and len(st) == len(made["gt"][split])
        assert metrics[split]["mpjpe_pa_body"] < 0.3 and metrics[split]["mpjpe_pa_hands"] < 0.3
        assert "clipped_values" in metrics[split]
        u = tf.inverse(st.poses)
        np.testing.assert_allclose(tf.forward(u), st.poses, atol=1e-5)  # round trip
        # face points sit at the nose's depth; the root at depth 0
        np.testing.assert_allclose(u[:, 50:, 2], np.repeat(u[:, K.NOSE : K.NOSE + 1, 2], 70, 1), atol=1e-5)
        np.testing.assert_allclose(u[:, K.ROOT, 2], 0, atol=1e-5)
    assert metrics["train"]["clipped_values"] == 0
    assert metrics["frames_per_s"] > 0


def test_stage_3d_passes_through(tmp_path, workspace):
    made = _write_normalised(tmp_path, three_d=True)
    metrics = _run_stage(workspace)
    tf = UnitRange.load(tmp_path / "data/lifted/transform.json")
    for split in ("train", "dev", "test"):
        st = SplitStore.load(tmp_path / "data/lifted" / split)
        u = tf.inverse(st.poses)
        expect = np.concatenate(made["raw"][split])
        inside = (st.poses > 0) & (st.poses < 1)  # values not clipped come back exactly
        np.testing.assert_allclose(u[inside], expect[inside], atol=1e-5)
        assert metrics[split]["mpjpe_pa_body"] < 1e-4
    assert metrics["train"]["clipped_values"] == 0


def test_stage_rejects_bad_sequence(tmp_path, workspace):
    _write_normalised(tmp_path, three_d=False)
    d = tmp_path / "data/normalised/dev"
    poses = np.load(d / "poses.npy")
    off = np.load(d / "offsets.npy")
    poses[off[1] : off[2]] = 0.0
    np.save(d / "poses.npy", poses)
    with pytest.raises(lift.LiftError, match=r"'dev/dev-1'"):
        _run_stage(workspace)


def test_stage_names_a_missing_split(tmp_path, workspace):
    _write_normalised(tmp_path, three_d=False)
    shutil.rmtree(tmp_path / "data/normalised/test")
    with pytest.raises(StoreError, match=r"data/normalised: no test split"):
        _run_stage(workspace)
    assert not (tmp_path / "data/lifted").exists()


def test_real_czech_frames_lift_consistently():
    data = np.load(need_shared("data", "openpose-czech-demo") / "selected_2d.npz")
    for name in data.files:
        a = data[name].reshape(-1, 50, 3)
        p, c = a[..., :2], a[..., 2]
        sw = np.linalg.norm(p[:, 2] - p[:, 5], axis=-1).mean()
        u = (p - p[:, K.ROOT : K.ROOT + 1]) / sw
        out = lift.lift_sequences([u], [c], [name], CFG, CPU)[0]
        assert np.isfinite(out).all()
        assert reprojection_error(out, u, c, CFG.min_confidence) < 0.05
        assert bone_length_cv(out) < 0.05


# -- the learned depth prior (lift.method: knn) -----------------------------------------------
def _bank_case(rng: np.random.Generator, n: int, T: int = 40) -> tuple[list[np.ndarray], list, list]:
    gts = [synthetic_signer(T, rng) for _ in range(n)]
    obs = [_observe(g, rng, 0.002) for g in gts]
    return gts, [o[0] for o in obs], [o[1] for o in obs]


def test_knn_depth_is_the_neighbours_depth_and_never_the_own_sequence():
    rng = np.random.default_rng(5)
    gts, pts, _ = _bank_case(rng, 6, 20)
    bank = knn_prior.build_bank(pts, gts)
    assert len(bank) == 6 * 20 and bank.basis.shape == (100, 100)
    # depth relative to the neck, in the 2D's scale: the least-squares scale of the truth's x, y
    g0 = gts[0] - gts[0][:, K.ROOT : K.ROOT + 1]
    p0 = pts[0] - pts[0][:, K.ROOT : K.ROOT + 1]
    scale = (g0[..., :2] * p0).sum() / (g0[..., :2] ** 2).sum()
    np.testing.assert_allclose(bank.depth[:20], scale * g0[..., 2], rtol=1e-5, atol=1e-6)
    # a bank frame queried with k = 1 returns its own depth; excluded, it never comes from its sequence
    np.testing.assert_allclose(knn_prior.knn_depth(bank, pts[0][:5], 1), bank.depth[:5], atol=1e-6)
    other = knn_prior.knn_depth(bank, pts[0][:5], 1, exclude=np.zeros(5, int))
    same = (other[:, None] == bank.depth[None]).all(-1)  # [5, N] which bank frame was used
    assert same.any(1).all() and not same[:, bank.sequence == 0].any()
    # fewer principal axes, stride: a smaller bank, still a depth of the right shape
    small = knn_prior.build_bank(pts, gts, stride=4, dims=8)
    assert len(small) == 6 * 5 and small.features(pts[1]).shape == (20, 8)
    assert knn_prior.knn_depth(small, pts[1], 3).shape == (20, 50)


def test_knn_lifting_beats_the_sign_costs_where_the_bank_knows_the_poses():
    rng = np.random.default_rng(6)
    gts, pts, _ = _bank_case(rng, 10)
    bank = knn_prior.build_bank(pts, gts)
    cfg = dataclasses.replace(CFG, method="knn", shoulder_quantile=None)
    # two of the bank's sequences seen again through other detector noise: same 3D, other 2D
    truth = gts[8:]
    seen = [_observe(g, rng, 0.01) for g in truth]
    q_pts, q_cs = [o[0] for o in seen], [o[1] for o in seen]
    depth0 = lift.knn_initial_depth(q_pts, q_cs, bank, cfg)
    knn_out = lift.lift_sequences(q_pts, q_cs, ["a", "b"], cfg, CPU, depth0)
    vit_cfg = dataclasses.replace(cfg, method="viterbi")
    vit_out = lift.lift_sequences(q_pts, q_cs, ["a", "b"], vit_cfg, CPU)
    knn_err = np.mean([_pa(o, g) for o, g in zip(knn_out, truth, strict=True)])
    vit_err = np.mean([_pa(o, g) for o, g in zip(vit_out, truth, strict=True)])
    assert knn_err < 0.5 * vit_err and knn_err < 0.08
    assert all(bone_length_cv(o) < 1e-4 for o in knn_out)  # still rigid


def test_stage_knn_learns_from_train_3d(tmp_path, workspace):
    _write_normalised(tmp_path, three_d=False, face=False)
    metrics = _run_stage(workspace, method="knn", knn_stride=1)
    assert metrics["method"] == "knn" and metrics["knn_bank_frames"] > 0
    assert metrics["test"]["mpjpe_pa_body"] < 0.3 and metrics["test"]["bone_length_cv"] < 1e-4


def test_stage_knn_without_3d_falls_back_to_viterbi_and_says_so(tmp_path, workspace, capfd):
    _write_normalised(tmp_path, three_d=False, face=False)
    train = SplitStore.load(tmp_path / "data/normalised/train")
    dataclasses.replace(train, arrays={}).save(tmp_path / "data/normalised/train")
    metrics = _run_stage(workspace, method="knn")
    assert metrics["method"] == "viterbi" and "knn_bank_frames" not in metrics
    assert "no 3D (gt3d) to learn from" in capfd.readouterr().err


def test_stage_knn_with_a_one_sequence_train_split_names_the_problem(tmp_path, workspace):
    _write_normalised(tmp_path, three_d=False, face=False)
    train = SplitStore.load(tmp_path / "data/normalised/train")
    one = SplitStore.from_sequences(
        [train.sequence(0)], train.index[:1], train.joints, train.channels,
        arrays={"gt3d": [train.sequence(0, "gt3d")]},
    )  # fmt: skip
    one.save(tmp_path / "data/normalised/train")
    with pytest.raises(
        lift.LiftError, match=r"train: lift.method knn: the depth bank has 0 frames outside fold 0"
    ):
        _run_stage(workspace, method="knn")
