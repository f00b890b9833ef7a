"""Tests of the Zelinka & Kanis port (pipeline/lifting/zelinka_kanis.py, ``lift.method: zelinka_kanis``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import need_shared
from scipy.spatial import procrustes

from pipeline.data.skeleton import MANUAL_PARENTS, MIRROR_JOINT
from pipeline.lifting import lift
from pipeline.lifting import zelinka_kanis as Z
from pipeline.lifting.config import LiftConfig

CPU = torch.device("cpu")


def test_their_skeleton_is_our_manual_tree_rooted_at_the_nose():
    assert Z.BONES.shape == (49, 3) and Z.N_LINES == 25
    # the same undirected edges as our tree (which is rooted at the neck)
    ours = {frozenset((int(p), c)) for c, p in enumerate(MANUAL_PARENTS) if p >= 0}
    assert {frozenset((int(a), int(b))) for a, b, _ in Z.BONES} == ours
    # topological order from the nose: every parent is placed before its child
    placed = {0}
    for a, b, _ in Z.BONES:
        assert a in placed
        placed.add(int(b))
    # a bone and its mirror image share one line; the link body wrist -> hand wrist is line 4
    line = {(int(a), int(b)): int(n) for a, b, n in Z.BONES}
    for (a, b), n in line.items():
        if b != 1:  # nose -> neck has no mirror
            assert line[(int(MIRROR_JOINT[a]), int(MIRROR_JOINT[b]))] == n
    assert line[(7, 8)] == line[(4, 29)] == 4
    # the ancestry matrix sums the bones on each joint's path
    assert Z.ANCESTRY[0].sum() == 0 and Z.ANCESTRY[1].sum() == 1 and Z.ANCESTRY[49].sum() == 9


def test_normalise_pools_one_std_over_x_and_y_missing_points_included():
    xy = np.array([[[0.0, 0.0], [2.0, 4.0]], [[4.0, 8.0], [6.0, 12.0]]])  # [T=2, J=2, 2]
    out, mu, sigma = Z.normalise(xy)
    np.testing.assert_allclose(mu, [3.0, 6.0])
    values = np.concatenate([xy[..., 0].ravel(), xy[..., 1].ravel()])
    assert sigma == pytest.approx(values.std())  # pooled around the joint mean of x and y
    np.testing.assert_allclose(out, (xy - mu) / sigma, rtol=1e-6)


def test_prune_zeroes_frames_with_a_weak_body_but_keeps_them():
    xy = np.ones((3, 50, 2), np.float32)
    w = np.full((3, 50), 0.9, np.float32)
    w[1, :8] = 0.2  # body mean 0.2 < 0.3
    w[2, :8] = [0.3] * 8  # exactly the threshold: kept
    out, w2 = Z.prune(xy, w)
    assert out.shape == xy.shape and (out[1] == 0).all() and (w2[1] == 0).all()
    assert (out[[0, 2]] == 1).all() and (w2[[0, 2]] == w[[0, 2]]).all()


def test_interpolation_widens_a_symmetric_window_until_the_weights_reach_099():
    x = np.array([0.0, 10.0, 20.0, 30.0, 40.0], np.float32)
    xy = np.zeros((5, 50, 2), np.float32)
    xy[:, 0, 0] = x
    w = np.zeros((5, 50), np.float32)
    w[:, 0] = [1.0, 0.0, 1.0, 0.5, 0.5]
    out = Z.interpolate(xy, w)
    # t=0: own weight 1 >= 0.99: itself; t=1: weight 0 -> r=1 adds t=2 (1) and t=0 (1): mean 10
    # t=3: 0.5 -> r=1 adds t=4 and t=2: (0.5*30 + 0.5*40 + 1*20) / 2 = 27.5; t=4: r=1 adds t=3 only
    # (0.5*40 + 0.5*30 = 35, weight 1)
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 10.0, 20.0, 27.5, 35.0], rtol=1e-6)
    assert (out[:, 1] == 0).all()  # a joint never seen: 0


def test_initial_directions_follow_their_rule():
    """Bone long enough: reach the child with depth +sqrt(L^2 - d^2); too short: in the image plane;
    then z += 0.001 and normalise. Lengths: log of the lower median of the 2D lengths."""
    T = 4
    xy = np.zeros((T, 50, 2), np.float32)
    # nose -> neck 2D lengths 1, 2, 3, 4: lower median of [1, 2, 3, 4] = 2
    xy[:, 1, 1] = [1.0, 2.0, 3.0, 4.0]
    lines, roots, angles = Z.initialise(xy, np.random.RandomState(0))
    assert np.exp(lines[0]) == pytest.approx(2.0)
    assert np.abs(roots[:, :2]).max() <= Z.ROOT_NOISE and np.abs(roots[:, 2]).max() <= Z.ROOT_NOISE
    a = angles[:, 0]  # nose -> neck; the root is at (0, 0) +- 0.001
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, atol=1e-6)
    # t=0: d=1 < L=2: depth sqrt(3), direction (0, 1, sqrt(3) + 0.001) / norm
    want = np.array([0.0, 1.0, np.sqrt(3.0) + 0.001])
    np.testing.assert_allclose(a[0], want / np.linalg.norm(want), atol=2e-3)
    # t=3: d=4 > L=2: in the image plane, z = 0.001 before normalising
    np.testing.assert_allclose(a[3], np.array([0.0, 4.0, 0.001]) / np.hypot(4.0, 0.001), atol=2e-3)
    assert (angles[..., 2] > 0).all()  # every bone starts pointing to +z


def _toy_sequence(rng: np.random.Generator, T: int) -> np.ndarray:
    """A smooth [T, 50, 3] sequence of (x, y, confidence) in pixels, some points missing."""
    base = rng.uniform(200.0, 600.0, (1, 50, 2))
    drift = np.cumsum(rng.normal(0.0, 2.0, (T, 50, 2)), axis=0)
    c = rng.uniform(0.4, 1.0, (T, 50))
    c[rng.random((T, 50)) < 0.05] = 0.0
    xy = np.where(c[..., None] > 0, base + drift, 0.0)
    return np.concatenate([xy, c[..., None]], axis=-1).astype(np.float32)


def test_batching_and_padding_do_not_change_a_sequence():
    rng = np.random.default_rng(0)
    seqs = [_toy_sequence(rng, T) for T in (7, 12, 1)]
    together = Z.lift_raw(seqs, iterations=20, batch_frames=1000)
    for k, s in enumerate(seqs):
        # alone, with the same root noise (the RandomState is drawn sequence by sequence)
        alone = Z.lift_raw(seqs[: k + 1], iterations=20, batch_frames=1)[k]
        np.testing.assert_allclose(together[k][0], alone[0], atol=1e-5)
        assert np.isfinite(together[k][0]).all() and together[k][0].shape == (len(s), 50, 3)


def test_gradient_descent_fits_the_2d_and_keeps_bones_rigid():
    rng = np.random.default_rng(1)
    seq = _toy_sequence(rng, 30)
    ((x, mu, sigma),) = Z.lift_raw([seq], iterations=200)
    lengths = np.linalg.norm(x[:, Z.BONES[:, 1]] - x[:, Z.BONES[:, 0]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), rtol=1e-4)  # exp(line)
    back = Z.to_input_units(x, mu, sigma)
    np.testing.assert_allclose(back[..., :2], (x[..., :2] * sigma + mu), rtol=1e-6)
    assert np.allclose(back[..., 2], -x[..., 2] * sigma)  # their +z (towards the camera) -> our -z


def test_stage_method_switch_lifts_with_their_method():
    rng = np.random.default_rng(2)
    seq = _toy_sequence(rng, 10)
    cfg = dataclasses.replace(LiftConfig(), method="zelinka_kanis", zk_iterations=30)
    u = (seq[..., :2] - 400.0) / 100.0
    out = lift.lift_sequences([u], [seq[..., 2]], ["s"], cfg, CPU)[0]
    ((x, mu, sigma),) = Z.lift_raw([np.concatenate([u, seq[..., 2:]], -1)], iterations=30)
    np.testing.assert_allclose(out, Z.to_input_units(x, mu, sigma), atol=1e-5)


def test_port_reproduces_their_published_output_on_the_czech_frames():
    """Their pipeline (100 steps, RandomState(1234) drawn rec01 then rec02) on selected_2d.npz vs
    their lifted_3d_reference.npz. x and y agree to ~1e-5; z to ~1e-3: their initialisation picks
    between two hypotheses that are equal in exact arithmetic by float rounding (docs/benchmarks.md)."""
    root = need_shared("data", "openpose-czech-demo")
    two_d, ref = np.load(root / "selected_2d.npz"), np.load(root / "lifted_3d_reference.npz")
    names = ["rec01", "rec02"]
    out = Z.lift_raw([two_d[k].reshape(-1, 50, 3) for k in names], iterations=100)
    for k, (x, _, _) in zip(names, out, strict=True):
        r = ref[k].reshape(-1, 50, 3)
        assert x.shape == r.shape
        assert np.abs(x[..., :2] - r[..., :2]).max() < 1e-4
        assert np.abs(x[..., 2] - r[..., 2]).max() < 5e-3
        assert procrustes(r.reshape(-1, 3), x.reshape(-1, 3))[2] < 1e-6
