"""Text -> sign poses with the trained student: ``.npy``, ``.pose``, skeleton GIF and MP4 per sentence.

    python -m pipeline.tools.translate "am dienstag regnet es im norden" --out out/
    python -m pipeline.tools.translate --input sentences.txt --out out/      # one sentence per line

Loads ``--model`` (default ``models/student``) with :class:`pipeline.inference.Translator` (CUDA
when available, batches of ``--batch-size``), maps the poses back to body-centred 3D units with the
lift stage's inverse and writes, per sentence ``NNN`` (1-based, in input order):

- ``NNN_<slug>.npy``: float32 ``[T, J, 3]`` (neck origin, shoulder width 1, x right, y down, z away
  from the camera; J = 50 manual joints, 120 with the face, names in ``index.json``);
- ``NNN_<slug>.pose``: the same poses as a pose-format file in its OpenPose schema, in pixels of a
  512 x 512 frame (:mod:`pipeline.data.poseio`; ``pixel = scale * body + offset``, recorded per
  sentence in ``index.json`` as ``pose_pixels``);
- ``NNN_<slug>.gif`` / ``.mp4``: animated front-view skeleton at the model's fps (25)
  (:mod:`pipeline.evaluation.render`; ``--no-video`` skips them);

plus ``index.json`` (model, fps, joints, units, and per sentence: text, frames, truncated,
unknown tokens, files, pose_pixels). Blank lines of ``--input`` are skipped. Every failure is one
line ``translate: error: ...`` naming the path or value and the cause, exit status 2, with no traceback:
no input / an empty file, bad ``--size`` / ``--batch-size``, an ``--out`` that is a file or not
writable (checked before the model is loaded), a missing or broken model directory (missing files,
truncated weights), a bad device. A reused ``--out`` is cleaned first: the files listed by its
previous ``index.json`` (and any other ``NNN_<slug>.{npy,pose,gif,mp4}``) are removed, so the
directory holds exactly this run's outputs. A sentence longer than the text encoder's limit is
truncated to it with a logged warning; one whose tokens are mostly unknown to the tokenizer
(``[UNK]``, e.g. emoji) is translated with a warning.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path("models/student")
UNITS = "body-centred 3D: neck origin, shoulder width 1, x right, y down, z away from the camera"
OUTPUT_RE = re.compile(r"^\d{3,}_[a-z0-9_]+\.(npy|pose|gif|mp4)$")  # the per-sentence files we write
UNKNOWN_WARN = 0.5  # warn when more than this share of a sentence's tokens is [UNK]


def slug(text: str, limit: int = 40) -> str:
    """File-name-safe ASCII slug of a sentence (umlauts transliterated)."""
    text = text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:limit].strip("_")
    return s or "sentence"


def read_sentences(sentences: list[str], input_file: str | None) -> list[str]:
    """Sentences from the arguments and/or ``input_file`` (blank lines skipped); ValueError when none."""
    out = [s.strip() for s in sentences]
    if any(not s for s in out):
        raise ValueError("empty sentence given on the command line")
    if input_file is not None:
        path = Path(input_file)
        if not path.is_file():
            raise ValueError(f"--input {path}: no such file")
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        from_file = [line for line in lines if line]
        if not from_file:
            raise ValueError(f"--input {path}: the file has no sentence (empty or only blank lines)")
        out += from_file
    if not out:
        raise ValueError("no input: give a sentence or --input FILE")
    return out


def prepare_out(out_dir: str | Path) -> Path:
    """Check (before any model is loaded) that ``out_dir`` is or can be made a writable directory,
    then remove a previous run's outputs from it; ValueError naming the path and the cause."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".translate-check-"):
            pass
    except OSError as exc:
        raise ValueError(f"--out {out}: not a writable directory ({exc.strerror or exc})") from exc
    stale: set[str] = set()
    index = out / "index.json"
    if index.is_file():
        try:
            old = json.loads(index.read_text())
            stale |= {f for item in old.get("items", []) for f in item.get("files", {}).values()}
        except (json.JSONDecodeError, AttributeError, TypeError):
            log.warning("--out %s: its index.json is unreadable; removing only NNN_<slug> files", out)
    stale |= {p.name for p in out.iterdir() if OUTPUT_RE.match(p.name)}
    removed = 0
    for name in sorted(stale):
        path = out / os.path.basename(str(name))
        if path.is_file():
            path.unlink()
            removed += 1
    if index.is_file():
        index.unlink()
    if removed:
        log.warning("--out %s: removed %d file(s) of a previous translation", out, removed)
    return out


def unknown_tokens(tokenizer: Any, sentences: list[str]) -> list[tuple[int, int]]:
    """Per sentence ``(unknown, total)`` word-piece tokens (special tokens not counted)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    out = []
    for text in sentences:
        ids = tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
        out.append((sum(1 for i in ids if unk is not None and i == unk), len(ids)))
    return out


def write_outputs(
    out_dir: Path,
    sentences: list[str],
    poses: list[np.ndarray],
    fps: float,
    video: bool = True,
    size: int = 320,
) -> list[dict]:
    """Write the per-sentence files; returns the ``items`` of ``index.json``."""
    from pipeline.data import poseio
    from pipeline.evaluation import render

    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for k, (text, seq) in enumerate(zip(sentences, poses, strict=True), start=1):
        stem = f"{k:03d}_{slug(text)}"
        files = {"npy": f"{stem}.npy", "pose": f"{stem}.pose"}
        np.save(out_dir / files["npy"], np.asarray(seq, np.float32))
        pixels = poseio.fit_pixels(seq)
        poseio.write_pose(out_dir / files["pose"], seq, fps, pixels)
        if video:
            frames = render.render_frames(seq, render.View.fit(seq, width=size, height=size))
            files["gif"], files["mp4"] = f"{stem}.gif", f"{stem}.mp4"
            render.write_gif(out_dir / files["gif"], frames, fps)
            render.write_mp4(out_dir / files["mp4"], frames, fps)
        items.append(
            {"sentence": text, "frames": int(len(seq)), "files": files, "pose_pixels": pixels.as_dict()}
        )
    return items


def run(
    sentences: list[str],
    out_dir: str | Path,
    model: str | Path = DEFAULT_MODEL,
    device: str = "auto",
    transform: str | Path | None = None,
    batch_size: int = 32,
    video: bool = True,
    size: int = 320,
) -> dict:
    """Translate ``sentences`` and write every output to ``out_dir``; returns the index written."""
    from pipeline.inference import Translator

    out = prepare_out(out_dir)
    t0 = time.perf_counter()
    try:
        translator = Translator.load(model, device=device, transform=transform, batch_size=batch_size)
    except (FileNotFoundError, ValueError):
        raise
    except Exception as exc:  # a truncated model.pt, a broken tokenizer/: one line, no traceback
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--model {model}: cannot load the student ({type(exc).__name__}: {cause})") from exc
    t1 = time.perf_counter()
    unknown = unknown_tokens(translator.generator.tokenizer, sentences)
    for k, (n_unk, n) in enumerate(unknown, start=1):
        if n and n_unk / n > UNKNOWN_WARN:
            log.warning(
                "sentence %d: %d of %d tokens are unknown to the tokenizer ([UNK]); the output "
                "carries little of it: %r",
                k,
                n_unk,
                n,
                sentences[k - 1][:80],
            )
    poses = translator.translate(sentences)
    truncated = set(translator.last_truncated)
    t2 = time.perf_counter()
    items = write_outputs(out, sentences, poses, translator.fps, video, size)
    for i, item in enumerate(items):
        item["truncated"] = i in truncated
        item["unknown_tokens"] = unknown[i][0]
    index = {
        "model": str(model),
        "device": str(translator.generator.device),
        "fps": translator.fps,
        "joints": translator.joints,
        "units": UNITS,
        "items": items,
    }
    (out / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False))
    log.info(
        "%d sentence(s): load %.1f s, translate %.2f s, write %.1f s -> %s",
        len(sentences),
        t1 - t0,
        t2 - t1,
        time.perf_counter() - t2,
        out,
    )
    return index


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.tools.translate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("sentences", nargs="*", help="German sentence(s) to translate")
    parser.add_argument("--input", help="text file with one sentence per line (blank lines skipped)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="student directory (default %(default)s)")
    parser.add_argument("--transform", help="lift transform.json (default: the model's lift_transform.json)")
    parser.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda[:N]")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=320, help="video width/height in px (multiple of 16)")
    parser.add_argument("--no-video", action="store_true", help="skip the GIF/MP4")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(levelname)s: %(message)s")
    if args.size <= 0 or args.size % 16:
        print(f"translate: error: --size {args.size}: expected a positive multiple of 16", file=sys.stderr)
        return 2
    if args.batch_size <= 0:
        print(
            f"translate: error: --batch-size {args.batch_size}: expected a positive integer", file=sys.stderr
        )
        return 2
    try:
        sentences = read_sentences(args.sentences, args.input)
    except ValueError as exc:
        print(f"translate: error: {exc}", file=sys.stderr)
        return 2
    model = Path(args.model)
    if not model.is_dir():
        print(
            f"translate: error: model directory {model} does not exist (run `dvc repro train_student` "
            "or pass --model DIR)",
            file=sys.stderr,
        )
        return 2
    try:
        run(
            sentences,
            args.out,
            model,
            args.device,
            args.transform,
            args.batch_size,
            not args.no_video,
            args.size,
        )
    except (OSError, ValueError) as exc:
        print(f"translate: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
