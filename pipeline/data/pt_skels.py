"""Importer of Progressive-Transformers data: ``<split>.text/.gloss/.skels/.files`` per split.

Line ``i`` of the four files of a split describes sequence ``i``: the German sentence, the
gloss sequence, the sequence name (``train/11August_2010_Wednesday_tagesschau-1``) and the
skeleton: all frames concatenated, each frame 151 space-separated floats = the 50 manual joints
(:data:`pipeline.data.skeleton.MANUAL_JOINTS`) x [x, y, z] followed by a progress counter in [0, 1]
(frame t of T has counter t / T). The counter is validated (in [0, 1], non-decreasing) and
dropped. Output: one :class:`~pipeline.data.store.SplitStore` per split, channels [x, y, z].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.policy import ErrorPolicy, IngestError
from pipeline.data.skeleton import MANUAL_JOINTS
from pipeline.data.store import SPLITS, SplitStore

EXTS = (".text", ".gloss", ".skels", ".files")
FRAME_WIDTH = 3 * len(MANUAL_JOINTS) + 1  # 151


def parse_skels_line(line: str, source: str) -> np.ndarray:
    """One ``.skels`` line -> ``[T, 50, 3]`` float32; raises :class:`IngestError` naming ``source``."""
    try:
        values = np.array(line.split(), dtype=np.float64)
    except ValueError as exc:
        raise IngestError(f"{source}: non-numeric value in .skels line ({exc})") from exc
    if len(values) == 0:
        raise IngestError(f"{source}: empty skeleton line (video without frames)")
    if len(values) % FRAME_WIDTH:
        raise IngestError(
            f"{source}: {len(values)} values is not a multiple of {FRAME_WIDTH} "
            f"(50 joints x [x, y, z] + counter per frame)"
        )
    frames = values.reshape(-1, FRAME_WIDTH)
    if not np.isfinite(frames).all():
        raise IngestError(f"{source}: NaN or inf in .skels line")
    counter = frames[:, -1]
    bad = np.flatnonzero((counter < 0) | (counter > 1))
    if len(bad):
        raise IngestError(
            f"{source}: frame {bad[0]} progress counter {float(counter[bad[0]]):g} is outside [0, 1] "
            f"(line length does not match 151 values per frame?)"
        )
    if np.any(np.diff(counter) < 0):
        t = int(np.flatnonzero(np.diff(counter) < 0)[0]) + 1
        raise IngestError(f"{source}: progress counter decreases at frame {t} (misaligned frames?)")
    return frames[:, :-1].reshape(-1, len(MANUAL_JOINTS), 3).astype(np.float32)


def read_pt_skels(path: str | Path, policy: ErrorPolicy) -> dict[str, SplitStore]:
    """Read every split found under ``path``; unknown split names are errors (or counted skips)."""
    root = Path(path)
    if not root.is_dir():
        raise IngestError(f"data.path={str(path)!r}: not a directory of <split>.skels files")
    found = sorted(p for p in root.iterdir() if p.suffix in EXTS)
    for p in found:
        if p.stem not in SPLITS:
            policy.bad("unknown", "unknown_split", f"{p}: unknown split {p.stem!r} (expected {SPLITS})")
    stores: dict[str, SplitStore] = {}
    for split in SPLITS:
        files = {ext: root / f"{split}{ext}" for ext in EXTS}
        present = [e for e, f in files.items() if f.exists()]
        if not present:
            continue
        if len(present) != len(EXTS):
            missing = [str(f) for e, f in files.items() if e not in present]
            policy.bad(split, "missing_file", f"{root}: split {split!r} lacks {missing}")
            continue
        lines = {e: f.read_text(encoding="utf-8").split("\n") for e, f in files.items()}
        for e in EXTS:  # a final newline is not a record
            if lines[e] and lines[e][-1] == "":
                lines[e].pop()
        counts = {str(files[e]): len(v) for e, v in lines.items()}
        if len(set(counts.values())) != 1:
            policy.bad(split, "line_count_mismatch", f"{root}: split {split!r} line counts differ: {counts}")
            continue
        seqs, index = [], []
        for i, skel in enumerate(lines[".skels"]):
            where = f"{files['.skels']}:{i + 1}"
            try:
                seq = parse_skels_line(skel, where)
            except IngestError as exc:
                reason = "empty_video" if not skel.strip() else "bad_skels_line"
                policy.bad(split, reason, str(exc), exc)
                continue
            video = lines[".files"][i].strip()
            seqs.append(seq)
            index.append(
                {
                    "name": video.rsplit("/", 1)[-1],
                    "video": video,
                    "signer": None,
                    "gloss": lines[".gloss"][i].strip(),
                    "text": lines[".text"][i].strip(),
                }
            )
        stores[split] = SplitStore.from_sequences(
            seqs, index, MANUAL_JOINTS, ["x", "y", "z"], extra={"source": str(root), "format": "pt_skels"}
        )
    return stores
