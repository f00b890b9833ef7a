"""Skeleton drawing of pose sequences: frames (numpy RGB), animated GIF/MP4 and side-by-side strips.

Poses are ``[T, J, 3]`` of the manual layout (50 joints, or 120 with the face;
:mod:`pipeline.data.skeleton`) in any 3D units with x right and y down (body-centred units from
:class:`pipeline.inference.Translator`, or the lifted [0, 1] space). The drawing is the orthographic
front view (x, y; depth is ignored) with PIL: body bones grey-blue, the signer's left hand (image
right) green, right hand red, face points/contours light grey. One :class:`View` (fitted to all
frames to draw) maps coordinates to pixels with equal x/y scale, so a sequence does not jump or
stretch. About 1-2 ms per 320 x 320 frame on one CPU core; GIF/MP4 go through imageio (MP4: libx264
from imageio-ffmpeg's bundled ffmpeg, yuv420p, so players and browsers open it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.data.skeleton import FACE_BONES, MANUAL_BONES, MANUAL_JOINTS, PARTS, part_of

BACKGROUND = (255, 255, 255)
COLORS = {
    "body": (60, 80, 140),
    "left_hand": (30, 150, 60),
    "right_hand": (200, 50, 40),
    "face": (150, 150, 150),
}


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
    width: int = 320
    height: int = 320

    @classmethod
    def fit(cls, *sequences: np.ndarray, width: int = 320, height: int = 320, margin: float = 0.08) -> View:
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


def draw_frame(frame: np.ndarray, view: View, label: str | None = None) -> Image.Image:
    """One skeleton ``[J, 3]`` drawn on a new RGB image."""
    img = Image.new("RGB", (view.width, view.height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    px = view.pixels(np.asarray(frame, np.float64)[:, :2])
    ok = np.isfinite(px).all(axis=1)
    line = max(1, round(view.width / 160))
    for p, c, part in bones(len(px)):
        if ok[p] and ok[c]:
            width = 1 if part == "face" else (line + 1 if part == "body" else line)
            draw.line([tuple(px[p]), tuple(px[c])], fill=COLORS[part], width=width)
    r = max(1.0, view.width / 220)
    for j in np.flatnonzero(ok[: PARTS["right_hand"].stop]):  # joints of the face are not dotted
        x, y = px[j]
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(20, 20, 20))
    if label:
        draw.text((4, 3), label, fill=(0, 0, 0), font=font(11))
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
    """Looping animated GIF of ``frames [T, H, W, 3]`` at ``fps`` (GIF delays are whole 10 ms)."""
    import imageio.v2 as imageio

    imageio.mimwrite(Path(path), list(frames), format="GIF", duration=1000.0 / fps, loop=0)
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


def side_by_side(systems: dict[str, np.ndarray], width: int = 224, height: int = 224) -> np.ndarray:
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


def strip(
    systems: dict[str, np.ndarray], n_frames: int = 6, size: int = 160, title: str | None = None
) -> np.ndarray:
    """Figure 3-style image ``[H, W, 3]``: one row per system, ``n_frames`` columns sampled evenly over
    each sequence's own length (so rows of different lengths show the same relative moments)."""
    view = View.fit(*systems.values(), width=size, height=size)
    rows = []
    for label, seq in systems.items():
        idx = np.linspace(0, len(seq) - 1, n_frames).round().astype(int)
        cells = [
            np.asarray(draw_frame(seq[i], view, f"{label} t={i}" if k == 0 else f"t={i}"))
            for k, i in enumerate(idx)
        ]
        rows.append(np.concatenate(cells, axis=1))
    img = np.concatenate(rows, axis=0)
    if title:
        head = Image.new("RGB", (img.shape[1], 16), BACKGROUND)
        ImageDraw.Draw(head).text((4, 1), title[: img.shape[1] // 6], fill=(0, 0, 0), font=font(11))
        img = np.concatenate([np.asarray(head), img], axis=0)
    return img


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Save an ``[H, W, 3]`` uint8 image as PNG."""
    Image.fromarray(np.asarray(image, np.uint8)).save(Path(path))
    return Path(path)
