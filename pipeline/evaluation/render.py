"""Skeleton drawing of pose sequences: frames (numpy RGB), animated GIF/MP4 and side-by-side strips.

Poses are ``[T, J, 3]`` of the manual layout (50 joints, or 120 with the face;
:mod:`pipeline.data.skeleton`) in any 3D units with x right and y down (body-centred units from
:class:`pipeline.inference.Translator`, or the lifted [0, 1] space). The drawing is the orthographic
front view (x, y; depth is ignored except for the torso's length) with PIL, without anti-aliasing
(exact colours, crisp 1 px fingers):

- every skeleton gets a square cell of :data:`CELL` (320) px; one :class:`View` (fitted to all
  frames to draw, 8 % margin) maps coordinates to pixels with equal x/y scale, so a sequence does
  not jump or stretch;
- body bones grey-blue, 3 px at 320 px (dark joint dots, radius 2.5 px); the signer's left hand
  (image right) green, right hand red: 1 px finger bones and dots of radius 1.5 px in a darker
  shade, so neighbouring fingertips stay apart; the 70 face points (120-joint layout) as their
  iBUG contours (jaw, brows, nose, eyes, lips) in light grey, pupils as dots (then the neck-nose
  bone stops at the chin, so it does not cross the lips); hands are drawn over body and face;
- a **torso guide** (the manual layout has no hips): a light filled trapezoid (:data:`TORSO_COLOR`)
  from the two shoulders down to a hip line :data:`TORSO_DEPTH` (1.2) x the 3D shoulder width
  below the shoulder line, perpendicular to it, :data:`TORSO_HIP` (0.8) x the drawn shoulder width
  wide. Adult averages: biacromial width ~0.39 m, acromion to hip joint ~0.5 m (1.25 x), hip width
  ~0.3-0.34 m (0.8 x); at that length the rest-pose wrists (~1 shoulder width below the shoulders
  in the lifted data) sit in front of the lower torso as in the videos. It is a drawing aid, not
  predicted, and may run off the bottom of the cell (the view is fitted to the joints only).

Line widths and dot radii scale with the cell (``min(width, height) / 320``). About 2.5 ms per
320 x 320 frame on one CPU core; GIFs are written by PIL with one shared palette (~3 ms per
320 x 960 frame), MP4 through imageio (libx264 from imageio-ffmpeg's bundled ffmpeg, yuv420p,
so players and browsers open it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.data.skeleton import FACE_BONES, MANUAL, MANUAL_BONES, MANUAL_JOINTS, PARTS, part_of

CELL = 320  # px of one skeleton's square cell (figures, side-by-side GIF, translate's videos)
BACKGROUND = (255, 255, 255)
COLORS = {
    "body": (60, 80, 140),
    "left_hand": (30, 150, 60),
    "right_hand": (200, 50, 40),
    "face": (150, 150, 150),
}
JOINT_COLORS = {  # joint dots: dark for the body, a darker shade of the hand colours for the fingers
    "body": (20, 20, 20),
    "left_hand": (10, 85, 30),
    "right_hand": (120, 25, 15),
}
TORSO_COLOR = (226, 231, 242)  # light fill of the torso guide (a drawing aid, not a predicted joint)
TORSO_DEPTH = 1.2  # hip line below the shoulder line, in 3D shoulder widths
TORSO_HIP = 0.8  # hip width, in drawn shoulder widths
PUPILS = (68, 69)  # face points drawn as dots (indices within the 70 face points)
TITLE_HEIGHT = 22  # px of a strip's title band
LABEL_SIZE = 13  # font size of the cell labels
TITLE_SIZE = 14  # font size of the titles


@lru_cache(maxsize=4)
def font(size: int = 11) -> Any:
    """DejaVu Sans from matplotlib's data (has umlauts/ß), else PIL's default font."""
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def bones(n_joints: int) -> list[tuple[int, int, str]]:
    """``(parent, child, part)`` of every drawn bone of the layout (manual bones, + face contours);
    none for another layout (then only the joints are drawn)."""
    if n_joints < len(MANUAL_JOINTS):
        return []
    out = [(p, c, part_of(c)) for p, c in MANUAL_BONES]
    if n_joints >= PARTS["face"].stop:
        face = PARTS["face"].start
        out += [(face + a, face + b, "face") for a, b in FACE_BONES]
    return out


@dataclass
class View:
    """Maps x, y coordinates to pixels of a ``width`` x ``height`` image with equal scale and a margin."""

    x0: float
    y0: float
    scale: float
    width: int = CELL
    height: int = CELL

    @classmethod
    def fit(cls, *sequences: np.ndarray, width: int = CELL, height: int = CELL, margin: float = 0.08) -> View:
        """The view that shows every finite x, y of ``sequences`` (``[..., 3]``), centred."""
        pts = np.concatenate([np.asarray(s, np.float64).reshape(-1, 3)[:, :2] for s in sequences])
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) == 0:
            return cls(0.0, 0.0, 1.0, width, height)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.maximum(hi - lo, 1e-6)
        scale = float(min(width * (1 - 2 * margin) / span[0], height * (1 - 2 * margin) / span[1]))
        centre = (lo + hi) / 2
        return cls(
            float(centre[0] - width / 2 / scale), float(centre[1] - height / 2 / scale), scale, width, height
        )

    def pixels(self, xy: np.ndarray) -> np.ndarray:
        """``[..., 2]`` coordinates -> pixel positions."""
        return np.stack([(xy[..., 0] - self.x0) * self.scale, (xy[..., 1] - self.y0) * self.scale], axis=-1)


@dataclass(frozen=True)
class Pens:
    """Line widths (px) and dot radii (px) of one cell size."""

    body: int
    hand: int
    face: int
    body_dot: float
    hand_dot: float
    pupil: float

    @classmethod
    def for_view(cls, view: View) -> Pens:
        """Widths for ``view``'s cell: 3 / 1 / 1 px lines and 2.5 / 1.5 / 1 px dots at 320 px."""
        s = min(view.width, view.height) / CELL
        return cls(
            body=max(1, round(3 * s)),
            hand=max(1, round(s)),
            face=max(1, round(s)),
            body_dot=max(1.0, 2.5 * s),
            hand_dot=max(0.8, 1.5 * s),
            pupil=max(0.8, s),
        )


def torso(frame: np.ndarray, view: View) -> list[tuple[float, float]] | None:
    """Pixel corners (shoulders, hips) of the torso guide of one manual-layout ``frame [J, 3]``,
    or None (another layout, or a shoulder missing or on top of the other)."""
    if len(frame) < len(MANUAL_JOINTS):
        return None
    r, le = frame[MANUAL["body_r_shoulder"]], frame[MANUAL["body_l_shoulder"]]
    if not (np.isfinite(r[:2]).all() and np.isfinite(le[:2]).all()):
        return None
    pr, pl = view.pixels(np.stack([r[:2], le[:2]]))
    across = pl - pr  # image right for a signer facing the camera
    width = float(np.hypot(*across))
    if width < 1.0:
        return None
    unit = across / width
    down = np.array([-unit[1], unit[0]])
    down = down if down[1] >= 0 else -down  # perpendicular to the shoulder line, towards the hips
    full = float(np.linalg.norm(le - r)) * view.scale if np.isfinite(le - r).all() else width
    hip_mid = (pr + pl) / 2 + TORSO_DEPTH * max(full, width) * down
    half_hip = TORSO_HIP * width / 2 * unit
    corners = [pr, pl, hip_mid + half_hip, hip_mid - half_hip]
    return [(float(x), float(y)) for x, y in corners]


@lru_cache(maxsize=8)
def joint_parts(n_joints: int) -> tuple[str, ...]:
    """Part of every dotted joint of an ``n_joints`` layout (all "body" for a non-manual layout)."""
    n = min(n_joints, PARTS["right_hand"].stop)  # joints of the face are not dotted
    return tuple(part_of(j) if n_joints >= len(MANUAL_JOINTS) else "body" for j in range(n))


def _dot(draw: ImageDraw.ImageDraw, xy: np.ndarray, r: float, fill: tuple[int, int, int]) -> None:
    x, y = float(xy[0]), float(xy[1])
    draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)


def draw_frame(frame: np.ndarray, view: View, label: str | None = None) -> Image.Image:
    """One skeleton ``[J, 3]`` drawn on a new RGB image (torso guide, body, face, hands, joints)."""
    img = Image.new("RGB", (view.width, view.height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    frame = np.asarray(frame, np.float64)
    px = view.pixels(frame[:, :2])
    ok = np.isfinite(px).all(axis=1)
    pens = Pens.for_view(view)
    corners = torso(frame, view)
    if corners is not None:
        draw.polygon(corners, fill=TORSO_COLOR)
    widths = {"body": pens.body, "face": pens.face, "left_hand": pens.hand, "right_hand": pens.hand}
    ends, drawn = px.copy(), ok.copy()
    face = len(px) >= PARTS["face"].stop
    nose, chin = MANUAL["body_nose"], MANUAL["face_face8"]
    if face and ok[chin]:  # the face draws the head: the neck-nose bone stops at the chin, off the lips
        ends[nose], drawn[nose] = px[chin], True
    for layer in (("body",), ("face",), ("left_hand", "right_hand")):  # hands over body and face
        for p, c, part in bones(len(px)):
            if part in layer and drawn[p] and drawn[c]:
                draw.line([tuple(ends[p]), tuple(ends[c])], fill=COLORS[part], width=widths[part])
    if face:
        for k in PUPILS:
            if ok[PARTS["face"].start + k]:
                _dot(draw, px[PARTS["face"].start + k], pens.pupil, COLORS["face"])
    parts = joint_parts(len(px))
    for j in np.flatnonzero(ok[: len(parts)]):
        if face and j == nose:
            continue  # the face's own nose points show it
        part = parts[j]
        _dot(draw, px[j], pens.body_dot if part == "body" else pens.hand_dot, JOINT_COLORS[part])
    if label:
        draw.text((4, 3), label, fill=(0, 0, 0), font=font(LABEL_SIZE))
    return img


def add_progress(frames: np.ndarray, height: int = 3) -> np.ndarray:
    """Draw a time bar (``(t + 1) / T`` of the width) at the bottom of every frame, in place.

    Besides showing where the animation is, it makes consecutive frames differ: GIF writers merge
    identical frames (a held pose), which would change the frame count a reader sees.
    """
    t_max, _, width = frames.shape[:3]
    for t in range(t_max):
        frames[t, -height:, :] = 235
        frames[t, -height:, : max(1, round(width * (t + 1) / t_max))] = (90, 90, 90)
    return frames


def render_frames(
    poses: np.ndarray, view: View | None = None, label: str | None = None, progress: bool = True
) -> np.ndarray:
    """``[T, H, W, 3]`` uint8 frames of ``poses [T, J, 3]`` (view fitted to the sequence when None),
    with a time bar at the bottom unless ``progress`` is false."""
    poses = np.asarray(poses)
    if poses.ndim != 3 or poses.shape[2] != 3 or len(poses) == 0:
        raise ValueError(f"poses of shape {poses.shape}: expected [T > 0, J, 3]")
    view = view or View.fit(poses)
    frames = np.stack([np.asarray(draw_frame(f, view, label)) for f in poses])
    return add_progress(frames) if progress else frames


def write_gif(path: str | Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Looping animated GIF of ``frames [T, H, W, 3]`` at ``fps`` (GIF delays are whole 10 ms).

    One 255-colour palette (median cut of the first, middle and last frames, no dithering) serves
    every frame: the drawings have few colours, and it is ~5x faster than quantising each frame.
    """
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or len(frames) == 0:
        raise ValueError(f"frames of shape {frames.shape}: expected [T > 0, H, W, 3]")
    sample = np.concatenate([frames[0], frames[len(frames) // 2], frames[-1]], axis=0)
    palette = Image.fromarray(sample).quantize(255, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    delay = round(1000.0 / fps)
    images[0].save(Path(path), format="GIF", save_all=True, append_images=images[1:], duration=delay, loop=0)
    return Path(path)


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """H.264 MP4 (yuv420p) of ``frames [T, H, W, 3]``; width and height must be multiples of 16."""
    import imageio.v2 as imageio

    h, w = frames.shape[1:3]
    if h % 16 or w % 16:
        raise ValueError(f"frames of {w} x {h} px: MP4 needs multiples of 16")
    imageio.mimwrite(
        Path(path), list(frames), format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p", quality=7
    )
    return Path(path)


def side_by_side(systems: dict[str, np.ndarray], width: int = CELL, height: int = CELL) -> np.ndarray:
    """Frames ``[T_max, H, W * n, 3]`` with one panel per system (label on top) and one time bar;
    shorter sequences hold their last frame. All panels share one view, so positions are comparable."""
    view = View.fit(*systems.values(), width=width, height=height)
    t_max = max(len(s) for s in systems.values())
    panels = []
    for label, seq in systems.items():
        frames = render_frames(seq, view, label, progress=False)
        pad = np.repeat(frames[-1:], t_max - len(frames), axis=0)
        panels.append(np.concatenate([frames, pad]))
    return add_progress(np.concatenate(panels, axis=2))


def title_band(text: str, width: int, height: int = TITLE_HEIGHT) -> np.ndarray:
    """``[height, width, 3]`` white band with ``text`` (cut to fit the width) on the left."""
    head = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(head)
    f = font(TITLE_SIZE)
    while text and draw.textlength(text, font=f) > width - 8:
        text = text[:-2] + "…"
    draw.text((4, (height - TITLE_SIZE) // 2 - 1), text, fill=(0, 0, 0), font=f)
    return np.asarray(head)


def strip(
    systems: dict[str, np.ndarray], n_frames: int = 6, size: int = CELL, title: str | None = None
) -> np.ndarray:
    """Figure 3-style image ``[H, W, 3]``: one row per system, ``n_frames`` columns of ``size`` px
    sampled evenly over each sequence's own length (so rows of different lengths show the same
    relative moments); one view fitted to the drawn frames of all rows (comparable positions, and
    larger skeletons than a fit to every frame); a :data:`TITLE_HEIGHT` px title band on top when given."""
    picks = {
        label: np.linspace(0, len(seq) - 1, n_frames).round().astype(int) for label, seq in systems.items()
    }
    view = View.fit(
        *(np.asarray(seq)[picks[label]] for label, seq in systems.items()), width=size, height=size
    )
    rows = []
    for label, seq in systems.items():
        idx = picks[label]
        cells = [
            np.asarray(draw_frame(seq[i], view, f"{label} t={i}" if k == 0 else f"t={i}"))
            for k, i in enumerate(idx)
        ]
        rows.append(np.concatenate(cells, axis=1))
    img = np.concatenate(rows, axis=0)
    if title:
        img = np.concatenate([title_band(title, img.shape[1]), img], axis=0)
    return img


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Save an ``[H, W, 3]`` uint8 image as PNG."""
    Image.fromarray(np.asarray(image, np.uint8)).save(Path(path))
    return Path(path)
