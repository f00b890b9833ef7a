"""Reader of pose-format ``.pose`` files (``data.source: pose``): MediaPipe Holistic or OpenPose.

Two layouts under ``data.path`` (a directory, ``.zip``, ``.tar`` or ``.tar.gz``):

- **PHOENIX / sign-language-datasets**: ``poses/holistic/{train,validation,test}/<name>.pose``
  and PHOENIX corpus files ``*.<split>.corpus.csv`` anywhere (``name|video|...|orth|translation``,
  :mod:`pipeline.data.corpus_csv`). A row's pose file is the ``<name>.pose`` found anywhere in the
  tree; with several, the one under a folder named after the row's split (``validation`` and
  ``val`` are ``dev``).
- **plain**: a folder per split (``train``, ``dev`` or ``validation``, ``test``) holding the
  ``.pose`` files and one table of the split's sentences: a ``.csv`` with a header (``name``,
  ``text``; optional ``gloss``, ``signer``) or a ``.json`` list of such objects.

Every file becomes the raw OpenPose layout (:data:`pipeline.data.skeleton.RAW_JOINTS`, 137
joints x [x, y, c] in pixels), so the rest of the chain treats it as OpenPose input:

- MediaPipe Holistic (components ``POSE_LANDMARKS``, ``FACE_LANDMARKS``, ``LEFT_HAND_LANDMARKS``,
  ``RIGHT_HAND_LANDMARKS``) is mapped by :data:`HOLISTIC_BODY` and :data:`HOLISTIC_FACE`: BODY_25
  from the 33 pose landmarks by name (neck = the shoulders' midpoint, mid-hip = the hips'; the
  toes have no landmark and stay missing), the 21-point hands as they are (MediaPipe's hand order
  is OpenPose's), the 68 iBUG face points from the 468-point mesh by the correspondence table that
  pose-format's converter uses (``pose_format.utils.pose_converter.FACE_MAP``, its direct pairs;
  the converter itself needs the ``mediapipe`` package, which we do not install), and the two
  pupils (68, 69) as the centres of their eye contours. A mapped point averaged from several
  landmarks has the lowest of their confidences. MediaPipe's relative depth ``z`` is dropped: the
  ``lift`` stage lifts the 2D, as for OpenPose.
- OpenPose-component files (``pose_keypoints_2d``, ``face_keypoints_2d``, ``hand_left_keypoints_2d``,
  ``hand_right_keypoints_2d``; e.g. pose-format's ``load_openpose``) are read as they are.

A masked point is a missing joint (0, 0, confidence 0), as OpenPose writes it; a frame whose
person has no unmasked point counts as a frame without people. Person 0 of every frame goes to
``poses``, further people to ``extra_people`` (as for OpenPose JSON). Unreadable files, other
components, NaN/inf or coordinates beyond ``data.max_coordinate`` pixels are bad input: an
:class:`~pipeline.data.policy.IngestError` naming the file, or a counted skip
(``data.on_error: skip``; reason ``bad_pose_file``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import posixpath
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pipeline.data.corpus_csv import SUFFIX, read_corpus, split_of
from pipeline.data.policy import ErrorPolicy, IngestError
from pipeline.data.skeleton import OPENPOSE_PARTS, RAW_JOINTS
from pipeline.data.store import SPLITS, SplitStore
from pipeline.data.trees import Tree, open_tree

EXT = ".pose"
SPLIT_NAMES = {"train": "train", "dev": "dev", "validation": "dev", "val": "dev", "test": "test"}
HOLISTIC = ("POSE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS")  # FACE_LANDMARKS optional
# BODY_25 joint (pipeline.data.skeleton.BODY25 order) -> MediaPipe pose landmarks averaged; () = none
HOLISTIC_BODY: tuple[tuple[str, ...], ...] = (
    ("NOSE",), ("LEFT_SHOULDER", "RIGHT_SHOULDER"), ("RIGHT_SHOULDER",), ("RIGHT_ELBOW",), ("RIGHT_WRIST",),
    ("LEFT_SHOULDER",), ("LEFT_ELBOW",), ("LEFT_WRIST",), ("LEFT_HIP", "RIGHT_HIP"), ("RIGHT_HIP",),
    ("RIGHT_KNEE",), ("RIGHT_ANKLE",), ("LEFT_HIP",), ("LEFT_KNEE",), ("LEFT_ANKLE",), ("RIGHT_EYE",),
    ("LEFT_EYE",), ("RIGHT_EAR",), ("LEFT_EAR",), (), (), ("LEFT_HEEL",), (), (), ("RIGHT_HEEL",),
)  # fmt: skip
# iBUG face point 0..67 -> MediaPipe face-mesh index (jaw, brows, nose, eyes, outer and inner lips)
HOLISTIC_FACE: tuple[int, ...] = (
    127, 234, 93, 132, 58, 172, 136, 149, 152, 378, 365, 397, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 219, 237, 1, 457, 439,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    78, 81, 13, 311, 308, 402, 14, 178,
)  # fmt: skip
PUPILS = (tuple(range(36, 42)), tuple(range(42, 48)))  # face points 68, 69: centres of these eye contours
OPENPOSE = ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d")
log = logging.getLogger(__name__)


def read_pose(data: bytes, source: str, max_coordinate: float = 1.0e5) -> tuple[np.ndarray, float]:
    """A ``.pose`` file's bytes -> (``[T, P, 137, 3]`` float32 raw OpenPose layout [x, y, c], fps).

    Raises :class:`IngestError` naming ``source`` for an unreadable file, components that are
    neither MediaPipe Holistic nor OpenPose, NaN/inf, or a coordinate beyond ``max_coordinate``.
    """
    from pose_format import Pose

    try:
        pose = Pose.read(data)
    except Exception as exc:  # pose-format raises struct/Value/Index errors on bad bytes
        raise IngestError(f"{source}: not a readable .pose file ({type(exc).__name__}: {exc})") from exc
    header, body = pose.header, pose.body
    names = [c.name for c in header.components]
    raw = np.ma.getdata(body.data).astype(np.float64)
    if raw.ndim != 4 or raw.shape[-1] < 2:
        raise IngestError(
            f"{source}: pose data of shape {raw.shape}; expected [frames, people, points, dims]"
        )
    conf = np.asarray(body.confidence, np.float64)
    conf = np.where(np.ma.getmaskarray(body.data)[..., :2].any(-1), 0.0, conf)  # masked = missing
    xyc = np.concatenate([raw[..., :2], conf[..., None]], axis=-1)  # [T, P, points, 3]

    def point(component: str, name: str) -> np.ndarray:
        return xyc[:, :, header.get_point_index(component, name)]

    def mean(points: list[np.ndarray]) -> np.ndarray:
        out = np.mean(points, axis=0)
        out[..., 2] = np.min([p[..., 2] for p in points], axis=0)
        return out

    joints: list[np.ndarray | None] = []
    if all(n in names for n in HOLISTIC):
        joints += [mean([point(HOLISTIC[0], n) for n in group]) if group else None for group in HOLISTIC_BODY]
        if "FACE_LANDMARKS" in names:
            face = [point("FACE_LANDMARKS", str(k)) for k in HOLISTIC_FACE]
            joints += face + [mean([face[k] for k in eye]) for eye in PUPILS]
        else:
            joints += [None] * (len(HOLISTIC_FACE) + len(PUPILS))
        for hand in HOLISTIC[1:]:
            comp = next(c for c in header.components if c.name == hand)
            joints += [point(hand, n) for n in comp.points]
    elif all(n in names for n in (OPENPOSE[0], OPENPOSE[2], OPENPOSE[3])):
        for part, n in OPENPOSE_PARTS:
            comp = next((c for c in header.components if c.name == part), None)
            joints += [point(part, p) for p in comp.points] if comp is not None else [None] * n
    else:
        raise IngestError(
            f"{source}: components {names} are neither MediaPipe Holistic ({', '.join(HOLISTIC)}) "
            f"nor OpenPose ({', '.join(OPENPOSE)})"
        )
    if len(joints) != len(RAW_JOINTS):
        raise IngestError(
            f"{source}: {len(joints)} mapped points; expected {len(RAW_JOINTS)} (hands of 21 points)"
        )
    out = np.zeros((*raw.shape[:2], len(RAW_JOINTS), 3), np.float64)
    for j, v in enumerate(joints):
        if v is not None:
            out[:, :, j] = v
    out[..., :2] = np.where(out[..., 2:] > 0, out[..., :2], 0.0)  # a missing joint is (0, 0, 0)
    if not np.isfinite(out).all():
        t = int(np.argwhere(~np.isfinite(out))[0][0])
        raise IngestError(f"{source}: NaN or inf at frame {t}")
    big = np.abs(out[..., :2]).max(initial=0.0)
    if big > max_coordinate:
        t = int(np.argwhere(np.abs(out[..., :2]) > max_coordinate)[0][0])
        raise IngestError(
            f"{source}: frame {t} has a coordinate of {big:.3g} px, "
            f"beyond data.max_coordinate={max_coordinate:g}"
        )
    return out.astype(np.float32), float(body.fps)


def _split_of_path(path: str) -> str | None:
    """The split named by a folder of ``path`` (innermost first), if any."""
    for part in reversed(path.split("/")[:-1]):
        if part in SPLIT_NAMES:
            return SPLIT_NAMES[part]
    return None


def _plain_rows(tree: Tree, table: str, split: str) -> list[dict[str, str]]:
    """Rows of a plain layout's split table (``.csv`` with a header or ``.json`` list)."""
    text = tree.read(table).decode("utf-8")
    if table.endswith(".json"):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IngestError(f"{table}: invalid JSON: {exc}") from exc
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise IngestError(f"{table}: expected a list of objects with name, text (gloss, signer)")
        where = [f"{table}[{i}]" for i in range(len(items))]
    else:
        reader = csv.DictReader(io.StringIO(text))
        items = list(reader)
        where = [f"{table}:{i + 2}" for i in range(len(items))]
        missing = {"name", "text"} - set(reader.fieldnames or [])
        if missing:
            raise IngestError(f"{table}:1: header {reader.fieldnames} lacks {sorted(missing)}")
    rows = []
    for item, w in zip(items, where, strict=True):
        name, text = item.get("name"), item.get("text")
        if not isinstance(name, str) or not name.strip() or not isinstance(text, str):
            raise IngestError(f"{w}: expected a non-empty 'name' and a 'text' string, got {item!r}")
        rows.append(
            {
                "name": name.strip(),
                "video": "",
                "start": "-1",
                "end": "-1",
                "speaker": str(item.get("signer") or ""),
                "orth": str(item.get("gloss") or ""),
                "translation": text.strip(),
                "_where": w,
                "_split": split,
            }
        )
    return rows


def corpus_rows(tree: Tree, path: str | Path) -> dict[str, list[dict[str, str]]]:
    """Sentence rows per split: PHOENIX corpus files when there are any, else the plain layout's
    per-split tables."""
    files = tree.files
    csvs = [f for f in files if f.endswith(SUFFIX)]
    rows_of: dict[str, list[dict[str, str]]] = {}
    if csvs:
        for name in csvs:
            split = SPLIT_NAMES.get(split_of(name))
            if split is None:
                raise IngestError(f"{name}: unknown split {split_of(name)!r} (expected {SPLITS})")
            rows_of.setdefault(split, []).extend(read_corpus(tree.read(name).decode("utf-8"), name))
        return rows_of
    for f in files:
        split = _split_of_path(f)
        if (
            split
            and f.endswith((".csv", ".json"))
            and posixpath.basename(posixpath.dirname(f)) in SPLIT_NAMES
        ):
            rows_of.setdefault(split, []).extend(_plain_rows(tree, f, split))
    if not rows_of:
        raise IngestError(
            f"{path}: no sentence table: PHOENIX *{SUFFIX} files, or a .csv/.json (name, text, gloss) "
            "in each split folder (train, dev/validation, test)"
        )
    return rows_of


def match_pose(row: dict[str, str], split: str, by_stem: dict[str, list[str]]) -> str | None:
    """The ``.pose`` file of a row: ``<name>.pose``, under the row's split folder when several."""
    cands = by_stem.get(row["name"], [])
    if len(cands) > 1:
        cands = [c for c in cands if _split_of_path(c) == split] or cands
    if len(cands) > 1:
        raise IngestError(f"{row['_where']}: {row['name']!r} matches several .pose files: {cands[:4]}")
    return cands[0] if cands else None


def ingest_pose(
    path: str | Path, policy: ErrorPolicy, max_coordinate: float = 1.0e5
) -> tuple[dict[str, SplitStore], dict[str, int]]:
    """Read a tree of ``.pose`` files + sentence tables; returns stores per split and frame counts."""
    tree = open_tree(path)
    poses = [f for f in tree.files if f.endswith(EXT)]
    if not poses:
        raise IngestError(f"{path}: no *{EXT} file")
    by_stem: dict[str, list[str]] = {}
    for f in poses:
        by_stem.setdefault(posixpath.basename(f)[: -len(EXT)], []).append(f)
    rows_of = corpus_rows(tree, path)
    stores: dict[str, SplitStore] = {}
    n_frames: dict[str, int] = {}
    used: set[str] = set()
    for split in SPLITS:
        rows = rows_of.get(split, [])
        if not rows:
            continue
        seqs, index, n_people, extra, extra_frame = [], [], [], [], []
        offset, seen = 0, set()
        for row in rows:
            if row["name"] in seen:
                raise IngestError(f"{row['_where']}: duplicate sequence name {row['name']!r}")
            seen.add(row["name"])
            file = match_pose(row, split, by_stem)
            if file is None:
                policy.bad(split, "row_without_frames", f"{row['_where']}: no {row['name']}{EXT} found")
                continue
            used.add(file)
            try:
                frames, fps = read_pose(tree.read(file), f"{path}/{file}", max_coordinate)
            except IngestError as exc:
                policy.bad(split, "bad_pose_file", str(exc), exc)
                continue
            if len(frames) == 0:
                policy.bad(split, "empty_video", f"{path}/{file}: no frames")
                continue
            present = frames[..., 2].max(axis=2) > 0  # [T, P]: a person with any point
            seqs.append(np.where(present[:, 0, None, None], frames[:, 0], 0.0).astype(np.float32))
            for t, p in zip(*np.nonzero(present[:, 1:]), strict=True):
                extra.append(frames[t, p + 1])
                extra_frame.append(offset + t)
            n_people.append(present.sum(axis=1).astype(np.uint8))
            index.append(
                {
                    "name": row["name"],
                    "video": row["video"] or file,
                    "signer": row["speaker"],
                    "gloss": row["orth"],
                    "text": row["translation"],
                    "start": row["start"],
                    "end": row["end"],
                    "folder": file,
                    "fps": fps,
                    "frame_numbers": list(range(len(frames))),
                }
            )
            offset += len(frames)
        if not seqs:
            continue
        stores[split] = SplitStore.from_sequences(
            seqs,
            index,
            RAW_JOINTS,
            ["x", "y", "c"],
            arrays={"n_people": n_people},
            extra={"source": str(path), "extra_people": len(extra)},
            extra_people=(
                np.asarray(extra, np.float32).reshape(-1, len(RAW_JOINTS), 3),
                np.asarray(extra_frame, np.int64),
            ),
        )
        n_frames[split] = offset
    _unused(sorted(set(poses) - used), policy, path)
    return stores, n_frames


def _unused(files: Iterable[str], policy: ErrorPolicy, path: str | Path) -> None:
    """A ``.pose`` file no sentence names is counted (``file_without_row``), as OpenPose folders
    without a corpus row are; with ``data.on_error: raise`` it is an error."""
    for f in files:
        policy.bad(
            _split_of_path(f) or "unknown", "file_without_row", f"{path}/{f}: .pose file with no sentence row"
        )
