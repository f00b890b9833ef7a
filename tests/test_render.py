"""Skeleton drawing and Figure 3: 320 px cells, face outline, torso guide, separable fingers, GIF frames.

Poses are synthetic body-centred skeletons (neck at the origin, shoulder width 1, y down): a rest
pose with the signer's right hand raised and spread, optionally with 70 face points.
"""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from pipeline.data.skeleton import FACE_CONTOURS, HAND21, MANUAL, MANUAL_JOINTS, PARTS
from pipeline.evaluation import figures, render

SPREAD = {"thumb": -50.0, "index": -8.0, "middle": 2.0, "ring": 12.0, "pinky": 22.0}  # deg from "up"


def _hand(wrist: tuple[float, float], up: bool) -> np.ndarray:
    """``[21, 3]`` hand joints: fingers fanned as :data:`SPREAD`, pointing up (raised) or down."""
    out = np.zeros((21, 3))
    out[0, :2] = wrist
    sign = -1.0 if up else 1.0
    for f, (finger, angle) in enumerate(SPREAD.items()):
        base = np.array([wrist[0] + 0.03 * (f - 2), wrist[1] + sign * 0.08])
        step = 0.045 * np.array([np.sin(np.radians(angle)), sign * np.cos(np.radians(angle))])
        for k in range(1, 5):
            out[HAND21.index(f"{finger}{k}"), :2] = base + (k - 1) * step
    return out


def pose(face: bool = False) -> np.ndarray:
    """One ``[J, 3]`` frame (50 joints, or 120 with a face around the head)."""
    p = np.zeros((120 if face else len(MANUAL_JOINTS), 3))
    body = {
        "nose": (0.0, -0.55),
        "neck": (0.0, 0.0),
        "r_shoulder": (-0.5, 0.05),
        "r_elbow": (-0.75, 0.45),
        "r_wrist": (-0.45, -0.15),
        "l_shoulder": (0.5, 0.05),
        "l_elbow": (0.65, 0.75),
        "l_wrist": (0.45, 1.05),
    }
    for name, xy in body.items():
        p[MANUAL[f"body_{name}"], :2] = xy
    p[PARTS["right_hand"]] = _hand(body["r_wrist"], up=True)
    p[PARTS["left_hand"]] = _hand(body["l_wrist"], up=False)
    if face:  # every contour point on a circle around the head
        angle = np.linspace(0, 2 * np.pi, 70, endpoint=False)
        p[PARTS["face"], 0] = 0.25 * np.cos(angle)
        p[PARTS["face"], 1] = -0.75 + 0.3 * np.sin(angle)
    return p


def _colour_mask(img: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return (np.asarray(img)[..., :3] == colour).all(axis=-1)


def _at(img: np.ndarray, view: render.View, xy: tuple[float, float]) -> tuple[int, ...]:
    x, y = view.pixels(np.asarray(xy, np.float64)).round().astype(int)
    return tuple(int(v) for v in np.asarray(img)[y, x, :3])


def test_cells_are_at_least_320_px() -> None:
    seq = np.stack([pose(), pose()])
    assert render.CELL >= 320
    assert render.View.fit(seq).width == render.View.fit(seq).height == render.CELL
    assert render.render_frames(seq).shape == (2, render.CELL, render.CELL, 3)
    img = render.strip({"GT": seq, "Student": seq[:1]}, n_frames=3, title="a title")
    assert img.shape == (render.TITLE_HEIGHT + 2 * render.CELL, 3 * render.CELL, 3)
    frames = render.side_by_side({"GT": seq, "Student": seq})
    assert frames.shape == (2, render.CELL, 2 * render.CELL, 3)


def test_pens_keep_fingers_thin_and_dots_small() -> None:
    pens = render.Pens.for_view(render.View(0.0, 0.0, 1.0))
    assert pens.hand == pens.face == 1 and pens.body > pens.hand  # body bones thicker than fingers
    assert pens.hand_dot <= 2.0 and pens.body_dot <= 3.0
    big = render.Pens.for_view(render.View(0.0, 0.0, 1.0, 640, 640))
    assert big.body == 2 * pens.body and big.hand_dot == 2 * pens.hand_dot  # scale with the cell


def test_face_outline_only_with_the_face_points() -> None:
    view = render.View.fit(pose(face=True)[None])
    with_face = np.asarray(render.draw_frame(pose(face=True), view))
    without = np.asarray(render.draw_frame(pose(), view))
    face = _colour_mask(with_face, render.COLORS["face"])
    assert face.sum() > 200  # contours of the 9 iBUG curves
    rows = np.flatnonzero(face.any(axis=1))
    head_bottom = view.pixels(np.array([0.0, -0.75 + 0.3]))[1]
    assert rows.max() <= head_bottom + 2  # all of it on the head
    assert not _colour_mask(without, render.COLORS["face"]).any()
    assert len(FACE_CONTOURS) == 9 and len(render.bones(120)) > len(render.bones(50))


def test_face_layout_keeps_the_lips_clear_of_the_neck_bone() -> None:
    p = pose(face=True)
    chin = p[MANUAL["face_face8"], :2]
    view = render.View.fit(p[None])
    img = np.asarray(render.draw_frame(p, view))
    between = (chin + p[MANUAL["body_nose"], :2]) / 2  # inside the face, above the chin
    assert _at(img, view, tuple(between)) != render.COLORS["body"]
    below = (chin + p[MANUAL["body_neck"], :2]) / 2  # the neck bone still reaches the chin
    assert _at(img, view, tuple(below)) == render.COLORS["body"]


def test_torso_guide_between_the_shoulders_down_to_the_hip_line() -> None:
    p = pose()
    view = render.View.fit(p[None])
    img = np.asarray(render.draw_frame(p, view))
    torso = render.TORSO_COLOR
    shoulder_y = 0.05  # both shoulders; width 1, so the hip line is TORSO_DEPTH below
    hip_y = shoulder_y + render.TORSO_DEPTH
    assert _colour_mask(img, torso).sum() > 0.3 * (view.scale**2)  # a filled area, not an outline
    for x, y in [(0.0, shoulder_y + 0.1), (0.3, shoulder_y + 0.3), (0.0, hip_y - 0.05), (-0.3, hip_y - 0.05)]:
        assert _at(img, view, (x, y)) == torso, (x, y)
    for x, y in [(0.25, shoulder_y - 0.1), (0.0, hip_y + 0.05), (-0.49, hip_y - 0.05)]:  # above/under/beside
        assert _at(img, view, (x, y)) == render.BACKGROUND, (x, y)
    corners = render.torso(p, view)
    assert corners is not None and len(corners) == 4
    hip_width = (corners[2][0] - corners[3][0]) / view.scale
    assert hip_width == pytest.approx(render.TORSO_HIP * 1.0)
    assert render.torso(p[:8], view) is None  # no manual layout, no torso
    assert not _colour_mask(np.asarray(render.draw_frame(p[:8], view)), torso).any()


def test_torso_follows_a_tilted_shoulder_line_and_skips_missing_shoulders() -> None:
    p = pose()
    p[MANUAL["body_l_shoulder"], 1] = 0.55  # the line drops 0.5 over 1: the torso tilts with it
    view = render.View(-2.0, -2.0, 100.0)
    corners = np.array(render.torso(p, view))
    shoulders, hips = corners[:2], corners[2:]
    across = shoulders[1] - shoulders[0]
    assert np.dot((hips.mean(axis=0) - shoulders.mean(axis=0)), across) == pytest.approx(0.0, abs=1e-6)
    p[MANUAL["body_r_shoulder"]] = np.nan
    assert render.torso(p, view) is None
    render.draw_frame(p, view)  # still draws


def test_close_fingertips_stay_apart() -> None:
    p = pose()
    view = render.View.fit(p[None])
    img = np.asarray(render.draw_frame(p, view))
    tips = p[[MANUAL["rhand_index4"], MANUAL["rhand_middle4"]], :2]
    a, b = view.pixels(tips)
    assert 5 <= np.hypot(*(b - a)) <= 12  # close: a few pixels apart at 320 px
    for tip in (a, b):
        x, y = tip.round().astype(int)
        assert tuple(img[y, x]) == render.JOINT_COLORS["right_hand"]
    between = (a + (b - a) * np.linspace(0.3, 0.7, 9)[:, None]).round().astype(int)
    line = [tuple(img[y, x]) for x, y in between]
    assert render.BACKGROUND in line  # background between the two tips
    hand = _colour_mask(img, render.COLORS["right_hand"])
    assert hand.sum() > 20  # finger bones in the hand colour


def test_label_and_other_layouts_draw() -> None:
    seq = np.random.default_rng(0).random((3, 4, 3))  # not the manual layout: joints only
    frames = render.render_frames(seq, label="GT")
    assert frames.shape == (3, render.CELL, render.CELL, 3) and (frames[0] < 100).any()
    with pytest.raises(ValueError, match="expected"):
        render.render_frames(np.zeros((0, 50, 3)))


def test_gif_has_the_requested_frames_even_when_the_pose_is_held(tmp_path: Path) -> None:
    seq = np.repeat(pose()[None], 7, axis=0)  # identical poses: the time bar keeps the frames apart
    frames = render.render_frames(seq)
    gif = iio.imread(render.write_gif(tmp_path / "a.gif", frames, fps=25.0), index=None)
    assert gif.shape[:3] == (7, render.CELL, render.CELL)
    assert np.abs(gif[..., :3].astype(int) - frames.astype(int)).mean() < 1.0  # palette keeps the colours


def test_figure3_png_and_gif(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    seq = np.stack([pose() + rng.normal(0, 0.01, pose().shape) for _ in range(12)])
    face = np.repeat(pose(face=True)[None], 5, axis=0)
    samples = [("am montag regen .", {"GT": seq, "Student": seq[:9]}), ("gesicht", {"GT": face, "S": face})]
    png, gif = figures.figure3(samples, tmp_path / "f.png", tmp_path / "f.gif", n_frames=4, fps=25.0)
    img = iio.imread(png)
    cell, title = render.CELL, render.TITLE_HEIGHT
    assert img.shape[:2] == (title * 3 + 4 * cell + figures.GAP, 4 * cell)  # legend + 2 x (title + 2 rows)
    assert _colour_mask(img, render.COLORS["face"])[title * 2 + 2 * cell + figures.GAP :].any()
    frames = iio.imread(gif, index=None)
    assert frames.shape[:3] == (12, cell, 2 * cell)  # the 1st sample's longest system, 2 panels
    with pytest.raises(ValueError, match="no samples"):
        figures.figure3([], tmp_path / "x.png")


def test_title_band_cuts_long_text() -> None:
    band = render.title_band("ein sehr langer satz " * 20, 200)
    assert band.shape == (render.TITLE_HEIGHT, 200, 3) and (band[:, -4:] == 255).all()


def test_pick_samples_spreads_over_the_lengths() -> None:
    assert figures.pick_samples([50, 10, 30, 20, 40], 3) == [1, 2, 0]  # shortest, median, longest
    assert figures.pick_samples([5, 5], 4) == [0, 1] and figures.pick_samples([], 3) == []
