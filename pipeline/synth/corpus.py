"""The whole synthetic corpus: params validation, per-sequence generation, writing all outputs.

Output layout under ``out`` (see docs/ARCHITECTURE.md, section *synthesize*)::

    openpose/<split>/<name>/<name>_<frame:012d>_keypoints.json  OpenPose 1.3 JSON, frames 0..T-1
    annotations/PHOENIX-2014-T.<split>.corpus.csv   name|video|start|end|speaker|orth|translation
    gt3d/<split>/        SplitStore: true 3D of the 137 raw joints for every JSON frame,
                         camera coords (m); extra.camera = intrinsics
    signers.json         signer proportions, speeds and signing styles
    stats.json           counts (frames, empty and two-person frames, undetected joints)

Every sequence draws from its own generator ``default_rng([seed, split, i])``, so the output is
byte-identical for a given seed.
"""

from __future__ import annotations

import json
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import PARAMS_FILE, ParamsError, param
from pipeline.data.corpus_csv import write_corpus
from pipeline.data.openpose import write_video
from pipeline.data.skeleton import RAW_JOINTS
from pipeline.data.store import SPLITS, SplitStore
from pipeline.synth.body import make_camera, make_signers, pose_body_frame, to_camera
from pipeline.synth.detector import DetectorConfig, detect
from pipeline.synth.grammar import TextConfig, sample_corpus
from pipeline.synth.motion import SigningConfig, build_controls


@dataclass(frozen=True)
class SynthConfig:
    """The ``synthetic`` params section."""

    n_train: int = param(600, gt=0)
    n_dev: int = param(60, gt=0)
    n_test: int = param(60, gt=0)
    n_signers: int = param(6, gt=0)
    fps: float = param(25.0, gt=0)
    image_size: tuple[int, int] = (210, 260)  # width, height
    min_glosses: int = param(1, gt=0)  # glosses per sentence (PHOENIX-2014T: 1 .. >20, mean ~9.5)
    max_glosses: int = param(20, gt=0)
    max_frames: int = param(200, gt=0)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    text: TextConfig = field(default_factory=TextConfig)
    signing: SigningConfig = field(default_factory=SigningConfig)

    def __post_init__(self) -> None:
        if min(self.image_size) <= 0:
            raise ParamsError(
                f"{PARAMS_FILE}: synthetic.image_size={list(self.image_size)} is invalid; "
                "expected [width, height] > 0"
            )
        if self.max_glosses < self.min_glosses:
            raise ParamsError(
                f"{PARAMS_FILE}: synthetic.max_glosses={self.max_glosses} is below "
                f"synthetic.min_glosses={self.min_glosses}"
            )
        if self.max_frames < 10 * self.max_glosses:
            raise ParamsError(
                f"{PARAMS_FILE}: synthetic.max_frames={self.max_frames} is too small for "
                f"synthetic.max_glosses={self.max_glosses}; expected >= {10 * self.max_glosses}"
            )

    @property
    def sizes(self) -> dict[str, int]:
        """Sequences per split."""
        return {"train": self.n_train, "dev": self.n_dev, "test": self.n_test}


def generate_corpus(cfg: SynthConfig, seed: int, out: str | Path) -> dict[str, Any]:
    """Generate and write the whole corpus under ``out``; return counts and timing."""
    out = Path(out)
    t0 = time.perf_counter()
    width, height = cfg.image_size
    cam = make_camera(width, height)
    signers = make_signers(cfg.n_signers, np.random.default_rng([seed, 11]), cfg.signing.left_handed)
    sentences = sample_corpus(
        np.random.default_rng([seed, 7]), cfg.sizes, cfg.min_glosses, cfg.max_glosses, cfg.text
    )
    stats: dict[str, Any] = {"seed": seed, "splits": {}}
    # the many small JSON files are written by threads, overlapping file-system latency with
    # the numpy work; file contents do not depend on the order of writing
    with ThreadPoolExecutor(max_workers=3) as pool:
        pending: deque[Future] = deque()
        total_frames = 0
        for split_id, split in enumerate(SPLITS):
            seqs, index = [], []
            rows = []
            keys = ("sequences", "frames", "empty_frames", "two_person_frames", "missing_joints", "joints")
            counts = dict.fromkeys(keys, 0)
            for i, (text, gloss) in enumerate(sentences[split]):
                rng = np.random.default_rng([seed, split_id, i])
                signer = signers[int(rng.integers(len(signers)))]
                controls = build_controls(gloss.split(), signer, rng, cfg.max_frames, cfg.fps, cfg.signing)
                xyz = to_camera(pose_body_frame(signer, controls), signer, cam)
                frames, det = detect(cam.project(xyz), width, height, rng, cfg.detector)
                name = f"synth_{split}_{i:05d}"
                pending.append(pool.submit(write_video, out / "openpose" / split / name, name, frames))
                while len(pending) > 16:  # bounded queue; .result() re-raises write errors
                    pending.popleft().result()
                entry = {
                    "name": name,
                    "video": f"{name}/1/*.png",
                    "signer": signer.name,
                    "gloss": gloss,
                    "text": text,
                }
                index.append(entry)
                rows.append(entry)
                seqs.append(xyz.astype(np.float32))
                counts["sequences"] += 1
                for k in ("frames", "empty_frames", "two_person_frames", "missing_joints", "joints"):
                    counts[k] += det[k]
            while pending:
                pending.popleft().result()
            write_corpus(out / "annotations" / f"PHOENIX-2014-T.{split}.corpus.csv", rows)
            extra = {"camera": cam.to_dict(), "units": "m", "coords": "camera: x right, y down, z forward"}
            SplitStore.from_sequences(seqs, index, RAW_JOINTS, ["x", "y", "z"], cfg.fps, extra=extra).save(
                out / "gt3d" / split
            )
            lengths = [len(s) for s in seqs]
            counts.update(mean_frames=float(np.mean(lengths)), max_frames=int(np.max(lengths)))
            stats["splits"][split] = counts
            total_frames += counts["frames"]
    stats["frames"] = total_frames
    (out / "signers.json").write_text(json.dumps([s.to_dict() for s in signers], indent=1))
    (out / "stats.json").write_text(json.dumps({**stats, "config": asdict(cfg)}, indent=1, default=list))
    seconds = time.perf_counter() - t0  # timing is returned, not written: the files stay byte-identical
    return {**stats, "seconds": round(seconds, 2), "frames_per_s": round(total_frames / seconds, 1)}
