"""Parametric sign lexicon: every gloss has 1..3 lexical variants drawn from the gloss' own hash.

A :class:`Sign` has one or two hands (two-handed signs are mirror-symmetric or use the
non-dominant hand as a static base), start and end palm location in signing space relative to
the body, a path (straight, arc, circle, repeated), start/end handshape from
:data:`HANDSHAPES` (17 finger configurations), start/end hand orientation (finger direction
and palm normal), non-manual features (eyebrows, mouthing: amplitude and one opening/rounding
per syllable of the gloss) and a base duration. Variant 0 (:func:`sign_for` ``(gloss)``) is drawn
from ``crc32(gloss)``; variant ``v > 0`` differs from it in one aspect only, the way dialect
variants do: another location, or another handshape, or another movement (:func:`n_variants`
says how many a gloss has). Because signs depend only on the gloss string, the lexicon is the
same for every seed, split and signer; which variant a signer prefers, signer style and
per-instance noise vary the execution (:mod:`pipeline.synth.motion`).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np


def _shape(
    fingers: tuple[float, float, float, float] | list[list[float]],
    thumb: tuple[float, float, float],
    spread: float,
    opp: float,
) -> tuple[np.ndarray, float, float]:
    """Handshape from finger curls (0 open .. 1 fist, or explicit [MCP, PIP, DIP] angles)."""
    ang = np.zeros((5, 3))
    ang[0] = thumb
    for k, f in enumerate(fingers):
        ang[k + 1] = f if isinstance(f, list) else [1.45 * f, 1.7 * f, 1.2 * f]
    return ang, spread, opp


_T_OPEN, _T_ADD, _T_FIST, _T_TUCK = (0.0, 0.05, 0.05), (0.2, 0.3, 0.2), (0.4, 0.8, 0.6), (0.5, 0.9, 0.6)
# name -> (angles [5,3] rad: thumb, index, middle, ring, pinky x MCP/PIP/DIP; spread; opposition)
HANDSHAPES: dict[str, tuple[np.ndarray, float, float]] = {
    "B": _shape((0, 0, 0, 0), _T_ADD, 0.0, 0.3),
    "5": _shape((0, 0, 0, 0), _T_OPEN, 1.0, 0.0),
    "A": _shape((1, 1, 1, 1), (0.1, 0.1, 0.1), 0.0, 0.0),
    "S": _shape((1, 1, 1, 1), _T_FIST, 0.0, 0.8),
    "1": _shape((0, 1, 1, 1), _T_FIST, 0.0, 0.8),
    "V": _shape((0, 0, 1, 1), _T_FIST, 0.9, 0.8),
    "W": _shape((0, 0, 0, 1), _T_FIST, 0.7, 0.9),
    "4": _shape((0, 0, 0, 0), _T_TUCK, 0.5, 1.0),
    "Y": _shape((1, 1, 1, 0), _T_OPEN, 1.0, 0.0),
    "L": _shape((0, 1, 1, 1), _T_OPEN, 0.3, 0.0),
    "C": _shape((0.4, 0.4, 0.4, 0.4), (0.2, 0.3, 0.3), 0.2, 0.6),
    "O": _shape((0.65, 0.65, 0.65, 0.65), (0.3, 0.5, 0.4), 0.0, 1.0),
    "claw": _shape([[0.2, 1.3, 0.9]] * 4, (0.2, 0.6, 0.5), 0.8, 0.5),
    "bentB": _shape([[1.4, 0.1, 0.1]] * 4, _T_ADD, 0.0, 0.3),
    "F": _shape(([0.9, 1.0, 0.7], 0, 0, 0), (0.3, 0.4, 0.4), 0.6, 1.0),
    "I": _shape((1, 1, 1, 0), _T_FIST, 0.0, 0.8),
    "X": _shape(([0.3, 1.4, 1.0], 1, 1, 1), _T_FIST, 0.0, 0.8),
}
RELAXED = _shape((0.15, 0.2, 0.25, 0.3), (0.1, 0.2, 0.2), 0.2, 0.3)
SIGN_SHAPES = list(HANDSHAPES)

# Right-hand orientations in the body frame (X signer's left, Y up, Z forward): (finger dir, palm normal)
ORIENTATIONS = [
    ((0, 1, 0), (0, 0, 1)), ((0, 1, 0), (1, 0, 0)), ((0, 1, 0), (0, 0, -1)), ((0, 0, 1), (0, -1, 0)),
    ((0, 0, 1), (1, 0, 0)), ((0, 0, 1), (0, 1, 0)), ((1, 0, 0), (0, -1, 0)), ((1, 0, 0), (0, 0, -1)),
    ((0.3, 0.7, 0.6), (0, -0.6, 0.7)), ((0.6, 0.3, 0.7), (0.7, 0, -0.6)), ((0.2, 0.9, 0.3), (0.8, 0, -0.5)),
]  # fmt: skip

# Palm-centre loci of the dominant (right) hand, reference body (shoulder width 0.40 m,
# neck-to-hip 0.52 m), body frame, metres: (position, near the face)
LOCI: dict[str, tuple[tuple[float, float, float], bool]] = {
    "forehead": ((-0.02, 0.27, 0.16), True), "eye": ((-0.04, 0.23, 0.15), True),
    "nose": ((0.0, 0.19, 0.18), True), "mouth": ((0.0, 0.15, 0.16), True), "chin": ((0.0, 0.11, 0.16), True),
    "cheek": ((-0.08, 0.18, 0.13), True), "temple": ((-0.10, 0.25, 0.10), True),
    "ear": ((-0.11, 0.21, 0.05), True), "above_head": ((-0.12, 0.40, 0.15), True),
    "neck": ((0.0, 0.02, 0.15), False), "chest_left": ((0.10, -0.12, 0.17), False),
    "chest": ((-0.02, -0.12, 0.19), False), "chest_right": ((-0.12, -0.12, 0.19), False),
    "stomach": ((-0.04, -0.30, 0.20), False), "shoulder_right": ((-0.18, 0.0, 0.13), False),
    "shoulder_left": ((0.15, 0.0, 0.15), False), "neutral": ((-0.10, -0.15, 0.35), False),
    "neutral_high": ((-0.10, 0.05, 0.35), False), "neutral_low": ((-0.08, -0.28, 0.32), False),
    "neutral_far": ((-0.05, -0.05, 0.45), False), "side": ((-0.32, -0.12, 0.25), False),
    "side_high": ((-0.28, 0.12, 0.30), False), "center_far": ((0.05, -0.10, 0.42), False),
}  # fmt: skip
PATHS = ("straight", "arc", "circle", "repeated")
REST_PALM = np.array([-0.11, -0.42, 0.16])  # right hand at rest (left: X mirrored)
REST_U = np.array([0.6, -0.2, 0.75])
REST_N = np.array([0.0, -1.0, 0.0])
BASE_PALM = np.array([0.03, -0.16, 0.28])  # non-dominant base hand (left), palm up
BASE_U = np.array([-0.7, 0.0, 0.7])
BASE_N = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class Sign:
    """One parametric sign (dominant = right hand; the left hand mirrors or is a base)."""

    gloss: str
    hands: str  # "one" | "mirror" | "base"
    start: np.ndarray  # [3] palm centre, reference body frame
    end: np.ndarray  # [3]
    path: str  # straight | arc | circle | repeated
    bulge: np.ndarray  # [3] arc offset / circle plane axis
    cycles: int  # circle turns or repetitions
    shape_start: str
    shape_end: str
    orient_start: int
    orient_end: int
    brows: float  # -1 furrow .. +1 raise, 0 neutral
    mouth: float  # mouthing amplitude, 0 closed .. 1 open (whether a sign is mouthed: motion)
    frames: int  # stroke duration at speed 1 (frames at 25 fps)
    syllables: tuple[tuple[float, float], ...] = ((0.5, 0.0),)  # mouthing: (opening, rounding) each
    variant: int = 0


def _mirror(v: np.ndarray) -> np.ndarray:
    return v * np.array([-1.0, 1.0, 1.0])


def _in_front(p: np.ndarray) -> np.ndarray:
    """Keep a palm locus in front of the face/torso (or beside the head), not inside the body."""
    q = p.copy()
    if q[1] > 0.05:  # head level: in front of the face, or beside the head
        q[2] = max(q[2], 0.13 if abs(q[0]) < 0.09 else 0.04)
    else:
        q[2] = max(q[2], 0.15)
    return q


def gloss_unit(gloss: str, what: str) -> float:
    """A uniform number in [0, 1) fixed by ``gloss`` and the purpose ``what`` (crc32, no hash())."""
    return zlib.crc32(f"{gloss}#{what}".encode()) / 2.0**32


def n_variants(gloss: str, share_2: float, share_3: float) -> int:
    """How many lexical variants ``gloss`` has: 3 for a ``share_3`` of the glosses, 2 for ``share_2``."""
    u = gloss_unit(gloss, "variants")
    return 3 if u < share_3 else 2 if u < share_2 + share_3 else 1


# vowel -> (mouth opening, lip rounding: +1 rounded, -1 spread) of a mouthed syllable
_VOWELS = {"A": (1.0, 0.0), "E": (0.6, -0.6), "I": (0.35, -1.0), "O": (0.7, 1.0), "U": (0.4, 1.0),
           "AE": (0.8, -0.4), "OE": (0.6, 0.7), "UE": (0.4, 0.6), "EI": (0.8, -0.5), "AU": (0.9, 0.6),
           "EU": (0.6, 0.5), "IE": (0.35, -1.0)}  # fmt: skip


def syllables(gloss: str) -> tuple[tuple[float, float], ...]:
    """Mouthing pattern of ``gloss``: (opening, rounding) of its first (up to) three vowel groups."""
    groups = re.findall(r"AE|OE|UE|EI|AU|EU|IE|[AEIOUY]", gloss.upper())
    out = tuple(_VOWELS.get(g, (0.5, -0.3)) for g in groups[:3])
    return out or ((0.5, 0.0),)


def keep_in_front(start: np.ndarray, end: np.ndarray, hands: str) -> tuple[np.ndarray, np.ndarray]:
    """Stroke start/end (reference body frame) moved out of the body; a mirror sign's hands kept apart."""
    if hands == "mirror":  # keep the two hands apart
        start, end = start.copy(), end.copy()
        start[0], end[0] = min(start[0], -0.09), min(end[0], -0.07)
    return _in_front(start), _in_front(end)


def sign_for(gloss: str, variant: int = 0) -> Sign:
    """Lexical variant ``variant`` of ``gloss`` (0: the base sign; deterministic in the gloss string).

    A variant ``v > 0`` changes one aspect of the base sign (location, handshape or movement;
    variants 1 and 2 change different aspects), so all variants of a gloss differ. Cached: the
    same (gloss, variant) gives the same object.
    """
    return _sign(gloss, int(variant))


@lru_cache(maxsize=16384)
def _sign(gloss: str, variant: int) -> Sign:
    if variant:
        return _variant(_sign(gloss, 0), variant)
    rng = np.random.default_rng(zlib.crc32(gloss.encode("utf-8")))
    r = rng.random()
    hands = "one" if r < 0.55 else "mirror" if r < 0.85 else "base"
    names = list(LOCI)
    if hands == "base":
        start = BASE_PALM + np.array([-0.03, 0.12, 0.0]) + rng.normal(0, 0.02, 3)
        end = BASE_PALM + np.array([-0.02, 0.03, 0.0]) + rng.normal(0, 0.01, 3)
    else:
        pos, face = LOCI[names[rng.integers(len(names))]]
        start = np.array(pos) + rng.normal(0, 0.015, 3)
        step = rng.normal(0, 1, 3)
        step = step / np.linalg.norm(step) * rng.uniform(0.04, 0.10 if face else 0.22)
        end = start + step
    start, end = keep_in_front(start, end, hands)
    path = PATHS[rng.choice(4, p=[0.4, 0.25, 0.15, 0.2])]
    bulge = rng.normal(0, 1, 3)
    bulge *= rng.uniform(0.03, 0.07) / np.linalg.norm(bulge)
    shape = SIGN_SHAPES[rng.integers(len(SIGN_SHAPES))]
    shape_end = shape if rng.random() < 0.75 else SIGN_SHAPES[rng.integers(len(SIGN_SHAPES))]
    orient = int(rng.integers(len(ORIENTATIONS)))
    orient_end = orient if rng.random() < 0.7 else int(rng.integers(len(ORIENTATIONS)))
    rb = rng.random()
    brows = 0.0 if rb < 0.6 else 1.0 if rb < 0.85 else -1.0
    mouth = float(rng.uniform(0.5, 1.0))
    cycles = int(rng.integers(1, 3)) if path == "circle" else int(rng.integers(2, 4))
    frames = _frames(int(rng.integers(5, 8)), path, gloss)
    return Sign(gloss, hands, start, end, path, bulge, cycles, shape, shape_end, orient, orient_end,
                brows, mouth, frames, syllables(gloss))  # fmt: skip


def _frames(base: int, path: str, gloss: str) -> int:
    """Stroke frames at speed 1: PHOENIX strokes are fast (6..10 frames), cyclic paths longer."""
    frames = base + (3 if path in ("circle", "repeated") else 0)
    return int(frames * 1.3) if "-" in gloss else frames  # compound gloss: a longer sign


_ASPECTS = ("location", "handshape", "movement")


def _variant(base: Sign, variant: int) -> Sign:
    """``base`` with one aspect changed (a dialect variant); deterministic in (gloss, variant)."""
    rng = np.random.default_rng([zlib.crc32(base.gloss.encode("utf-8")), variant])
    aspects = [a for a in _ASPECTS if not (a == "location" and base.hands == "base")]
    first = int(zlib.crc32(f"{base.gloss}#aspect".encode()) % len(aspects))
    aspect = aspects[(first + variant - 1) % len(aspects)]
    if aspect == "location":  # the same movement at another locus at least 8 cm away
        far = [np.array(p) for p, _ in LOCI.values() if np.linalg.norm(np.array(p) - base.start) > 0.08]
        shift = far[rng.integers(len(far))] + rng.normal(0, 0.015, 3) - base.start
        start, end = keep_in_front(base.start + shift, base.end + shift, base.hands)
        return replace(base, start=start, end=end, variant=variant)
    if aspect == "handshape":
        shape = SIGN_SHAPES[rng.choice([k for k, n in enumerate(SIGN_SHAPES) if n != base.shape_start])]
        end = shape if base.shape_end == base.shape_start else base.shape_end
        return replace(base, shape_start=shape, shape_end=end, variant=variant)
    # movement: another path, direction and size
    path = PATHS[rng.choice([k for k, p in enumerate(PATHS) if p != base.path])]
    near_face = base.start[1] > 0.05
    step = rng.normal(0, 1, 3)
    step = step / np.linalg.norm(step) * rng.uniform(0.04, 0.10 if near_face else 0.22)
    start, end = keep_in_front(base.start, base.start + step, base.hands)
    if base.hands == "base":
        end = base.end
    bulge = rng.normal(0, 1, 3)
    bulge *= rng.uniform(0.03, 0.07) / np.linalg.norm(bulge)
    cycles = int(rng.integers(1, 3)) if path == "circle" else int(rng.integers(2, 4))
    cyclic = ("circle", "repeated")
    frames = base.frames + 3 * ((path in cyclic) - (base.path in cyclic))
    return replace(base, start=start, end=end, path=path, bulge=bulge, cycles=cycles, frames=frames,
                   variant=variant)  # fmt: skip


def path_points(sign: Sign, s: np.ndarray, start: np.ndarray, end: np.ndarray, amp: float) -> np.ndarray:
    """Palm positions ``[len(s), 3]`` along the sign's path for progress ``s`` in [0, 1]."""
    s = s[:, None]
    ease = s * s * (3 - 2 * s)
    if sign.path == "straight":
        return start + (end - start) * ease
    if sign.path == "arc":
        return start + (end - start) * ease + amp * sign.bulge * np.sin(np.pi * s)
    if sign.path == "circle":
        axis = end - start
        axis = axis / max(np.linalg.norm(axis), 1e-9)
        a = np.cross(axis, sign.bulge)
        a = a / max(np.linalg.norm(a), 1e-9)
        b = np.cross(axis, a)
        r = amp * np.linalg.norm(sign.bulge) * 1.2
        th = 2 * np.pi * sign.cycles * s
        centre = start + (end - start) * ease
        return centre + r * (np.sin(th) * a + (1 - np.cos(th)) * b)
    # repeated: back and forth between start and end, ending at end
    tri = 0.5 - 0.5 * np.cos(np.pi * (2 * sign.cycles - 1) * s)
    return start + (end - start) * tri


def mirror(v: np.ndarray) -> np.ndarray:
    """Mirror body-frame vectors/points across the sagittal plane (right <-> left hand)."""
    return _mirror(v)
