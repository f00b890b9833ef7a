"""Stage ``ingest``: read the source corpus (params ``data``) into one array store per split.

Sources (``data.source``):

- ``synthetic`` / ``openpose``: ``data.path`` is a directory, ``.zip``, ``.tar`` or ``.tar.gz``
  holding per-frame OpenPose JSON (``<prefix>_<12-digit frame>_keypoints.json``) and PHOENIX
  corpus CSVs (``*.<split>.corpus.csv``, ``|``-separated, header
  ``name|video|start|end|speaker|orth|translation``). Each CSV row is matched to the folder that
  holds its frames, found anywhere under the root (see :func:`match_folder`); frames are ordered
  by the 12-digit number, whatever the prefix. For ``synthetic``, the ground-truth sidecar
  ``<data.path>/gt3d/<split>/`` (a SplitStore) is attached frame-aligned as ``gt3d``.
- ``pt_skels``: Progressive-Transformers ``<split>.text/.gloss/.skels/.files`` (see
  :mod:`pipeline.pt_skels`).

Writes ``data/ingested/<split>/`` (SplitStore; raw 137 joints x [x, y, c] pixels, person 0 of
every frame in ``poses``, ``n_people`` per frame, further people in ``extra_people.npy`` /
``extra_people_frame.npy``) and ``metrics/ingest.json``. Bad input raises :class:`IngestError`
(or :class:`pipeline.openpose.OpenPoseError`) naming the file/row, or, with
``data.on_error: skip``, is logged and counted per split and reason.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import posixpath
import shutil
import tarfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import check_choice, load_params, section
from pipeline.openpose import OpenPoseError, frame_number, is_frame_file, parse_frame
from pipeline.skeleton import RAW_JOINTS
from pipeline.store import SPLITS, SplitStore, StoreError

log = logging.getLogger("pipeline.ingest")

OUT_DIR = Path("data/ingested")
METRICS = Path("metrics/ingest.json")
SOURCES = ("synthetic", "openpose", "pt_skels")
CORPUS_HEADER = ["name", "video", "start", "end", "speaker", "orth", "translation"]
CORPUS_SUFFIX = ".corpus.csv"
RAW_CHANNELS = ["x", "y", "c"]


class IngestError(ValueError):
    """Bad source data: the message names the file/row and the problem."""


class ErrorPolicy:
    """``data.on_error``: raise on bad input, or log it and count it per split and reason."""

    def __init__(self, on_error: str = "raise") -> None:
        self.skip = check_choice(on_error, ("raise", "skip"), "data.on_error") == "skip"
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def bad(self, split: str, reason: str, message: str, exc: Exception | None = None) -> None:
        """Raise :class:`IngestError` (or re-raise ``exc``), or log and count a skip."""
        if not self.skip:
            if isinstance(exc, ValueError) and str(exc) == message:
                raise exc
            raise IngestError(message) from exc
        log.warning("skipped (%s): %s", reason, message)
        self.counts[split][reason] += 1


# -- source trees: directory, zip, tar ---------------------------------------------------------
class Tree:
    """Files of a directory or archive, by POSIX path relative to its root."""

    files: list[str]
    dirs: set[str]

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def iter_read(self, names: list[str]) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for ``names`` (in the cheapest order for the container)."""
        for n in names:
            yield n, self.read(n)

    def _finish(self, files: list[str]) -> None:
        self.files = sorted(files)
        leaves = {posixpath.dirname(f) for f in self.files} - {""}
        self.dirs = leaves | {d for leaf in leaves for d in _parents(leaf)}


def _parents(name: str) -> Iterator[str]:
    d = posixpath.dirname(name)
    while d:
        yield d
        d = posixpath.dirname(d)


class DirTree(Tree):
    def __init__(self, root: Path) -> None:
        self.root = root
        files, dirs = [], set()
        for top, subdirs, names in os.walk(root):
            rel = os.path.relpath(top, root).replace(os.sep, "/")
            prefix = "" if rel == "." else rel + "/"
            dirs.update(prefix + d for d in subdirs)
            files.extend(prefix + n for n in names)
        self._finish(files)
        self.dirs |= dirs

    def read(self, name: str) -> bytes:
        with open(os.path.join(self.root, name), "rb") as fh:
            return fh.read()


class ZipTree(Tree):
    def __init__(self, path: Path) -> None:
        self.zf = zipfile.ZipFile(path)
        self._finish([i.filename for i in self.zf.infolist() if not i.is_dir()])
        self.dirs |= {i.filename.rstrip("/") for i in self.zf.infolist() if i.is_dir()}

    def read(self, name: str) -> bytes:
        return self.zf.read(name)


class TarTree(Tree):
    def __init__(self, path: Path) -> None:
        self.tf = tarfile.open(path, "r:*")  # noqa: SIM115 - kept open while reading
        self.members = {m.name.removeprefix("./"): m for m in self.tf.getmembers()}
        self._finish([n for n, m in self.members.items() if m.isfile()])
        self.dirs |= {n.rstrip("/") for n, m in self.members.items() if m.isdir() and n not in ("", ".")}

    def read(self, name: str) -> bytes:
        fh = self.tf.extractfile(self.members[name])
        assert fh is not None
        return fh.read()

    def iter_read(self, names: list[str]) -> Iterator[tuple[str, bytes]]:
        # archive order: forward seeks only, so a .tar.gz is decompressed once
        wanted = set(names)
        for name in self.members:
            if name in wanted:
                yield name, self.read(name)


def open_tree(path: str | Path) -> Tree:
    """A :class:`Tree` over a directory, ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``."""
    path = Path(path)
    if path.is_dir():
        return DirTree(path)
    if not path.exists():
        raise IngestError(f"data.path={str(path)!r}: no such file or directory")
    if zipfile.is_zipfile(path):
        return ZipTree(path)
    if tarfile.is_tarfile(path):
        return TarTree(path)
    raise IngestError(f"data.path={str(path)!r}: not a directory, .zip or .tar archive")


# -- corpus CSVs ------------------------------------------------------------------------------
def split_of(csv_name: str) -> str:
    """The split named by ``<anything>.<split>.corpus.csv`` (may be unknown; caller checks)."""
    stem = posixpath.basename(csv_name)[: -len(CORPUS_SUFFIX)]
    return stem.rsplit(".", 1)[-1]


def read_corpus(text: str, source: str) -> list[dict[str, str]]:
    """Parse a PHOENIX corpus CSV; raises :class:`IngestError` naming ``source:line``."""
    rows = list(csv.reader(io.StringIO(text), delimiter="|", quoting=csv.QUOTE_NONE))
    if not rows or [h.strip() for h in rows[0]] != CORPUS_HEADER:
        got = "|".join(rows[0]) if rows else "<empty file>"
        raise IngestError(f"{source}:1: header is {got!r}, expected {'|'.join(CORPUS_HEADER)!r}")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(CORPUS_HEADER):
            raise IngestError(f"{source}:{line}: {len(row)} fields, expected {len(CORPUS_HEADER)}")
        entry = dict(zip(CORPUS_HEADER, (v.strip() for v in row), strict=True))
        if not entry["name"]:
            raise IngestError(f"{source}:{line}: empty name")
        entry["_where"] = f"{source}:{line}"
        out.append(entry)
    return out


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
    path: str | Path, policy: ErrorPolicy, gt3d: bool = False
) -> tuple[dict[str, SplitStore], dict[str, int]]:
    """Read an OpenPose JSON tree + corpus CSVs; returns stores per split and frame counts."""
    tree = open_tree(path)
    csvs = [f for f in tree.files if f.endswith(CORPUS_SUFFIX)]
    if not csvs:
        raise IngestError(
            f"{path}: no *{CORPUS_SUFFIX} corpus file; write one "
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
            parsed[name] = parse_frame(data, name)
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
        store = SplitStore.from_sequences(
            seqs, index, RAW_JOINTS, RAW_CHANNELS, arrays=arrays, extra={"source": str(path)}
        )
        store.extra["extra_people"] = len(extra)
        store.extra_people = (  # type: ignore[attr-defined]
            np.asarray(extra, np.float32).reshape(-1, len(RAW_JOINTS), 3),
            np.asarray(extra_frame, np.int64),
        )
        stores[split] = store
        n_frames[split] = offset
    return stores, n_frames


def _load_gt3d(tree: Tree, split: str) -> SplitStore | None:
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
    side.by_name = {e.get("name"): i for i, e in enumerate(side.index)}  # type: ignore[attr-defined]
    return side


def _gt3d_for(side: SplitStore, row: dict[str, str], n_files: int, split: str) -> np.ndarray:
    i = side.by_name.get(row["name"])  # type: ignore[attr-defined]
    if i is None:
        raise IngestError(f"{row['_where']}: sequence {row['name']!r} is missing from gt3d/{split}")
    g = np.asarray(side.sequence(i), np.float32)
    if len(g) != n_files:
        raise IngestError(
            f"{row['_where']}: gt3d/{split} has {len(g)} frames for {row['name']!r}, the video {n_files}"
        )
    return g


def save_store(store: SplitStore, directory: Path) -> None:
    """Save a store plus the sparse extra-people arrays of an OpenPose source."""
    store.save(directory)
    extra = getattr(store, "extra_people", None)
    if extra is not None:
        np.save(directory / "extra_people.npy", extra[0])
        np.save(directory / "extra_people_frame.npy", extra[1])


def load_extra_people(directory: str | Path, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``[E, 137, 3]`` further people of a split and their global frame index ``[E]``."""
    d = Path(directory)
    if not (d / "extra_people.npy").exists():
        return np.zeros((0, len(RAW_JOINTS), 3), np.float32), np.zeros(0, np.int64)
    people, frame = np.load(d / "extra_people.npy"), np.load(d / "extra_people_frame.npy")
    if len(people) != len(frame) or (len(frame) and (frame.min() < 0 or frame.max() >= n_frames)):
        raise StoreError(f"{d}: extra_people arrays are inconsistent")
    return people, frame


# -- stage ------------------------------------------------------------------------------------
def ingest(params: dict[str, Any]) -> tuple[dict[str, SplitStore], dict[str, Any]]:
    """Run the ingest of ``params['data']``; returns stores per split and the metrics dict."""
    data = section(params, "data")
    source = check_choice(data.get("source"), SOURCES, "data.source")
    path = data.get("path")
    if not isinstance(path, str) or not path:
        raise IngestError(f"params.yaml: data.path={path!r} is invalid; expected a path")
    policy = ErrorPolicy(data.get("on_error", "raise"))
    t0 = time.perf_counter()
    if source == "pt_skels":
        from pipeline.pt_skels import read_pt_skels

        stores = read_pt_skels(path, policy)
        n_frames = {s: int(st.poses.shape[0]) for s, st in stores.items()}
    else:
        stores, n_frames = ingest_openpose(path, policy, gt3d=source == "synthetic")
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


def main() -> None:
    """``python -m pipeline.ingest``: params ``data`` -> data/ingested/<split>/, metrics/ingest.json."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stores, metrics = ingest(load_params())
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    for split, store in stores.items():
        save_store(store, OUT_DIR / split)
        log.info("%s: %d sequences, %d frames", split, len(store), store.poses.shape[0])
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    METRICS.write_text(json.dumps(metrics, indent=1) + "\n")
    log.info(
        "%d frames in %.2f s (%.0f frames/s)", metrics["frames"], metrics["seconds"], metrics["frames_per_s"]
    )


if __name__ == "__main__":
    main()
