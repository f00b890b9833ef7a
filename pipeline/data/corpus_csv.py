"""PHOENIX-2014T corpus files: ``<anything>.<split>.corpus.csv``, ``|``-separated, one row per video.

Header ``name|video|start|end|speaker|orth|translation``: sequence name, video path pattern
(PHOENIX: ``<name>/1/*.png``), start/end frames (``-1`` = whole video), signer, gloss sequence
(``orth``) and German sentence (``translation``). :func:`read_corpus` parses one file,
:func:`write_corpus` writes one (the synthetic corpus).
"""

from __future__ import annotations

import csv
import io
import posixpath
from pathlib import Path

from pipeline.data.policy import IngestError

HEADER = ["name", "video", "start", "end", "speaker", "orth", "translation"]
SUFFIX = ".corpus.csv"


def split_of(csv_name: str) -> str:
    """The split named by ``<anything>.<split>.corpus.csv`` (may be unknown; caller checks)."""
    stem = posixpath.basename(csv_name)[: -len(SUFFIX)]
    return stem.rsplit(".", 1)[-1]


def read_corpus(text: str, source: str) -> list[dict[str, str]]:
    """Parse a corpus file's text into rows (``_where`` = ``source:line``); raises
    :class:`IngestError` naming ``source:line``."""
    rows = list(csv.reader(io.StringIO(text), delimiter="|", quoting=csv.QUOTE_NONE))
    if not rows or [h.strip() for h in rows[0]] != HEADER:
        got = "|".join(rows[0]) if rows else "<empty file>"
        raise IngestError(f"{source}:1: header is {got!r}, expected {'|'.join(HEADER)!r}")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(HEADER):
            raise IngestError(f"{source}:{line}: {len(row)} fields, expected {len(HEADER)}")
        entry = dict(zip(HEADER, (v.strip() for v in row), strict=True))
        if not entry["name"]:
            raise IngestError(f"{source}:{line}: empty name")
        entry["_where"] = f"{source}:{line}"
        out.append(entry)
    return out


def write_corpus(path: Path, rows: list[dict[str, str]]) -> None:
    """Write a corpus file from rows with ``name, video, signer, gloss, text`` (start/end -1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="|", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(HEADER)
        for r in rows:
            w.writerow([r["name"], r["video"], -1, -1, r["signer"], r["gloss"], r["text"]])
