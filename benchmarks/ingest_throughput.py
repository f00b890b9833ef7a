"""Ingest throughput (frames/s) on a temporary corpus of OpenPose JSON.

The corpus is made by repeating the real Czech demo frames (``../shared/data/openpose-czech-demo``)
with pixel jitter, one folder per video plus a PHOENIX corpus CSV per split, so every frame is a
distinct real-format file. Measures :func:`pipeline.ingest.ingest` on the directory and on a
``.zip`` of it (the files are read once before timing so the page cache is warm in both cases).

    python benchmarks/ingest_throughput.py [--videos 200] [--frames 100] [--write-docs]

``--write-docs`` replaces the body of the "## Ingest throughput" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipeline.ingest import CORPUS_HEADER, ingest  # noqa: E402

DEMO = ROOT.parent / "shared" / "data" / "openpose-czech-demo"
DOCS = ROOT / "docs" / "benchmarks.md"


def make_corpus(root: Path, videos: int, frames: int, seed: int = 0) -> int:
    """Write ``videos`` folders of ``frames`` jittered real frames; returns the frame count."""
    rng = np.random.default_rng(seed)
    docs = [json.loads(f.read_text()) for f in sorted(DEMO.glob("rec*/*_keypoints.json"))]
    if not docs:
        raise SystemExit(f"{DEMO}: real OpenPose frames not found")
    splits = {"train": [], "dev": [], "test": []}
    for v in range(videos):
        split = ("train", "train", "train", "train", "train", "train", "train", "train", "dev", "test")[
            v % 10
        ]
        name = f"video{v:05d}"
        splits[split].append(name)
        folder = root / "openpose" / split / name
        folder.mkdir(parents=True)
        start = int(rng.integers(len(docs)))
        for t in range(frames):
            doc = docs[(start + t) % len(docs)]
            people = []
            for person in doc["people"]:
                out = {}
                for key, values in person.items():
                    a = np.asarray(values, float).reshape(-1, 3) if values else np.zeros((0, 3))
                    a[:, :2] += np.where(a[:, 2:] > 0, rng.normal(0, 1.5, (len(a), 2)), 0)
                    out[key] = [round(x, 3) for x in a.ravel().tolist()]
                people.append(out)
            text = json.dumps({"version": 1.2, "people": people}, separators=(",", ":"))
            (folder / f"{name}_{t:012d}_keypoints.json").write_text(text)
    ann = root / "annotations"
    ann.mkdir()
    for split, names in splits.items():
        rows = [f"{n}|{n}/1/*.png|-1|-1|Signer01|GLOSS|text ." for n in names]
        (ann / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(["|".join(CORPUS_HEADER), *rows]))
    return videos * frames


def measure(path: Path, repeats: int) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, metrics = ingest({"data": {"source": "openpose", "path": str(path), "on_error": "raise"}})
        best = min(best, time.perf_counter() - t0)
        n = metrics["frames"]
    return n / best, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        total = make_corpus(root, args.videos, args.frames)
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        archive = Path(tmp) / "corpus.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(root.rglob("*")):
                zf.write(f, f.relative_to(root).as_posix())
        for f in root.rglob("*.json"):  # warm the page cache
            f.read_bytes()
        fps_dir, n = measure(root, args.repeats)
        fps_zip, _ = measure(archive, args.repeats)
    assert n == total
    cpu = platform.processor() or platform.machine()
    machine = f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}"
    result = {
        "frames": total,
        "videos": args.videos,
        "mean_file_bytes": round(size / total),
        "frames_per_s_dir": round(fps_dir),
        "frames_per_s_zip": round(fps_zip),
        "machine": machine,
    }
    print(json.dumps(result, indent=1))
    if args.write_docs:
        write_docs(result, args)


def write_docs(r: dict, args: argparse.Namespace) -> None:
    body = (
        "Script: `benchmarks/ingest_throughput.py` "
        f"(`python benchmarks/ingest_throughput.py --videos {args.videos} --frames {args.frames} "
        "--write-docs`). "
        f"Corpus: {r['videos']} videos x {args.frames} frames = {r['frames']} OpenPose 1.2 JSON files "
        f"(real Czech demo frames with pixel jitter, ~{r['mean_file_bytes']} bytes each; "
        "the face model was off, so no face points) "
        "+ PHOENIX corpus CSVs. "
        "Timed: `pipeline.ingest.ingest` (list, match rows to folders, parse with orjson, pack the "
        f"SplitStores; not the `.npy` writing), best of {args.repeats}, single process, warm page cache.\n\n"
        "| container | frames/s |\n|---|---|\n"
        f"| directory | {r['frames_per_s_dir']:,} |\n| .zip (deflate) | {r['frames_per_s_zip']:,} |\n\n"
        f"Machine: {r['machine']}, shared with other jobs while measured. At this rate PHOENIX-2014T "
        f"(~947k frames) ingests in about {947_000 / r['frames_per_s_dir'] / 60:.0f} min.\n"
    )
    text = DOCS.read_text()
    new, n = re.subn(
        r"(## Ingest throughput\n)(.*?)(?=\n## |\Z)", lambda m: m.group(1) + "\n" + body, text, flags=re.S
    )
    if n != 1:
        raise SystemExit(f"{DOCS}: no '## Ingest throughput' section")
    DOCS.write_text(new)


if __name__ == "__main__":
    main()
