"""OpenPose 1.x per-frame JSON (``--write_json``): a fast parser into raw 137-joint arrays, and a writer.

One frame file ``<prefix>_<12-digit frame>_keypoints.json`` holds ``{"version": .., "people":
[...]}``; each person has ``pose_keypoints_2d`` (25 x [x, y, c]), ``face_keypoints_2d`` (70),
``hand_left_keypoints_2d`` and ``hand_right_keypoints_2d`` (21 each), flattened. A part that was
not computed (face model off) is an empty list; an undetected joint is ``0, 0, 0``. The parser
returns ``[P, 137, 3]`` float32 in :data:`pipeline.data.skeleton.RAW_JOINTS` order, one row per
person in file order (``P = 0`` for ``"people": []``); empty or absent parts become zeros
(confidence 0 = missing). Anything else malformed raises :class:`OpenPoseError` naming the file.
:func:`frame_json` / :func:`write_video` write the same format (OpenPose 1.3, as the synthetic
corpus does).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import orjson

from pipeline.data.skeleton import OPENPOSE_PARTS, RAW_JOINTS

N_RAW = len(RAW_JOINTS)
FRAME_RE = re.compile(r"_(\d{12})_keypoints\.json$")
_NONFINITE_RE = re.compile(rb"(?i)(?<![a-z_])-?(nan|inf|infinity)(?![a-z_])|\d[eE]\+?\d{3,}")
# bytes that may hide a non-number inside a keypoint list (a string, true/false/null): only then is
# every value's type checked (the fast path stays a C-level scan)
_SUSPECT_RE = re.compile(rb'\[[-+0-9.eE,\s]*"|\b(true|false|null)\b')
MAX_CONFIDENCE = 1.5  # OpenPose scores lie in [0, ~1.05] (hand heat-map peaks slightly exceed 1)
MAX_COORDINATE = 1e5  # pixels: |x|, |y| beyond this is no image coordinate (data.max_coordinate)
_PART_SLICES = []
_start = 0
for _key, _n in OPENPOSE_PARTS:
    _PART_SLICES.append((_key, _n, slice(_start, _start + _n)))
    _start += _n
_ZEROS = {n: [0.0] * (3 * n) for _, n in OPENPOSE_PARTS}


class OpenPoseError(ValueError):
    """A malformed OpenPose JSON frame (message names the file and the problem)."""


def frame_number(path: str | Path) -> int:
    """The 12-digit frame number of ``<anything>_<frame:012d>_keypoints.json``."""
    m = FRAME_RE.search(str(path))
    if m is None:
        raise OpenPoseError(f"{path}: not an OpenPose frame file name (<prefix>_<12 digits>_keypoints.json)")
    return int(m.group(1))


def is_frame_file(path: str | Path) -> bool:
    """True when the name matches ``*_<12 digits>_keypoints.json``."""
    return FRAME_RE.search(str(path)) is not None


def parse_frame(
    data: bytes | str, source: str | Path = "<bytes>", max_coordinate: float | None = None
) -> np.ndarray:
    """Parse one OpenPose JSON document into ``[P, 137, 3]`` float32 (x, y pixels; confidence).

    Raises :class:`OpenPoseError` (naming ``source``, the person and the part) for invalid/truncated
    JSON, a missing ``people`` list, keypoint arrays whose length is not 0 or 3 x the part's joint
    count, values that are not JSON numbers (numeric strings such as ``"100.0"``, booleans,
    ``null``), NaN/inf, negative confidences or confidences above :data:`MAX_CONFIDENCE`, and
    coordinates beyond ``max_coordinate`` pixels (default :data:`MAX_COORDINATE`, the param
    ``data.max_coordinate``). Confidences up to that limit are kept as written: real OpenPose hand
    scores (heat-map peaks) can slightly exceed 1 (1.027 in the Czech demo); ``normalise`` clips
    them to [0, 1].
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raw = data.encode() if isinstance(data, str) else data
        if _NONFINITE_RE.search(raw):
            raise OpenPoseError(f"{source}: contains NaN or inf (invalid JSON: {exc})") from exc
        raise OpenPoseError(f"{source}: invalid or truncated JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
        raise OpenPoseError(f"{source}: expected an object with a 'people' list")
    people = doc["people"]
    limit = MAX_COORDINATE if max_coordinate is None else max_coordinate
    raw = data.encode() if isinstance(data, str) else data
    if people and _SUSPECT_RE.search(raw):
        _check_types(people, source)
    out = np.zeros((len(people), N_RAW, 3), np.float32)
    for p, person in enumerate(people):
        if not isinstance(person, dict):
            raise OpenPoseError(f"{source}: person {p} is not an object")
        if "pose_keypoints_2d" not in person:
            raise OpenPoseError(f"{source}: person {p} has no 'pose_keypoints_2d'")
        flat: list = []
        for key, n, _ in _PART_SLICES:
            values = person.get(key)
            if not values:  # absent, null or [] -> not computed, stays zero (missing)
                flat.extend(_ZEROS[n])
            elif isinstance(values, list) and len(values) == 3 * n:
                flat.extend(values)
            else:
                got = len(values) if isinstance(values, list) else type(values).__name__
                raise OpenPoseError(f"{source}: person {p} {key} has {got} values, expected {3 * n} or 0")
        try:
            out[p] = np.asarray(flat, dtype=np.float32).reshape(N_RAW, 3)
        except (TypeError, ValueError) as exc:
            raise OpenPoseError(f"{source}: person {p} has non-numeric keypoint values") from exc
        arr = out[p]
        if (
            not np.isfinite(arr).all()
            or (arr[:, 2] < 0).any()
            or (arr[:, 2] > MAX_CONFIDENCE).any()
            or (np.abs(arr[:, :2]) > limit).any()
        ):
            _explain(arr, source, p, limit)
    return out


def _check_types(people: list, source: str | Path) -> None:
    """Raise for the first keypoint value that is not a JSON number (bool is not a number here)."""
    for p, person in enumerate(people):
        if not isinstance(person, dict):
            continue  # reported by the caller
        for key, _, _ in _PART_SLICES:
            values = person.get(key)
            if not isinstance(values, list):
                continue
            for i, v in enumerate(values):
                if type(v) not in (int, float):
                    what = "null" if v is None else f"{type(v).__name__} {v!r}"
                    raise OpenPoseError(
                        f"{source}: person {p} {key}[{i}] is {what}, expected a number "
                        "(non-numeric keypoint value)"
                    )


def _explain(arr: np.ndarray, source: str | Path, p: int, limit: float) -> None:
    """Raise the error for a person with NaN/inf, a confidence outside [0, MAX_CONFIDENCE] or a
    coordinate beyond ``limit`` pixels, naming the part and the joint."""
    for key, _, sl in _PART_SLICES:
        part = arr[sl]
        if not np.isfinite(part).all():
            raise OpenPoseError(f"{source}: person {p} {key} contains NaN or inf")
        if (part[:, 2] < 0).any():
            raise OpenPoseError(f"{source}: person {p} {key} has a negative confidence")
        j = int(np.argmax(part[:, 2]))
        if part[j, 2] > MAX_CONFIDENCE:
            raise OpenPoseError(
                f"{source}: person {p} {key} joint {j} has confidence {float(part[j, 2]):g} > "
                f"{MAX_CONFIDENCE} (OpenPose scores lie in [0, ~1.05])"
            )
        far = np.abs(part[:, :2]).max(axis=1)
        if far.max() > limit:
            j = int(np.argmax(far))
            raise OpenPoseError(
                f"{source}: person {p} {key} joint {j} has coordinate {float(far[j]):g} px "
                f"beyond {limit:g} px (data.max_coordinate)"
            )
    raise AssertionError("unreachable")


_EMPTY_3D = {"pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
             "hand_right_keypoints_3d": []}  # fmt: skip


def person_json(person: np.ndarray) -> dict:
    """One ``[137, 3]`` float32 detection -> an OpenPose 1.3 person object (flat arrays)."""
    out: dict = {"person_id": [-1]}
    for key, _, sl in _PART_SLICES:
        out[key] = person[sl].reshape(-1)
    out.update(_EMPTY_3D)
    return out


def frame_json(people: list[np.ndarray]) -> bytes:
    """Bytes of one OpenPose 1.3 frame document."""
    doc = {"version": 1.3, "people": [person_json(p) for p in people]}
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def write_video(directory: Path, prefix: str, frames: list[list[np.ndarray]]) -> None:
    """Write ``<directory>/<prefix>_<frame:012d>_keypoints.json`` for frames 0..T-1."""
    directory.mkdir(parents=True, exist_ok=True)
    base = os.path.join(directory, prefix)
    for t, people in enumerate(frames):
        fd = os.open(f"{base}_{t:012d}_keypoints.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, frame_json(people))
        finally:
            os.close(fd)
