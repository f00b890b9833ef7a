"""The whole synthetic corpus: params validation, per-sequence generation, writing all outputs.

Output layout under ``out`` (see docs/CONTRACTS.md, row ``synthesize``)::

    openpose/<split>/<name>/<name>_<frame:012d>_keypoints.json  OpenPose 1.3 JSON, frames 0..T-1
    annotations/PHOENIX-2014-T.<split>.corpus.csv   name|video|start|end|speaker|orth|translation
    gt3d/<split>/        SplitStore: true 3D of the 137 raw joints for every JSON frame,
                         camera coords (m); extra.camera = intrinsics
    signers.json         signer proportions and speeds
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

from pipeline.config import PARAMS_FILE, ParamsError, check_positive
from pipeline.skeleton import RAW_JOINTS
from pipeline.store import SPLITS, SplitStore
from pipeline.synth.detector import DetectorConfig, detect
from pipeline.synth.grammar import sample_corpus
from pipeline.synth.kinematics import make_camera, make_signers, pose_body_frame, to_camera
from pipeline.synth.motion import build_controls
from pipeline.synth.writer import write_corpus_csv, write_video


@dataclass(frozen=True)
class SynthConfig:
    """The ``synthetic`` params section (validated)."""

    n_train: int = 600
    n_dev: int = 60
    n_test: int = 60
    n_signers: int = 6
    fps: float = 25.0
    image_size: tuple[int, int] = (210, 260)  # width, height
    min_glosses: int = 3
    max_glosses: int = 8
    max_frames: int = 200
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    @classmethod
    def from_params(cls, sec: dict[str, Any]) -> SynthConfig:
        """Validate ``params['synthetic']``; raise :class:`ParamsError` naming the bad key."""
        known = {f for f in cls.__dataclass_fields__}
        for key in sec:
            if key not in known:
                raise ParamsError(f"{PARAMS_FILE}: unknown key synthetic.{key} (known: {sorted(known)})")
        kw: dict[str, Any] = {}
        for key in ("n_train", "n_dev", "n_test", "n_signers", "min_glosses", "max_glosses", "max_frames"):
            if key in sec:
                kw[key] = _int(sec[key], f"synthetic.{key}")
        if "fps" in sec:
            kw["fps"] = float(check_positive(sec["fps"], "synthetic.fps"))
        if "image_size" in sec:
            size = sec["image_size"]
            if not isinstance(size, (list, tuple)) or len(size) != 2:
                raise ParamsError(
                    f"{PARAMS_FILE}: synthetic.image_size={size!r} is invalid; expected [width, height]"
                )
            kw["image_size"] = tuple(_int(v, "synthetic.image_size") for v in size)
        if "detector" in sec:
            kw["detector"] = _detector(sec["detector"])
        cfg = cls(**kw)
        if cfg.max_glosses < cfg.min_glosses:
            raise ParamsError(
                f"{PARAMS_FILE}: synthetic.max_glosses={cfg.max_glosses} is below "
                f"synthetic.min_glosses={cfg.min_glosses}"
            )
        if cfg.max_frames < 10 * cfg.max_glosses:
            raise ParamsError(
                f"{PARAMS_FILE}: synthetic.max_frames={cfg.max_frames} is too small for "
                f"synthetic.max_glosses={cfg.max_glosses}; expected >= {10 * cfg.max_glosses}"
            )
        return cfg

    @property
    def sizes(self) -> dict[str, int]:
        """Sequences per split."""
        return {"train": self.n_train, "dev": self.n_dev, "test": self.n_test}


def _int(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ParamsError(f"{PARAMS_FILE}: {key}={value!r} is invalid; expected an integer > 0")
    return value


def _detector(sec: Any) -> DetectorConfig:
    if not isinstance(sec, dict):
        raise ParamsError(f"{PARAMS_FILE}: synthetic.detector must be a mapping, got {sec!r}")
    known = set(DetectorConfig.__dataclass_fields__)
    kw = {}
    for key, value in sec.items():
        name = f"synthetic.detector.{key}"
        if key not in known:
            raise ParamsError(f"{PARAMS_FILE}: unknown key {name} (known: {sorted(known)})")
        check_positive(value, name, allow_zero=True)
        if key != "jitter_px" and value > 1:
            raise ParamsError(f"{PARAMS_FILE}: {name}={value!r} is invalid; expected a probability in [0, 1]")
        kw[key] = float(value)
    return DetectorConfig(**kw)


def check_seed(seed: Any) -> int:
    """``params.seed`` must be a non-negative integer."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ParamsError(f"{PARAMS_FILE}: seed={seed!r} is invalid; expected an integer >= 0")
    return seed


def generate_corpus(cfg: SynthConfig, seed: int, out: str | Path) -> dict[str, Any]:
    """Generate and write the whole corpus under ``out``; return counts and timing."""
    out = Path(out)
    t0 = time.perf_counter()
    width, height = cfg.image_size
    cam = make_camera(width, height)
    signers = make_signers(cfg.n_signers, np.random.default_rng([seed, 11]))
    sentences = sample_corpus(np.random.default_rng([seed, 7]), cfg.sizes, cfg.min_glosses, cfg.max_glosses)
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
                controls = build_controls(gloss.split(), signer, rng, cfg.max_frames, cfg.fps)
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
            write_corpus_csv(out / "annotations" / f"PHOENIX-2014-T.{split}.corpus.csv", rows)
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
