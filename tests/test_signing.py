"""Tests of how the synthetic signer signs (pipeline/synth/{lexicon,motion,body}.py): lexical
variants, signer style, co-articulation, prosody, non-manual face movement, timing."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from pipeline.config import ParamsError, parse_section
from pipeline.data.skeleton import RAW_LHAND, RAW_RHAND
from pipeline.synth.body import face_points, make_signers, pose_body_frame
from pipeline.synth.corpus import SynthConfig
from pipeline.synth.lexicon import n_variants, sign_for
from pipeline.synth.motion import SigningConfig, build_controls, plan_signs, preferred_variant

SIGNER = make_signers(6, np.random.default_rng(0), left_handed=0.0)[1]
SENTENCE = ["REGEN", "SONNE", "WIND", "NORD", "MONTAG", "GRAD", "KALT", "HEUTE", "BIS"]


def _glosses(n: int, seed: int = 0) -> list[str]:
    """``n`` random PHOENIX-like gloss strings (upper-case ASCII, some compounds and digits)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        g = "".join(rng.choice(list("ABCDEFGHIKLMNOPRSTUWZ"), int(rng.integers(3, 9))))
        out.append(g + ("-" + str(int(rng.integers(1, 10))) if rng.random() < 0.1 else ""))
    return out


def _multi(k: int = 2) -> list[str]:
    """Glosses with at least ``k`` variants at the default shares."""
    cfg = SigningConfig()
    return [g for g in _glosses(400) if n_variants(g, cfg.variants_2, cfg.variants_3) >= k]


def _differences(a, b) -> set[str]:
    out = set()
    if not (np.allclose(a.start, b.start) and np.allclose(a.end, b.end)):
        out.add("place")
    if (a.shape_start, a.shape_end) != (b.shape_start, b.shape_end):
        out.add("handshape")
    if a.path != b.path:
        out.add("movement")
    return out


def test_variant_shares_and_variants_differ_in_one_aspect():
    cfg = SigningConfig()
    counts = np.bincount(
        [n_variants(g, cfg.variants_2, cfg.variants_3) for g in _glosses(3000, 1)], minlength=4
    )
    share = counts / counts.sum()
    assert abs(share[2] - cfg.variants_2) < 0.03 and abs(share[3] - cfg.variants_3) < 0.02
    assert n_variants("REGEN", 0.0, 0.0) == 1
    glosses = _multi(3)
    assert len(glosses) > 10
    for g in glosses:
        signs = [sign_for(g, v) for v in range(3)]
        assert [s.variant for s in signs] == [0, 1, 2] and sign_for(g) is signs[0]
        for v in (1, 2):
            diff = _differences(signs[0], signs[v])
            assert diff and diff != {"place", "handshape", "movement"}, (g, v, diff)
        assert _differences(signs[1], signs[2])  # variants 1 and 2 change different aspects


def test_preferred_variant_drives_the_stroke():
    """Two signers who differ only in name: different preferred variants -> different strokes."""
    cfg = SigningConfig(p_other_variant=0.0)
    g = _multi(2)[0]
    names = [f"Signer{i:02d}" for i in range(1, 40)]
    prefs = {nm: preferred_variant(nm, g, n_variants(g, cfg.variants_2, cfg.variants_3)) for nm in names}
    same = [nm for nm in names if prefs[nm] == prefs[names[0]]]
    other = next(nm for nm in names if prefs[nm] != prefs[names[0]])
    run = [
        build_controls(["HEUTE", g], replace(SIGNER, name=nm), np.random.default_rng(5), 200, cfg=cfg).palm_r
        for nm in (names[0], same[1], other)
    ]
    assert run[0].shape == run[1].shape and np.array_equal(run[0], run[1])  # same preference: same motion
    assert run[0].shape != run[2].shape or not np.allclose(run[0], run[2], atol=1e-3)


def test_signer_mostly_uses_its_preferred_variant():
    glosses = _multi(2)[:20]
    for p_other, lo, hi in ((0.1, 0.85, 0.95), (0.0, 1.0, 1.0)):
        cfg = SigningConfig(p_other_variant=p_other)
        plans = [plan_signs(glosses, SIGNER, np.random.default_rng(s), cfg) for s in range(50)]
        used = np.array([it.sign.variant == it.preferred for plan in plans for it in plan])
        assert lo <= used.mean() <= hi


def test_left_handed_signer_signs_with_the_left_hand():
    signers = make_signers(6, np.random.default_rng(3), left_handed=0.15)
    assert sum(s.left_handed for s in signers) == 1
    assert not any(s.left_handed for s in make_signers(6, np.random.default_rng(3), left_handed=0.0))
    right = build_controls(SENTENCE, SIGNER, np.random.default_rng(2), 300)
    left = build_controls(SENTENCE, replace(SIGNER, left_handed=True), np.random.default_rng(2), 300)

    def travel(p: np.ndarray) -> float:
        return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())

    assert travel(right.palm_r) > 1.5 * travel(right.palm_l)
    assert travel(left.palm_l) > 1.5 * travel(left.palm_r)
    flip = np.array([-1.0, 1.0, 1.0])
    assert np.allclose(left.palm_l, right.palm_r * flip) and np.allclose(left.u_l, right.u_r * flip)
    assert np.allclose(left.ang_l, right.ang_r)
    joints = pose_body_frame(replace(SIGNER, left_handed=True), left)
    assert joints[:, RAW_LHAND, 0].std() > joints[:, RAW_RHAND, 0].std()


def test_sloppy_signer_relaxes_handshapes():
    neat = build_controls(SENTENCE, replace(SIGNER, sloppiness=0.0), np.random.default_rng(4), 300)
    sloppy = build_controls(SENTENCE, replace(SIGNER, sloppiness=0.3), np.random.default_rng(4), 300)
    assert neat.ang_r.shape == sloppy.ang_r.shape
    # the relaxed hand is mid-range: sloppy finger angles spread less over time and signs
    assert sloppy.ang_r[:, 1:].std() < 0.85 * neat.ang_r[:, 1:].std()


@pytest.mark.parametrize("coart", [0.0, 0.3])
def test_coarticulation_shifts_toward_the_neighbours(coart):
    cfg = SigningConfig(coarticulation=coart, p_pause=0.0)
    a = plan_signs(["REGEN", "MONTAG", "KALT"], SIGNER, np.random.default_rng(9), cfg)
    b = plan_signs(["SONNE", "MONTAG", "KALT"], SIGNER, np.random.default_rng(9), cfg)
    assert not np.allclose(sign_for("REGEN").end, sign_for("SONNE").end)
    if coart == 0.0:
        assert np.array_equal(a[1].p0, b[1].p0) and np.array_equal(a[1].p1, b[1].p1)
    else:
        assert np.linalg.norm(a[1].p0 - b[1].p0) > 0.01  # start follows the previous sign
        assert np.allclose(a[1].p1, b[1].p1)  # the end depends on the next sign only
        free = plan_signs(
            ["REGEN", "MONTAG", "KALT"], SIGNER, np.random.default_rng(9), replace(cfg, coarticulation=0)
        )
        # the shift goes toward the previous sign's end
        assert np.linalg.norm(a[1].p0 - free[0].p1) < np.linalg.norm(free[1].p0 - free[0].p1)


def test_pauses_and_final_lengthening_lengthen_sequences():
    def frames(**kw) -> int:
        cfg = SigningConfig(**{"p_pause": 0.0, "final_lengthening": 1.0, "tempo_var": 0.0, **kw})
        return len(build_controls(SENTENCE, SIGNER, np.random.default_rng(1), 1000, cfg=cfg).palm_r)

    base = frames()
    assert frames(p_pause=1.0, pause_frames=(6, 6)) >= base + 6 * (len(SENTENCE) - 1) * 0.8 / SIGNER.speed
    assert frames(final_lengthening=2.0) > base + 3
    assert frames(tempo=0.5) > 1.6 * base


def test_tempo_curve_varies_within_the_sentence():
    cfg = SigningConfig(tempo_var=0.3)
    plan = plan_signs(["REGEN"] * 12, SIGNER, np.random.default_rng(2), cfg)
    dur = np.array([it.dur for it in plan[:-1]])
    assert dur.max() / dur.min() > 1.3
    flat = plan_signs(["REGEN"] * 12, SIGNER, np.random.default_rng(2), replace(cfg, tempo_var=0.0))
    assert np.ptp([it.dur for it in flat[:-1]]) < 0.21  # per-instance noise only


def _face(glosses, signer, seed=0, **kw):
    c = build_controls(glosses, signer, np.random.default_rng(seed), 400, cfg=SigningConfig(**kw))
    return c, face_points(c.brows, c.mouth, signer.head, c.eyes, c.lips)


def test_face_moves_and_blinks_close_the_eyes():
    signer = replace(SIGNER, blink_rate=1.0)
    c, face = _face(SENTENCE, signer, p_pause=0.0)  # spontaneous blinks only (1 per second)
    assert face.std(0).mean() > 2e-4  # mean SD of the 70 points in the head frame, metres
    assert face[:, 48:68].std(0).mean() > 3e-4 and face[:, 17:27].std(0).mean() > 3e-4  # mouth, brows
    closed = c.eyes > 0.5
    assert c.eyes.max() == 1.0 and 0 < np.mean(closed) < 0.3
    assert np.sum(np.diff(closed.astype(int)) == 1) >= 2  # several separate blinks
    lid = face[:, [37, 38, 43, 44], 1].mean(1) - face[:, [41, 40, 47, 46], 1].mean(1)  # upper - lower lid
    assert lid[c.eyes == 0].min() > 0.007 and lid[np.argmax(c.eyes)] < 0.001
    # no mouthing, no blinks, neutral brows: the face stays still
    still = replace(signer, blink_rate=0.0, expressivity=0.0)
    _, face0 = _face(SENTENCE, still, mouthing=0.0, p_pause=0.0)
    assert face0.std(0).max() < 1e-9


def test_negation_is_signed_with_a_head_shake():
    plain = build_controls(["MORGEN", "REGEN", "KALT"], SIGNER, np.random.default_rng(3), 300)
    neg = build_controls(["MORGEN", "REGEN", "NICHT"], SIGNER, np.random.default_rng(3), 300)
    yaw_p, yaw_n = np.diff(plain.head[:, 1]), np.diff(neg.head[:, 1])
    # a shake reverses the yaw velocity several times
    assert np.sum(np.diff(np.sign(yaw_n[np.abs(yaw_n) > 0.01])) != 0) >= 3
    assert np.abs(yaw_n).max() > 2 * np.abs(yaw_p).max()
    assert neg.brows.min() < -0.4  # furrowed brows


def test_same_seed_same_controls_other_seed_differs():
    a = build_controls(SENTENCE, SIGNER, np.random.default_rng(7), 200)
    b = build_controls(SENTENCE, SIGNER, np.random.default_rng(7), 200)
    c = build_controls(SENTENCE, SIGNER, np.random.default_rng(8), 200)
    for f in ("palm_r", "palm_l", "ang_r", "brows", "mouth", "eyes", "lips", "head", "torso"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.palm_r.shape != c.palm_r.shape or not np.allclose(a.palm_r, c.palm_r)


def test_frames_per_sentence_match_phoenix():
    """PHOENIX-2014T: ~116 frames for ~9.5 glosses (±15 %)."""
    glosses = _glosses(500, 3)
    signers = make_signers(6, np.random.default_rng(11))
    rng = np.random.default_rng(0)
    lengths = []
    for i in range(120):
        g = [glosses[k] for k in rng.integers(len(glosses), size=int(rng.integers(9, 11)))]
        lengths.append(len(build_controls(g, signers[i % 6], np.random.default_rng([1, i]), 300).palm_r))
    assert 116 * 0.85 < np.mean(lengths) < 116 * 1.15


def test_hands_stay_in_front_of_the_body():
    signers = make_signers(6, np.random.default_rng(11), left_handed=0.5)
    glosses = _glosses(300, 4)
    rng = np.random.default_rng(0)
    inside = []
    for i in range(30):
        s = signers[i % 6]
        g = [glosses[k] for k in rng.integers(len(glosses), size=10)]
        j = pose_body_frame(s, build_controls(g, s, np.random.default_rng(i), 300))
        hands = j[:, np.r_[RAW_LHAND, RAW_RHAND]]
        torso = (
            (np.abs(hands[..., 0]) < 0.8 * s.shoulder_width / 2)
            & (hands[..., 1] < -0.05)
            & (hands[..., 1] > -s.torso)
        )
        inside.append(np.mean(torso & (hands[..., 2] < 0.06)))
    assert np.mean(inside) < 0.01


def test_signing_params_are_validated():
    cfg = parse_section(
        {"synthetic": {"signing": {"coarticulation": 0.1, "pause_frames": [3, 5]}}}, "synthetic", SynthConfig
    )
    assert cfg.signing.coarticulation == 0.1 and cfg.signing.pause_frames == (3, 5)
    for bad, key in (
        ({"variants_2": 0.7, "variants_3": 0.5}, "synthetic.signing"),
        ({"pause_frames": [5, 2]}, "synthetic.signing"),
        ({"coarticulation": 0.9}, "synthetic.signing.coarticulation"),
        ({"p_other_variant": -0.1}, "synthetic.signing.p_other_variant"),
    ):
        with pytest.raises(ParamsError, match=re.escape(key)):
            parse_section({"synthetic": {"signing": bad}}, "synthetic", SynthConfig)
