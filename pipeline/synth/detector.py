"""OpenPose-like detector noise on projected joints.

From the noise-free pixels of one sequence it produces, per frame, the list of detected
people as ``[137, 3]`` arrays (x, y, confidence) in raw OpenPose order: per-joint jitter that
grows with motion speed and falls with confidence, confidences in (0, 1], undetected joints as
exactly ``0, 0, 0`` (hands far more often than the body, in bursts, more when moving fast;
joints outside the image; the face when a hand covers it), occasional frames without any
person and occasional short runs with a spurious second person (a partial, low-confidence
body) placed before or after the signer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtr

from pipeline.config import param
from pipeline.data.skeleton import RAW, RAW_FACE, RAW_LHAND, RAW_RHAND

_LEG_JOINTS = ("hip", "knee", "ankle", "big_toe", "small_toe", "heel")
_LEGS = np.array(sorted(RAW[f"body_{side}_{j}"] for side in ("r", "l") for j in _LEG_JOINTS))
_MID_HIP = RAW["body_mid_hip"]
_FINGERTIPS = [
    RAW[f"{hand}_{finger}4"]
    for hand in ("lhand", "rhand")
    for finger in ("thumb", "index", "middle", "ring", "pinky")
]
_UPPER = slice(RAW["body_nose"], RAW["body_l_wrist"] + 1)  # BODY_25 0..7: what a partial ghost body shows
_NECK = RAW["body_neck"]


@dataclass(frozen=True)
class DetectorConfig:
    """Noise levels of the simulated detector (params ``synthetic.detector``)."""

    jitter_px: float = param(1.0, ge=0)  # body jitter sigma at full confidence, pixels
    p_empty: float = param(
        0.006, ge=0, le=1
    )  # per-frame probability that a run of "people": [] frames starts
    p_second: float = param(0.15, ge=0, le=1)  # per-sequence probability of a spurious second person
    hand_dropout: float = param(0.06, ge=0, le=1)  # base rate of whole-hand misses per frame
    joint_miss: float = param(0.01, ge=0, le=1)  # base rate of single-joint misses (hands x4, face x2)
    speed_miss: float = param(0.01, ge=0, le=1)  # added miss rate per pixel/frame of joint speed


def _burst_uniform(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Uniform [0, 1] marginals that are correlated over ``sigma`` frames (bursty misses)."""
    g = gaussian_filter1d(rng.normal(0, 1, n + 20), sigma, mode="wrap")[10:-10]
    kernel = gaussian_filter1d(np.eye(1, 41, 20)[0], sigma)
    return ndtr(g / np.sqrt(np.sum(kernel**2)))


def detect(
    uv: np.ndarray, width: int, height: int, rng: np.random.Generator, cfg: DetectorConfig
) -> tuple[list[list[np.ndarray]], dict[str, int]]:
    """Simulate detections for noise-free pixels ``uv`` ``[T, 137, 2]``.

    Returns one list of people (each ``[137, 3]`` float32: x, y, c) per frame and counts
    ``{"frames", "empty_frames", "two_person_frames", "joints", "missing_joints"}``.
    """
    T, J, _ = uv.shape
    vel = np.zeros((T, J))
    if T > 1:
        d = np.linalg.norm(np.diff(uv, axis=0), axis=-1)
        vel[1:] = d
        vel[:-1] = np.maximum(vel[:-1], d)
    # confidence: part baseline x per-frame quality - speed penalty + noise
    base = np.full(J, 0.82)
    base[RAW_FACE] = 0.78
    base[RAW_LHAND] = base[RAW_RHAND] = 0.62
    base[_FINGERTIPS] = 0.5
    base[_MID_HIP] = 0.55
    quality = np.ones((T, J))
    for sl in (RAW_LHAND, RAW_RHAND, RAW_FACE):
        quality[:, sl] = 0.75 + 0.35 * _burst_uniform(rng, T, 3.0)[:, None]
    conf = base * quality - 0.012 * vel + rng.normal(0, 0.06, (T, J))
    conf = np.clip(conf, 0.03, 0.99)
    # misses
    p = np.full(J, cfg.joint_miss)
    p[RAW_LHAND] = p[RAW_RHAND] = 4 * cfg.joint_miss
    p[RAW_FACE] = 2 * cfg.joint_miss
    p[_MID_HIP] = 0.3
    p[_LEGS] = 0.6
    miss = rng.random((T, J)) < p + cfg.speed_miss * vel
    outside = (uv[..., 0] < 0) | (uv[..., 0] >= width) | (uv[..., 1] < 0) | (uv[..., 1] >= height)
    miss |= outside
    for sl, wrist in ((RAW_LHAND, RAW["lhand_wrist"]), (RAW_RHAND, RAW["rhand_wrist"])):
        p_hand = np.clip(cfg.hand_dropout + 0.015 * vel[:, wrist], 0, 0.9)
        miss[:, sl] |= (_burst_uniform(rng, T, 2.0) < p_hand)[:, None]
    # a hand in front of the face hides part of it
    face_w = np.linalg.norm(uv[:, RAW["face_face16"]] - uv[:, RAW["face_face0"]], axis=-1)  # jaw end to end
    for mcp in (RAW["lhand_middle1"], RAW["rhand_middle1"]):  # middle-finger MCP of each hand
        near = np.linalg.norm(uv[:, mcp] - uv[:, RAW["body_nose"]], axis=-1) < 0.6 * face_w
        hide = near[:, None] & (rng.random((T, 70)) < 0.6)
        miss[:, RAW_FACE] |= hide
        conf[:, RAW_FACE] -= 0.25 * near[:, None]
    conf = np.clip(conf, 0.03, 0.99)
    # jitter
    sigma = np.full(J, cfg.jitter_px)
    sigma[RAW_FACE] *= 0.6
    sigma[RAW_LHAND] *= 1.3
    sigma[RAW_RHAND] *= 1.3
    sigma = sigma * (1 + 0.03 * vel) * (1.3 - conf)
    xy = uv + rng.normal(0, 1, (T, J, 2)) * sigma[..., None]
    xy[..., 0] = np.clip(xy[..., 0], 0.0, width - 1e-3)
    xy[..., 1] = np.clip(xy[..., 1], 0.0, height - 1e-3)
    det = np.concatenate([np.round(xy, 3), np.round(conf, 6)[..., None]], axis=-1).astype(np.float32)
    det[miss] = 0.0
    frames: list[list[np.ndarray]] = [[det[t]] for t in range(T)]
    # spurious second person: a partial, low-confidence body for a short run of frames
    n_two = 0
    if T > 2 and rng.random() < cfg.p_second:
        start, length = int(rng.integers(0, T - 1)), int(rng.integers(2, 13))
        centre = np.array([rng.uniform(15, width - 15), rng.uniform(40, height - 20)])
        scale = rng.uniform(0.3, 0.6)
        first = rng.random() < 0.5
        for t in range(start, min(T, start + length)):
            ghost = np.zeros((J, 3), np.float32)
            body = uv[t, _UPPER]
            n_up = len(body)
            pts = (body - body[_NECK]) * scale + centre + rng.normal(0, 2.0, (n_up, 2))
            keep = rng.random(n_up) < 0.6
            keep[_NECK] = True
            ghost[_UPPER, :2] = np.round(np.clip(pts, 0, [width - 1, height - 1]), 3)
            ghost[_UPPER, 2] = np.round(rng.uniform(0.05, 0.35, n_up), 6)
            ghost[_UPPER][~keep] = 0.0
            frames[t] = [ghost, frames[t][0]] if first else [frames[t][0], ghost]
            n_two += 1
    # frames without any detection, in runs of 1..3
    n_empty = 0
    for t0 in np.flatnonzero(rng.random(T) < cfg.p_empty):
        for t in range(t0, min(T, t0 + int(rng.integers(1, 4)))):
            if frames[t]:
                n_two -= len(frames[t]) > 1
                frames[t] = []
                n_empty += 1
    stats = {
        "frames": T,
        "empty_frames": n_empty,
        "two_person_frames": n_two,
        "joints": T * J,
        "missing_joints": int(miss.sum()),
    }
    return frames, stats
