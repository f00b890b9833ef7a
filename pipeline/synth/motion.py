"""Gloss sequence -> per-frame control signals: lexical variants, signer style, co-articulation,
prosody (tempo curve, pauses, final lengthening) and non-manual face and head movement.

:func:`plan_signs` fixes every random choice of a sentence once: for each gloss the lexical
variant (the signer's preferred one, :func:`preferred_variant`, or with ``p_other_variant``
another), per-instance noise, the local tempo (a smooth per-sentence curve, the last sign
lengthened), holds and pauses, nods, mouthing; the start of each sign shifts toward the end of
the previous one and its end toward the start of the next (``coarticulation``; not across a
pause). :func:`build_controls` renders the plan as rest -> (transition -> stroke -> hold
[-> pause]) per gloss -> transition -> rest; the handshape reaches its target earlier than the
hand (``anticipation``). Every frame is a flat state vector (both hands' palm position,
orientation, finger angles, spread, opposition; eyebrows; mouth opening; lip rounding),
low-pass filtered over time (width per signer); a left-handed signer's hands are mirrored.
Head shakes (negation glosses), nods (boundaries, sentence end) and blinks are added on the
rendered timeline. Sentences longer than ``max_frames`` are re-rendered faster.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from pipeline.config import param
from pipeline.synth.body import LEFT_HANDED_SHARE, Controls, Signer
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
    Sign,
    gloss_unit,
    keep_in_front,
    mirror,
    n_variants,
    path_points,
    sign_for,
)

NEGATIONS = frozenset({"NICHT", "KEIN", "KEINE", "NICHTS", "NIE", "NIEMAND", "NEIN"})


def is_negation(gloss: str) -> bool:
    """Whether ``gloss`` is signed with a head shake (NICHT, KEIN, NICHT-MEHR, ...)."""
    return gloss in NEGATIONS or gloss.startswith(("NICHT", "KEIN"))


@dataclass(frozen=True)
class SigningConfig:
    """How signs are executed (params ``synthetic.signing``)."""

    variants_2: float = param(0.25, ge=0, le=1)  # share of glosses with 2 lexical variants
    variants_3: float = param(0.08, ge=0, le=1)  # share of glosses with 3 lexical variants
    p_other_variant: float = param(0.1, ge=0, le=1)  # per instance: not the signer's preferred variant
    left_handed: float = param(LEFT_HANDED_SHARE, ge=0, le=1)  # share of left-handed signers (rounded)
    coarticulation: float = param(0.2, ge=0, le=0.5)  # start/end shift toward the neighbouring sign
    anticipation: float = param(0.4, ge=0, lt=1)  # handshape leads the hand by this share of a transition
    tempo: float = param(1.0, gt=0)  # overall signing rate (calibrated: ~12 frames per gloss)
    tempo_var: float = param(0.12, ge=0, le=0.5)  # SD of the smooth per-sentence log-tempo curve
    p_pause: float = param(0.08, ge=0, le=1)  # per gloss boundary: a pause (and at clause ends)
    pause_frames: tuple[int, int] = (4, 10)  # pause length range, frames at 25 fps
    final_lengthening: float = param(1.3, ge=1)  # the last sign's stroke is this much longer
    mouthing: float = param(0.6, ge=0, le=1)  # share of glosses signed with mouthing
    p_nod: float = param(0.1, ge=0, le=1)  # per gloss: a small nod after it (always at the end)

    def __post_init__(self) -> None:
        if self.variants_2 + self.variants_3 > 1:
            raise ValueError(f"variants_2 + variants_3 = {self.variants_2 + self.variants_3:g} exceeds 1")
        lo, hi = self.pause_frames
        if not 1 <= lo <= hi:
            raise ValueError(
                f"pause_frames={list(self.pause_frames)} is invalid; expected [lo, hi], 1 <= lo <= hi"
            )


def preferred_variant(signer: str, gloss: str, n: int) -> int:
    """The variant of ``gloss`` (out of ``n``) that ``signer`` uses by default (crc32, no hash())."""
    return zlib.crc32(f"{signer}|{gloss}".encode()) % n if n > 1 else 0


@dataclass
class Instance:
    """One planned sign of a sentence (positions in the reference body frame, see lexicon)."""

    gloss: str
    sign: Sign
    preferred: int  # the signer's preferred variant (``sign.variant`` is the one used)
    p0: np.ndarray  # [3] stroke start, after signing-space scaling and co-articulation
    p1: np.ndarray  # [3] stroke end
    amp: float  # path amplitude factor
    dur: float  # stroke duration factor (noise, tempo curve, final lengthening)
    hold: int  # frames held after the stroke
    pause: int  # frames of pause after the hold (0: none)
    nod: bool  # a head nod after the stroke
    mouthed: bool
    negation: bool
    cache: dict = field(default_factory=dict, repr=False)  # render-invariant arrays (see _static)


_FACE_Y = 0.05  # loci above this height are at the head (not scaled with the signing space)
_SPACE_CENTRE = np.array([-0.05, -0.15, 0.15])


def plan_signs(
    glosses: list[str],
    signer: Signer,
    rng: np.random.Generator,
    cfg: SigningConfig | None = None,
    clause_ends: Collection[int] = (),
) -> list[Instance]:
    """Fix every random choice for signing ``glosses`` (a fixed number of draws per gloss).

    ``clause_ends``: indices of glosses that end a clause (a pause and a nod follow them).
    """
    cfg = cfg or SigningConfig()
    N = len(glosses)
    r = rng.random((N, 8))
    noise = rng.normal(0, 0.01, (N, 2, 3))
    amp_c, phase = rng.normal(0, 1, 2), rng.uniform(0, 2 * np.pi, 2)
    x = np.arange(N) / max(N - 1, 1)
    curve = amp_c[0] * np.sin(np.pi * x + phase[0]) + amp_c[1] * np.sin(2 * np.pi * x + phase[1])
    rate = np.exp(cfg.tempo_var * curve)  # unit-variance curve -> local tempo factor
    lo, hi = cfg.pause_frames
    plan: list[Instance] = []
    for i, g in enumerate(glosses):
        n = n_variants(g, cfg.variants_2, cfg.variants_3)
        pref = preferred_variant(signer.name, g, n)
        v = pref
        if n > 1 and r[i, 0] < cfg.p_other_variant:
            v = [k for k in range(n) if k != pref][int(r[i, 1] * (n - 1))]
        sign = sign_for(g, v)
        last = i == N - 1
        p0 = sign.start.copy()
        move = (sign.end - sign.start) * signer.space
        if sign.hands != "base" and p0[1] <= _FACE_Y:  # neutral space grows with the signing space
            p0 += (p0 - _SPACE_CENTRE) * (signer.space - 1.0) * np.array([1.0, 0.5, 1.0])
        pause = 0 if last else lo + int(r[i, 3] * (hi - lo + 1))
        plan.append(
            Instance(
                gloss=g,
                sign=sign,
                preferred=pref,
                p0=p0 + noise[i, 0],
                p1=p0 + move + noise[i, 1],
                amp=(0.85 + 0.3 * r[i, 6]) * signer.space,
                dur=(0.9 + 0.2 * r[i, 5]) / rate[i] * (cfg.final_lengthening if last else 1.0),
                hold=int(r[i, 4] * 1.5) + (2 if last else 0),
                pause=pause if (r[i, 2] < cfg.p_pause or i in clause_ends) else 0,
                nod=last or i in clause_ends or r[i, 7] < cfg.p_nod,
                mouthed=gloss_unit(g, "mouth") < cfg.mouthing,
                negation=is_negation(g),
            )
        )
    # co-articulation from the neighbours' un-shifted positions (none across a pause)
    c = cfg.coarticulation
    p0s, p1s = [it.p0 for it in plan], [it.p1 for it in plan]
    for i, it in enumerate(plan):
        w = c * (0.5 if it.sign.hands == "base" else 1.0)  # a sign on the base hand stays on it
        if i > 0 and not plan[i - 1].pause:
            it.p0 = it.p0 + w * (p1s[i - 1] - it.p0)
        if i < N - 1 and not it.pause:
            it.p1 = it.p1 + w * (p0s[i + 1] - it.p1)
        it.p0, it.p1 = keep_in_front(it.p0, it.p1, it.sign.hands)
    return plan


# state layout: per hand palm(3) u(3) n(3) ang(15) spread(1) opp(1) = 26; right, left; brows; mouth; lips
_H = 26
DIM = 2 * _H + 3
_BROWS, _MOUTH, _LIPS = 2 * _H, 2 * _H + 1, 2 * _H + 2
_SHAPE = np.r_[9:_H, _H + 9 : 2 * _H]  # finger angles, spread, opposition of both hands
_ORIENT = np.r_[3:9, _H + 3 : _H + 9]
_KIND = np.zeros(DIM, int)  # blend curve per state entry: 0 position etc., 1 handshape, 2 orientation
_KIND[_SHAPE], _KIND[_ORIENT] = 1, 2


def _hand(palm: np.ndarray, u, n, shape: tuple[np.ndarray, float, float]) -> np.ndarray:
    ang, spread, opp = shape
    return np.concatenate([palm, np.asarray(u, float), np.asarray(n, float), ang.ravel(), [spread, opp]])


def _state(right: np.ndarray, left: np.ndarray, brows: float = 0.0, mouth: float = 0.0) -> np.ndarray:
    return np.concatenate([right, left, [brows, mouth, 0.0]])


def _ease(s: np.ndarray) -> np.ndarray:
    return s * s * (3 - 2 * s)


def _blend(a: np.ndarray, b: np.ndarray, n: int, anticipation: float = 0.0) -> np.ndarray:
    """``n`` frames easing from state ``a`` (excluded) to ``b`` (included); handshape (and, half
    as much, orientation) reach ``b`` earlier by ``anticipation`` of the transition."""
    s = np.arange(1, n + 1) / n
    if not anticipation:
        return a + (b - a) * _ease(s)[:, None]
    lead = np.minimum(s[:, None] / (1 - np.array([0.0, anticipation, 0.5 * anticipation])), 1.0)
    return a + (b - a) * _ease(lead)[:, _KIND]


def _sloppy(name: str, amount: float) -> tuple[np.ndarray, float, float]:
    """Handshape ``name`` blended ``amount`` of the way toward the relaxed hand."""
    (ang, spread, opp), (ra, rs, ro) = HANDSHAPES[name], RELAXED
    return ang + amount * (ra - ang), spread + amount * (rs - spread), opp + amount * (ro - opp)


def body_scale(signer: Signer) -> np.ndarray:
    """Per-axis factor from the reference body (shoulders 0.40 m, torso 0.52 m) to this signer."""
    size = signer.torso / 0.52
    return np.array([signer.shoulder_width / 0.40, size, size])


def build_controls(
    glosses: list[str],
    signer: Signer,
    rng: np.random.Generator,
    max_frames: int,
    fps: float = 25.0,
    cfg: SigningConfig | None = None,
    clause_ends: Collection[int] = (),
) -> Controls:
    """Per-frame :class:`Controls` for one sentence, at most ``max_frames`` frames long."""
    cfg = cfg or SigningConfig()
    k = body_scale(signer)
    tempo = signer.speed * cfg.tempo * 25.0 / fps  # frames are at `fps`; durations are defined at 25 fps
    rest_r = _hand(REST_PALM * k, REST_U, REST_N, RELAXED)
    rest_l = _hand(mirror(REST_PALM) * k, mirror(REST_U), REST_N, RELAXED)
    ready_l = _hand(mirror(REST_PALM + np.array([0.02, 0.07, 0.03])) * k, mirror(REST_U), REST_N, RELAXED)
    base_l = _hand(mirror(BASE_PALM) * k, mirror(BASE_U), BASE_N, _sloppy("B", signer.sloppiness))
    plan = plan_signs(glosses, signer, rng, cfg, clause_ends)
    rest_in, rest_out = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    hands = (rest_r, rest_l, ready_l, base_l)
    scale = 1.0
    for _ in range(20):
        states, spans = _render(plan, k, tempo * scale, hands, rest_in, rest_out, signer, cfg.anticipation)
        if len(states) <= max_frames:
            break
        scale *= len(states) / max_frames * 1.03
    else:
        raise ValueError(f"cannot fit {len(glosses)} glosses into max_frames={max_frames}")
    if signer.left_handed:
        states = _swap_hands(states)
    states = gaussian_filter1d(states, sigma=1.2 * signer.smoothness * fps / 25.0, axis=0, mode="nearest")
    return _unpack(states, plan, spans, signer, rng, fps)


def _swap_hands(states: np.ndarray) -> np.ndarray:
    """Mirror the signing: the right hand's track becomes the left's and vice versa."""
    out = states.copy()
    flip = np.ones(_H)
    flip[[0, 3, 6]] = -1.0  # X of palm, finger direction, palm normal
    out[:, :_H], out[:, _H : 2 * _H] = states[:, _H : 2 * _H] * flip, states[:, :_H] * flip
    return out


def _static(it: Instance, k: np.ndarray, signer: Signer, ready_l: np.ndarray, base_l: np.ndarray) -> dict:
    """The render-invariant parts of a stroke: start/end state (palm positions filled per render)."""
    if not it.cache:
        sign, slop = it.sign, signer.sloppiness
        (u0, n0), (u1, n1) = ORIENTATIONS[sign.orient_start], ORIENTATIONS[sign.orient_end]
        sh0, sh1 = _sloppy(sign.shape_start, slop), _sloppy(sign.shape_end, slop)
        zero = np.zeros(3)
        s0, s1 = np.empty(DIM), np.empty(DIM)
        s0[:_H], s1[:_H] = _hand(zero, u0, n0, sh0), _hand(zero, u1, n1, sh1)
        if sign.hands == "mirror":
            s0[_H : 2 * _H] = _hand(zero, mirror(np.array(u0)), mirror(np.array(n0)), sh0)
            s1[_H : 2 * _H] = _hand(zero, mirror(np.array(u1)), mirror(np.array(n1)), sh1)
        else:
            s0[_H : 2 * _H] = s1[_H : 2 * _H] = base_l if sign.hands == "base" else ready_l
        s0[_BROWS] = s1[_BROWS] = signer.expressivity * (-0.8 if it.negation else sign.brows)
        s0[_MOUTH:] = s1[_MOUTH:] = 0.0
        it.cache.update(s0=s0, s1=s1, p0=it.p0 * k, p1=it.p1 * k, syl=np.array(sign.syllables).T)
    return it.cache


def _render(plan, k, tempo, hands, rest_in, rest_out, signer, anticipation):
    """States ``[T, DIM]`` and the frame span ``(start, end)`` of each stroke."""
    rest_r, rest_l, ready_l, base_l = hands
    rest = _state(rest_r, rest_l)
    cur = rest
    chunks = [np.repeat(cur[None], rest_in, 0)]
    t = rest_in
    spans = []
    expr = signer.expressivity
    for it in plan:
        sign = it.sign
        st = _static(it, k, signer, ready_l, base_l)
        n = max(3, round(sign.frames * it.dur / tempo))
        s = np.arange(n) / (n - 1)
        path = path_points(sign, s, st["p0"], st["p1"], it.amp)
        stroke = st["s0"] + (st["s1"] - st["s0"]) * s[:, None]
        stroke[:, :3] = path
        if sign.hands == "mirror":
            stroke[:, _H : _H + 3] = mirror(path)
        if it.mouthed:  # one opening (and rounding) per syllable
            m = st["syl"].shape[1]
            seg = np.minimum((s * m).astype(int), m - 1)
            bump = np.sin(np.pi * (s * m - seg))
            stroke[:, _MOUTH] = expr * sign.mouth * st["syl"][0, seg] * bump
            stroke[:, _LIPS] = np.clip(expr * st["syl"][1, seg] * bump, -1, 1)
        dist = max(math.dist(stroke[0, :3], cur[:3]), math.dist(stroke[0, _H : _H + 3], cur[_H : _H + 3]))
        n_tr = min(max(round(dist / (0.08 * tempo)), 2), 7)
        chunks.append(_blend(cur, stroke[0], n_tr, anticipation))
        chunks.append(stroke[1:])
        spans.append((t + n_tr, t + n_tr + n - 1))
        t += n_tr + n - 1
        cur = stroke[-1]
        if it.hold:
            chunks.append(np.repeat(cur[None], it.hold, 0))
            t += it.hold
        if it.pause:  # the hands sink a quarter of the way toward rest and relax, the face too
            n_p = max(1, round(it.pause / tempo))
            target = cur + 0.25 * (rest - cur)
            target[_BROWS:] = 0.0
            chunks.append(_blend(cur, target, n_p))
            t += n_p
            cur = target
    dist = max(math.dist(rest[:3], cur[:3]), math.dist(rest[_H : _H + 3], cur[_H : _H + 3]))
    chunks.append(_blend(cur, rest, min(max(round(dist / (0.06 * tempo)), 3), 8)))
    chunks.append(np.repeat(rest[None], rest_out, 0))
    return np.concatenate(chunks), spans


def _smooth_noise(rng: np.random.Generator, T: int, dims: int, sigma: float) -> np.ndarray:
    x = gaussian_filter1d(rng.normal(0, 1, (T + 40, dims)), sigma, axis=0, mode="wrap")[20:-20]
    return x / max(x.std(), 1e-9)


_BLINK = np.array([0.5, 1.0, 1.0, 0.6, 0.25])  # eyelid closure over a blink at 25 fps (200 ms)


def _place(track: np.ndarray, start: int, profile: np.ndarray, op=np.add) -> None:
    """Apply ``profile`` to ``track`` from frame ``start`` on (clipped at both ends)."""
    a, b = max(start, 0), min(start + len(profile), len(track))
    if a < b:
        track[a:b] = op(track[a:b], profile[a - start : b - start])


def _nonmanual(plan, spans, signer: Signer, rng: np.random.Generator, T: int, fps: float):
    """Head pitch/yaw added by nods and negation shakes ``[T, 2]`` and eyelid closure ``[T]``."""
    f = fps / 25.0
    head = np.zeros((T, 2))
    eyes = np.zeros(T)
    expr = signer.expressivity
    u = rng.random(len(plan))
    for it, (a, b), ub in zip(plan, spans, u, strict=True):
        if it.negation:  # head shake over the sign, ~2.8 Hz
            start, n = a - round(3 * f), (b - a) + round(8 * f)
            tt = np.arange(n)
            env = np.sin(np.pi * tt / n) ** 0.5
            _place(head[:, 1], start, 0.14 * expr * env * np.sin(2 * np.pi * tt / (9 * f)))
        if it.nod:  # down and up
            n = round(9 * f)
            big = 1.4 if it is plan[-1] else 1.0
            _place(head[:, 0], b - round(2 * f), 0.09 * big * expr * np.sin(np.pi * np.arange(n) / n) ** 2)
        if it.pause and ub < 0.6:  # blinks cluster at prosodic boundaries
            _place(eyes, b + it.hold + round(2 * f), _blink(f), np.maximum)
    for t0 in np.flatnonzero(rng.random(T) < signer.blink_rate / fps):
        _place(eyes, int(t0), _blink(f), np.maximum)
    return head, eyes


def _blink(f: float) -> np.ndarray:
    n = max(3, round(len(_BLINK) * f))
    return np.interp(np.linspace(0, len(_BLINK) - 1, n), np.arange(len(_BLINK)), _BLINK)


def _unpack(states, plan, spans, signer: Signer, rng: np.random.Generator, fps: float) -> Controls:
    T = len(states)

    def hand(o: int):
        h = states[:, o : o + _H]
        return h[:, :3], h[:, 3:6], h[:, 6:9], h[:, 9:24].reshape(T, 5, 3), h[:, 24], h[:, 25]

    pr, ur, nr, ar, sr, orr = hand(0)
    pl, ul, nl, al, sl, ol = hand(_H)
    head = signer.sway * _smooth_noise(rng, T, 3, 6.0)
    # look toward the hands, mostly the dominant one
    w_r, w_l = (0.1, 0.25) if signer.left_handed else (0.25, 0.1)
    head[:, 1] += w_r * (pr[:, 0] - REST_PALM[0]) + w_l * (pl[:, 0] + REST_PALM[0])
    head[:, 0] += 0.3 * np.clip(np.maximum(pr[:, 1], pl[:, 1]) - 0.05, 0, None)  # signs near the face
    nm_head, eyes = _nonmanual(plan, spans, signer, rng, T, fps)
    head[:, :2] += nm_head
    torso = 0.5 * signer.sway * _smooth_noise(rng, T, 3, 10.0)
    return Controls(
        palm_r=pr, palm_l=pl, u_r=ur, n_r=nr, u_l=ul, n_l=nl, ang_r=ar, ang_l=al,
        spread_r=sr, spread_l=sl, opp_r=orr, opp_l=ol,
        brows=np.clip(states[:, _BROWS], -1, 1), mouth=np.clip(states[:, _MOUTH], 0, 1), head=head,
        torso=torso, eyes=np.clip(eyes, 0, 1), lips=np.clip(states[:, _LIPS], -1, 1),
    )  # fmt: skip
