"""Source readers of the ingest stage: OpenPose JSON trees with PHOENIX corpus files, and dispatch.

:func:`ingest` reads the source named by the ``data`` params section
(:class:`~pipeline.data.policy.DataConfig`):

- ``synthetic`` / ``openpose``: ``data.path`` is a directory, ``.zip``, ``.tar`` or ``.tar.gz``
  holding per-frame OpenPose JSON (``<prefix>_<12-digit frame>_keypoints.json``) and PHOENIX
  corpus files (:mod:`pipeline.data.corpus_csv`). Each corpus row is matched to the folder that
  holds its frames, found anywhere under the root (:func:`match_folder`); frames are ordered by
  the 12-digit number, whatever the prefix. For ``synthetic``, the ground-truth sidecar
  ``<data.path>/gt3d/<split>/`` (a SplitStore) is attached frame-aligned as ``gt3d``.
- ``pt_skels``: Progressive-Transformers ``<split>.text/.gloss/.skels/.files``
  (:mod:`pipeline.data.pt_skels`).
- ``pose``: pose-format ``.pose`` files, MediaPipe Holistic or OpenPose components, in the
  sign-language-datasets PHOENIX layout or a plain per-split layout (:mod:`pipeline.data.pose_source`),
  mapped to the raw OpenPose layout.

The result is one SplitStore per split (raw 137 joints x [x, y, c] pixels, person 0 of every
frame in ``poses``, ``n_people`` per frame, the further people of the frames in
``SplitStore.extra_people``).
Bad input raises :class:`~pipeline.data.policy.IngestError` (or
:class:`~pipeline.data.openpose.OpenPoseError`) naming the file/row, or, with
``data.on_error: skip``, is logged and counted per split and reason.
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.corpus_csv import SUFFIX, read_corpus, split_of
from pipeline.data.openpose import MAX_COORDINATE, OpenPoseError, frame_number, is_frame_file, parse_frame
from pipeline.data.policy import DataConfig, ErrorPolicy, IngestError
from pipeline.data.pose_source import ingest_pose
from pipeline.data.pt_skels import read_pt_skels
from pipeline.data.skeleton import RAW_JOINTS
from pipeline.data.store import SPLITS, SplitStore, StoreError
from pipeline.data.trees import DirTree, Tree, open_tree

RAW_CHANNELS = ["x", "y", "c"]
log = logging.getLogger(__name__)


def match_folder(row: dict[str, str], split: str, folders: set[str]) -> list[str]:
    """Candidate frame folders for a corpus row (rule documented in docs/ARCHITECTURE.md).

    1. folders whose path ends with the directory of the ``video`` column (PHOENIX:
       ``<name>/1/*.png`` -> ``.../<name>/1``); else 2. folders whose base name is ``name``.
    Several candidates are narrowed to those with ``split`` as a path component.
    """
    vdir = posixpath.dirname(row.get("video", "")).strip("/")
    cands: list[str] = []
    if vdir and vdir != row["name"]:
        cands = [f for f in folders if f == vdir or f.endswith("/" + vdir)]
    if not cands:
        cands = [f for f in folders if posixpath.basename(f) == row["name"]]
    if len(cands) > 1:
        in_split = [f for f in cands if split in f.split("/")]
        cands = in_split or cands
    return sorted(cands)


# -- openpose / synthetic ---------------------------------------------------------------------
def ingest_openpose(
    path: str | Path, policy: ErrorPolicy, gt3d: bool = False, max_coordinate: float = MAX_COORDINATE
) -> tuple[dict[str, SplitStore], dict[str, int]]:
    """Read an OpenPose JSON tree + corpus CSVs; returns stores per split and frame counts (a frame
    with a coordinate beyond ``max_coordinate`` pixels is bad input, see :func:`parse_frame`)."""
    tree = open_tree(path)
    csvs = [f for f in tree.files if f.endswith(SUFFIX)]
    if not csvs:
        raise IngestError(
            f"{path}: no *{SUFFIX} corpus file; write one "
            f"(name|video|start|end|speaker|orth|translation) naming each video folder"
        )
    frames_of: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for f in tree.files:
        if is_frame_file(f):
            frames_of[posixpath.dirname(f)].append((frame_number(f), f))
    folders = set(frames_of)

    rows_of: dict[str, list[dict[str, str]]] = {}
    for name in csvs:
        split = split_of(name)
        if split not in SPLITS:
            policy.bad("unknown", "unknown_split", f"{name}: unknown split {split!r} (expected {SPLITS})")
            continue
        rows = read_corpus(tree.read(name).decode("utf-8"), name)
        rows_of.setdefault(split, []).extend(rows)

    # corpus row -> folder
    used: set[str] = set()
    plan: dict[str, list[tuple[dict[str, str], str]]] = {}
    for split, rows in rows_of.items():
        seen: dict[str, str] = {}
        plan[split] = []
        for row in rows:
            where = row["_where"]
            if row["name"] in seen:
                raise IngestError(
                    f"{where}: duplicate sequence name {row['name']!r} (first at {seen[row['name']]})"
                )
            seen[row["name"]] = where
            cands = match_folder(row, split, folders)
            if len(cands) > 1:
                raise IngestError(f"{where}: {row['name']!r} matches several frame folders: {cands[:4]}")
            if not cands:
                empty = match_folder(row, split, tree.dirs - folders)
                reason, what = (
                    ("empty_video", f"folder {empty[0]!r} holds no *_keypoints.json frames")
                    if empty
                    else ("row_without_frames", "no frame folder found for it")
                )
                policy.bad(split, reason, f"{where}: sequence {row['name']!r}: {what}")
                continue
            if cands[0] in used:
                raise IngestError(f"{where}: folder {cands[0]!r} is claimed by another corpus row")
            used.add(cands[0])
            plan[split].append((row, cands[0]))
    for folder in sorted(folders - used):
        split = next((s for s in SPLITS if s in folder.split("/")), "unknown")
        policy.bad(split, "folder_without_row", f"{path}/{folder}: frames with no corpus row")

    # parse every needed frame (one pass over the container)
    wanted = [f for split in plan for _, folder in plan[split] for _, f in frames_of[folder]]
    parsed: dict[str, np.ndarray | None] = {}
    split_of_folder = {folder: s for s in plan for _, folder in plan[s]}
    for name, data in tree.iter_read(wanted):
        try:
            parsed[name] = parse_frame(data, name, max_coordinate)
        except OpenPoseError as exc:
            msg = f"{path}/{exc}"
            policy.bad(split_of_folder[posixpath.dirname(name)], "bad_frame_file", msg, OpenPoseError(msg))
            parsed[name] = None

    stores: dict[str, SplitStore] = {}
    n_frames: dict[str, int] = {}
    for split in SPLITS:
        if split not in plan:
            continue
        side = _load_gt3d(tree, split) if gt3d else None
        seqs, index, n_people, extra, extra_frame, gts = [], [], [], [], [], []
        offset = 0
        for row, folder in plan[split]:
            files = sorted(frames_of[folder])
            numbers = [n for n, _ in files]
            if len(set(numbers)) != len(numbers):
                dup = sorted(n for n, k in Counter(numbers).items() if k > 1)
                raise IngestError(f"{path}/{folder}: several files for frame number(s) {dup[:5]}")
            keep = [i for i, (_, f) in enumerate(files) if parsed[f] is not None]
            if not keep:
                policy.bad(split, "empty_video", f"{row['_where']}: no readable frame in {folder!r}")
                continue
            frames = [parsed[files[i][1]] for i in keep]
            if side is not None:
                g = _gt3d_for(side, row, len(files), split)
                if g is not None:
                    gts.append(g[keep])
            seq = np.zeros((len(frames), len(RAW_JOINTS), 3), np.float32)
            for t, fr in enumerate(frames):
                if len(fr):
                    seq[t] = fr[0]
                for person in fr[1:]:
                    extra.append(person)
                    extra_frame.append(offset + t)
            n_people.append(np.array([len(fr) for fr in frames], np.uint8))
            seqs.append(seq)
            offset += len(frames)
            index.append(
                {
                    "name": row["name"],
                    "video": row["video"],
                    "signer": row["speaker"],
                    "gloss": row["orth"],
                    "text": row["translation"],
                    "start": row["start"],
                    "end": row["end"],
                    "folder": folder,
                    "frame_numbers": [numbers[i] for i in keep],
                }
            )
        if side is not None and len(gts) != len(seqs):
            raise IngestError(f"gt3d/{split}: sidecar lacks some sequences of the corpus")
        arrays: dict[str, list[np.ndarray]] = {"n_people": n_people}
        if gts:
            arrays["gt3d"] = gts
        people = (
            np.asarray(extra, np.float32).reshape(-1, len(RAW_JOINTS), 3),
            np.asarray(extra_frame, np.int64),
        )
        stores[split] = SplitStore.from_sequences(
            seqs,
            index,
            RAW_JOINTS,
            RAW_CHANNELS,
            arrays=arrays,
            extra={"source": str(path), "extra_people": len(extra)},
            extra_people=people,
        )
        n_frames[split] = offset
    return stores, n_frames


def _load_gt3d(tree: Tree, split: str) -> tuple[SplitStore, dict[str, int]] | None:
    """The ground-truth 3D sidecar ``gt3d/<split>`` of a directory tree and its row per name."""
    if not isinstance(tree, DirTree):
        if f"gt3d/{split}" in tree.dirs:
            log.warning("gt3d sidecar inside an archive is not read; extract the archive to attach it")
        return None
    d = tree.root / "gt3d" / split
    if not d.is_dir():
        return None
    try:
        side = SplitStore.load(d, mmap=True)
    except StoreError as exc:
        raise IngestError(f"gt3d sidecar: {exc}") from exc
    return side, {e.get("name"): i for i, e in enumerate(side.index)}


def _gt3d_for(
    sidecar: tuple[SplitStore, dict[str, int]], row: dict[str, str], n_files: int, split: str
) -> np.ndarray:
    side, by_name = sidecar
    i = by_name.get(row["name"])
    if i is None:
        raise IngestError(f"{row['_where']}: sequence {row['name']!r} is missing from gt3d/{split}")
    g = np.asarray(side.sequence(i), np.float32)
    if len(g) != n_files:
        raise IngestError(
            f"{row['_where']}: gt3d/{split} has {len(g)} frames for {row['name']!r}, the video {n_files}"
        )
    return g


def ingest(cfg: DataConfig) -> tuple[dict[str, SplitStore], dict[str, Any]]:
    """Read the source of ``cfg``; returns stores per split and the metrics dict."""
    source, path = cfg.source, cfg.path
    policy = ErrorPolicy(cfg.on_error)
    t0 = time.perf_counter()
    if source == "pt_skels":
        stores = read_pt_skels(path, policy)
        n_frames = {s: int(st.poses.shape[0]) for s, st in stores.items()}
    elif source == "pose":
        stores, n_frames = ingest_pose(path, policy, cfg.max_coordinate)
    else:
        stores, n_frames = ingest_openpose(path, policy, source == "synthetic", cfg.max_coordinate)
    seconds = time.perf_counter() - t0
    if not stores or not any(len(st) for st in stores.values()):
        raise IngestError(f"{path}: no sequence was ingested")
    total = sum(n_frames.values())
    metrics: dict[str, Any] = {
        "source": source,
        "seconds": round(seconds, 3),
        "frames": total,
        "frames_per_s": round(total / max(seconds, 1e-9), 1),
    }
    for split in [*SPLITS, "unknown"]:
        if split not in stores and split not in policy.counts:
            continue
        st = stores.get(split)
        skipped = dict(policy.counts.get(split, {}))
        metrics[split] = {
            "sequences": len(st) if st else 0,
            "frames": n_frames.get(split, 0),
            "skipped": skipped,
            "skipped_total": sum(skipped.values()),
        }
    return stores, metrics
