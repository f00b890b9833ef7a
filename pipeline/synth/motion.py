"""Gloss sequence -> per-frame control signals: rest pose, co-articulated transitions, strokes, holds.

Every frame is a flat state vector (both hands' palm position, orientation, finger angles,
spread, opposition; eyebrows; mouth). A sentence is rendered as
rest -> (transition -> stroke -> hold) per gloss -> transition -> rest, then low-pass filtered
over time, which blends neighbouring signs the way co-articulation does (handshape and
orientation change during the transition, paths round off at the corners).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from pipeline.synth.body import Controls, Signer
from pipeline.synth.lexicon import (
    BASE_N,
    BASE_PALM,
    BASE_U,
    HANDSHAPES,
    ORIENTATIONS,
    RELAXED,
    REST_N,
    REST_PALM,
    REST_U,
    mirror,
    path_points,
    sign_for,
)

# state layout: per hand palm(3) u(3) n(3) ang(15) spread(1) opp(1) = 26; right, left; brows; mouth
_H = 26
DIM = 2 * _H + 2
_BROWS, _MOUTH = 2 * _H, 2 * _H + 1


def _hand(palm: np.ndarray, u, n, shape: tuple[np.ndarray, float, float]) -> np.ndarray:
    ang, spread, opp = shape
    return np.concatenate([palm, np.asarray(u, float), np.asarray(n, float), ang.ravel(), [spread, opp]])


def _state(right: np.ndarray, left: np.ndarray, brows: float = 0.0, mouth: float = 0.0) -> np.ndarray:
    return np.concatenate([right, left, [brows, mouth]])


def _blend(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """``n`` frames easing from state ``a`` (excluded) to ``b`` (included)."""
    s = np.arange(1, n + 1)[:, None] / n
    s = s * s * (3 - 2 * s)
    return a + (b - a) * s


def body_scale(signer: Signer) -> np.ndarray:
    """Per-axis factor from the reference body (shoulders 0.40 m, torso 0.52 m) to this signer."""
    size = signer.torso / 0.52
    return np.array([signer.shoulder_width / 0.40, size, size])


def build_controls(
    glosses: list[str], signer: Signer, rng: np.random.Generator, max_frames: int, fps: float = 25.0
) -> Controls:
    """Per-frame :class:`Controls` for one sentence, at most ``max_frames`` frames long."""
    k = body_scale(signer)
    tempo = signer.speed * 25.0 / fps  # frames are at `fps`; sign durations are defined at 25 fps
    rest_r = _hand(REST_PALM * k, REST_U, REST_N, RELAXED)
    rest_l = _hand(mirror(REST_PALM) * k, mirror(REST_U), REST_N, RELAXED)
    ready_l = _hand(mirror(REST_PALM + np.array([0.02, 0.07, 0.03])) * k, mirror(REST_U), REST_N, RELAXED)
    base_l = _hand(mirror(BASE_PALM) * k, mirror(BASE_U), BASE_N, HANDSHAPES["B"])
    # per-instance variation, drawn once so that re-timing below is deterministic
    inst = [
        {
            "sign": sign_for(g),
            "d0": rng.normal(0, 0.01, 3),
            "d1": rng.normal(0, 0.01, 3),
            "dur": rng.uniform(0.9, 1.1),
            "amp": rng.uniform(0.85, 1.15),
            "hold": int(rng.integers(0, 3)),
            "freq": rng.uniform(1.0, 2.5),
        }
        for g in glosses
    ]
    rest_in, rest_out = int(rng.integers(4, 8)), int(rng.integers(4, 8))
    scale = 1.0
    for _ in range(20):
        states = _render(inst, k, tempo * scale, rest_r, rest_l, ready_l, base_l, rest_in, rest_out)
        if len(states) <= max_frames:
            break
        scale *= len(states) / max_frames * 1.03
    else:
        raise ValueError(f"cannot fit {len(glosses)} glosses into max_frames={max_frames}")
    states = gaussian_filter1d(states, sigma=1.2 * fps / 25.0, axis=0, mode="nearest")
    return _unpack(states, signer, rng)


def _render(inst, k, tempo, rest_r, rest_l, ready_l, base_l, rest_in, rest_out) -> np.ndarray:
    cur = _state(rest_r, rest_l)
    chunks = [np.repeat(cur[None], rest_in, 0)]
    for it in inst:
        sign = it["sign"]
        n = max(4, round(sign.frames * it["dur"] / tempo))
        p0, p1 = sign.start * k + it["d0"], sign.end * k + it["d1"]
        s = np.linspace(0.0, 1.0, n)
        path = path_points(sign, s, p0, p1, it["amp"])
        u0, n0 = ORIENTATIONS[sign.orient_start]
        u1, n1 = ORIENTATIONS[sign.orient_end]
        r0 = _hand(path[0], u0, n0, HANDSHAPES[sign.shape_start])
        r1 = _hand(path[-1], u1, n1, HANDSHAPES[sign.shape_end])
        stroke = np.empty((n, DIM))
        stroke[:, :_H] = r0 + (r1 - r0) * s[:, None]
        stroke[:, :3] = path
        if sign.hands == "mirror":
            l0 = _hand(
                mirror(path[0]), mirror(np.array(u0)), mirror(np.array(n0)), HANDSHAPES[sign.shape_start]
            )
            l1 = _hand(
                mirror(path[-1]), mirror(np.array(u1)), mirror(np.array(n1)), HANDSHAPES[sign.shape_end]
            )
            stroke[:, _H : 2 * _H] = l0 + (l1 - l0) * s[:, None]
            stroke[:, _H : _H + 3] = mirror(path)
        else:
            stroke[:, _H : 2 * _H] = base_l if sign.hands == "base" else ready_l
        stroke[:, _BROWS] = sign.brows
        stroke[:, _MOUTH] = sign.mouth * (0.5 - 0.5 * np.cos(2 * np.pi * it["freq"] * s))
        dist = max(
            np.linalg.norm(stroke[0, :3] - cur[:3]), np.linalg.norm(stroke[0, _H : _H + 3] - cur[_H : _H + 3])
        )
        n_tr = int(np.clip(round(dist / (0.045 * tempo)), 2, 9))
        chunks.append(_blend(cur, stroke[0], n_tr))
        chunks.append(stroke[1:])
        cur = stroke[-1]
        if it["hold"]:
            chunks.append(np.repeat(cur[None], it["hold"], 0))
    end = _state(rest_r, rest_l)
    dist = max(np.linalg.norm(end[:3] - cur[:3]), np.linalg.norm(end[_H : _H + 3] - cur[_H : _H + 3]))
    chunks.append(_blend(cur, end, int(np.clip(round(dist / (0.04 * tempo)), 3, 10))))
    chunks.append(np.repeat(end[None], rest_out, 0))
    return np.concatenate(chunks)


def _smooth_noise(rng: np.random.Generator, T: int, dims: int, sigma: float) -> np.ndarray:
    x = gaussian_filter1d(rng.normal(0, 1, (T + 40, dims)), sigma, axis=0, mode="wrap")[20:-20]
    return x / max(x.std(), 1e-9)


def _unpack(states: np.ndarray, signer: Signer, rng: np.random.Generator) -> Controls:
    T = len(states)

    def hand(o: int):
        h = states[:, o : o + _H]
        return h[:, :3], h[:, 3:6], h[:, 6:9], h[:, 9:24].reshape(T, 5, 3), h[:, 24], h[:, 25]

    pr, ur, nr, ar, sr, orr = hand(0)
    pl, ul, nl, al, sl, ol = hand(_H)
    head = signer.sway * _smooth_noise(rng, T, 3, 6.0)
    head[:, 1] += 0.25 * (pr[:, 0] - REST_PALM[0]) - 0.1 * (pl[:, 0] + REST_PALM[0])  # look toward the hands
    head[:, 0] += 0.3 * np.clip(pr[:, 1] - 0.05, 0, None)  # chin up for signs near the face
    torso = 0.5 * signer.sway * _smooth_noise(rng, T, 3, 10.0)
    return Controls(
        palm_r=pr, palm_l=pl, u_r=ur, n_r=nr, u_l=ul, n_l=nl, ang_r=ar, ang_l=al,
        spread_r=sr, spread_l=sl, opp_r=orr, opp_l=ol,
        brows=states[:, _BROWS], mouth=np.clip(states[:, _MOUTH], 0, 1), head=head, torso=torso,
    )  # fmt: skip
