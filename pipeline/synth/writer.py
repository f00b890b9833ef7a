"""Writers for the real formats: OpenPose 1.x per-frame JSON and the PHOENIX-2014T corpus CSV."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import orjson

from pipeline.skeleton import OPENPOSE_PARTS

CSV_HEADER = ["name", "video", "start", "end", "speaker", "orth", "translation"]
_SLICES = []
_o = 0
for _key, _n in OPENPOSE_PARTS:
    _SLICES.append((_key, slice(_o, _o + _n)))
    _o += _n
_EMPTY_3D = {"pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
             "hand_right_keypoints_3d": []}  # fmt: skip


def person_json(person: np.ndarray) -> dict:
    """One ``[137, 3]`` float32 detection -> an OpenPose 1.3 person object (flat arrays)."""
    out: dict = {"person_id": [-1]}
    for key, sl in _SLICES:
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


def write_corpus_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """PHOENIX-2014T corpus file: ``name|video|start|end|speaker|orth|translation`` with header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="|", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(CSV_HEADER)
        for r in rows:
            w.writerow([r["name"], r["video"], -1, -1, r["signer"], r["gloss"], r["text"]])
