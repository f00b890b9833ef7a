"""A synthetic 3D signer in body-centred units, for the lifting's tests and benchmark.

:func:`synthetic_signer` draws a smooth signing-like sequence of the 50 manual joints with exactly
known 3D (its own generator, independent of the corpus in :mod:`pipeline.synth`); :func:`project`
views it orthographically or through a perspective camera.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.data.skeleton import MANUAL, MANUAL_JOINTS
from pipeline.lifting.bones import BONE_CHILD, BONE_CLASS, N_CLASSES, N_MANUAL, PRIOR_LENGTHS


def _smooth(rng: np.random.Generator, t: np.ndarray, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Sum of three random sinusoids (0.2-1.5 Hz), roughly in [-1, 1], shape ``[T, *shape]``."""
    out = np.zeros((len(t), *shape))
    for _ in range(3):
        f = rng.uniform(0.2, 1.5, shape)
        ph = rng.uniform(0, 2 * np.pi, shape)
        out += np.sin(2 * np.pi * f * t[(...,) + (None,) * len(shape)] + ph) / 3
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


_FINGER_BASE = {  # (along the hand axis, across the palm) in shoulder widths, for a unit hand
    "thumb": (0.04, 0.06),
    "index": (0.0, 0.045),
    "middle": (0.0, 0.0),
    "ring": (0.0, -0.04),
    "pinky": (0.0, -0.075),
}


def synthetic_signer(
    length: int, rng: np.random.Generator, fps: float = 25.0, elbow_back: float = 0.25
) -> np.ndarray:
    """One synthetic signing sequence ``[length, 50, 3]`` in body-centred units.

    Wrists move smoothly in a box in front of the chest, elbows follow by two-bone inverse
    kinematics (elbows down and out), hands carry a smooth orientation and per-finger flexion;
    bone lengths are the average proportions scaled per signer; the whole body is turned by a
    random yaw/pitch. Left/right lengths are identical, so the tree is exactly symmetric.
    ``elbow_back`` is the backward component of the elbow pole (larger: elbows further back).
    """
    t = np.arange(length) / fps
    scale = rng.uniform(0.9, 1.1, N_CLASSES)
    lengths = PRIOR_LENGTHS * scale[BONE_CLASS]
    L = dict(zip((MANUAL_JOINTS[c] for c in BONE_CHILD), lengths, strict=True))
    x = np.zeros((length, N_MANUAL, 3))
    j = MANUAL.__getitem__
    x[:, j("body_nose")] = _unit(np.array([0.0, -0.92, -0.4])) * L["body_nose"]
    for side, sx in (("r", -1.0), ("l", 1.0)):
        s = np.array([sx * L[f"body_{side}_shoulder"], 0.0, 0.0])
        x[:, j(f"body_{side}_shoulder")] = s
        a, b = L[f"body_{side}_elbow"], L[f"body_{side}_wrist"]
        w = np.stack(
            [
                sx * 0.25 + 0.35 * _smooth(rng, t),
                0.85 + 0.45 * _smooth(rng, t),
                -0.55 + 0.25 * _smooth(rng, t),
            ],
            axis=-1,
        )
        d = w - s
        dist = np.clip(np.linalg.norm(d, axis=-1, keepdims=True), 0.3, 0.98 * (a + b))
        n = d / np.linalg.norm(d, axis=-1, keepdims=True)
        w = s + n * dist
        cos_a = np.clip((a * a + dist**2 - b * b) / (2 * a * dist), -1, 1)
        pole = np.array([sx * 0.6, 1.0, elbow_back])  # elbows down, out and (elbow_back > 0) back
        u = _unit(pole - (n @ pole)[:, None] * n)
        e = s + a * (cos_a * n + np.sqrt(1 - cos_a**2) * u)
        x[:, j(f"body_{side}_elbow")] = e
        x[:, j(f"body_{side}_wrist")] = w
        # hand frame: axis h continues the forearm with a smooth wrist bend; twist about h
        fore = _unit(w - e)
        h = _unit(fore + 0.6 * _smooth(rng, t, (3,)))
        ref = np.array([0.0, 0.0, -1.0])
        n0 = _unit(ref - (h @ ref)[:, None] * h)
        tw = 1.2 * _smooth(rng, t)[:, None]
        n0 = n0 * np.cos(tw) + np.cross(h, n0) * np.sin(tw)
        across = np.cross(n0, h) * sx
        hand = "lhand" if side == "l" else "rhand"
        wrist = w + _unit(rng.normal(size=3)) * L[f"{hand}_wrist"]
        x[:, j(f"{hand}_wrist")] = wrist
        flex = 0.6 + 0.5 * _smooth(rng, t, (5,))  # radians per joint
        for k, finger in enumerate(_FINGER_BASE):
            base_axis = h if finger != "thumb" else _unit(h + 0.8 * across)
            along, side_off = _FINGER_BASE[finger]
            mc = L[f"{hand}_{finger}1"]
            p = wrist + mc * _unit(base_axis + (side_off + along) * 3 * across)
            x[:, j(f"{hand}_{finger}1")] = p
            for m in range(2, 5):
                ang = flex[:, k : k + 1] * (m - 1)
                direction = np.cos(ang) * base_axis + np.sin(ang) * n0
                p = p + L[f"{hand}_{finger}{m}"] * direction
                x[:, j(f"{hand}_{finger}{m}")] = p
    rot = Rotation.from_euler("yx", [rng.uniform(-0.5, 0.5), rng.uniform(-0.15, 0.15)])
    return rot.apply(x.reshape(-1, 3)).reshape(x.shape)


def project(x: np.ndarray, distance: float | None = None) -> np.ndarray:
    """Project body-centred 3D ``[..., 3]`` to 2D: orthographic, or perspective from a camera
    ``distance`` shoulder widths in front of the neck (rescaled so the neck plane keeps scale)."""
    if distance is None:
        return x[..., :2].copy()
    return x[..., :2] * (distance / (distance + x[..., 2:3]))
