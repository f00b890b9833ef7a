"""Array store: every sequence of one split packed into a few ``.npy`` files.

Layout of one split directory (written by :meth:`SplitStore.save`)::

    <dir>/meta.json       {"joints": [...], "channels": [...], "fps": 25, "extra": {...}}
    <dir>/index.jsonl     one JSON object per sequence: name, text, gloss, signer, ...
    <dir>/offsets.npy     int64 [N + 1]; sequence i is frames offsets[i]:offsets[i+1]
    <dir>/poses.npy       float32 [F, J, C]; all frames of all sequences, concatenated
    <dir>/<array>.npy     optional frame-aligned arrays (first axis F), e.g. ``gt3d``
    <dir>/extra_people.npy, extra_people_frame.npy   optional: further people detected in some
                          frames (OpenPose sources) [E, J, C] and their global frame index [E]

Later stages memory-map the ``.npy`` files instead of walking millions of small files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "dev", "test")
META, INDEX = "meta.json", "index.jsonl"


def corpus_files(root: str | Path, splits: tuple[str, ...]) -> tuple[Path, ...]:
    """``<root>/<split>/index.jsonl`` and ``meta.json`` of each split: which sentences (names, texts,
    glosses, frame counts) and which joints/channels, without the poses. The fixed evaluators
    declare these as their data dependency: re-lifting the same corpus (another CPU's round-off)
    must not retrain them."""
    return tuple(Path(root) / s / f for s in splits for f in (INDEX, META))


class StoreError(ValueError):
    """A store on disk is missing, inconsistent or corrupt."""


@dataclass
class SplitStore:
    """All sequences of one split: concatenated frames plus per-sequence metadata."""

    poses: np.ndarray  # float32 [F, J, C]
    offsets: np.ndarray  # int64 [N + 1]
    index: list[dict[str, Any]]  # N entries: name, text, gloss, signer, ...
    joints: list[str]
    channels: list[str]
    fps: float = 25.0
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # frame-aligned extras
    extra: dict[str, Any] = field(default_factory=dict)  # free-form metadata
    extra_people: tuple[np.ndarray, np.ndarray] | None = None  # ([E, J, C], global frame [E])

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        n = len(self.index)
        if self.offsets.shape != (n + 1,):
            raise StoreError(f"offsets has shape {self.offsets.shape}, expected ({n + 1},)")
        if n and (self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0)):
            raise StoreError("offsets must start at 0 and be non-decreasing")
        if self.poses.ndim != 3:
            raise StoreError(f"poses must be [frames, joints, channels], got {self.poses.shape}")
        if self.offsets[-1] != self.poses.shape[0]:
            raise StoreError(f"offsets end at {self.offsets[-1]} but poses has {self.poses.shape[0]} frames")
        if self.poses.shape[1:] != (len(self.joints), len(self.channels)):
            raise StoreError(
                f"poses shape {self.poses.shape} does not match "
                f"{len(self.joints)} joints x {len(self.channels)} channels"
            )
        for name, arr in self.arrays.items():
            if arr.shape[0] != self.poses.shape[0]:
                raise StoreError(f"array {name!r} has {arr.shape[0]} frames, poses {self.poses.shape[0]}")
        if self.extra_people is not None:
            people, frame = self.extra_people
            n = self.poses.shape[0]
            if len(people) != len(frame) or (len(frame) and (frame.min() < 0 or frame.max() >= n)):
                raise StoreError("extra_people arrays are inconsistent (lengths or frame indices)")

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_sequences(
        cls,
        sequences: list[np.ndarray],
        index: list[dict[str, Any]],
        joints: list[str],
        channels: list[str],
        fps: float = 25.0,
        arrays: dict[str, list[np.ndarray]] | None = None,
        extra: dict[str, Any] | None = None,
        extra_people: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> SplitStore:
        """Pack a list of ``[T_i, J, C]`` arrays (and aligned extras) into one store."""
        if len(sequences) != len(index):
            raise StoreError(f"{len(sequences)} sequences but {len(index)} index entries")
        lengths = [len(s) for s in sequences]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        width = (len(joints), len(channels))
        poses = (
            np.concatenate(sequences).astype(np.float32, copy=False)
            if sequences
            else np.zeros((0, *width), np.float32)
        )
        packed = {k: np.concatenate(v) for k, v in (arrays or {}).items() if v}
        return cls(
            poses,
            offsets,
            list(index),
            list(joints),
            list(channels),
            fps,
            packed,
            dict(extra or {}),
            extra_people,
        )

    # -- access ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    @property
    def lengths(self) -> np.ndarray:
        """Frames per sequence, int64 [N]."""
        return np.diff(self.offsets)

    def sequence(self, i: int, array: str = "poses") -> np.ndarray:
        """Frames of sequence ``i`` from ``poses`` or a named frame-aligned array."""
        data = self.poses if array == "poses" else self.arrays[array]
        return data[self.offsets[i] : self.offsets[i + 1]]

    def sequences(self, array: str = "poses") -> list[np.ndarray]:
        """All sequences as a list of views."""
        return [self.sequence(i, array) for i in range(len(self))]

    # -- I/O -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the store to ``directory`` (created if needed)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {
            "joints": self.joints,
            "channels": self.channels,
            "fps": self.fps,
            "arrays": sorted(self.arrays),
            "extra": self.extra,
        }
        (d / META).write_text(json.dumps(meta, indent=1, ensure_ascii=False))
        with (d / INDEX).open("w", encoding="utf-8") as fh:
            for entry in self.index:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        np.save(d / "offsets.npy", self.offsets)
        np.save(d / "poses.npy", np.ascontiguousarray(self.poses, dtype=np.float32))
        for name, arr in self.arrays.items():
            np.save(d / f"{name}.npy", arr)
        if self.extra_people is not None:
            np.save(d / "extra_people.npy", self.extra_people[0])
            np.save(d / "extra_people_frame.npy", self.extra_people[1])

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False) -> SplitStore:
        """Read a store written by :meth:`save`; ``mmap`` memory-maps the arrays."""
        d = Path(directory)
        mode = "r" if mmap else None
        try:
            meta = json.loads((d / META).read_text())
            with (d / INDEX).open(encoding="utf-8") as fh:
                index = [json.loads(line) for line in fh if line.strip()]
            offsets = np.load(d / "offsets.npy")
            poses = np.load(d / "poses.npy", mmap_mode=mode)
            arrays = {k: np.load(d / f"{k}.npy", mmap_mode=mode) for k in meta.get("arrays", [])}
            people = None
            if (d / "extra_people.npy").exists():
                people = (np.load(d / "extra_people.npy"), np.load(d / "extra_people_frame.npy"))
        except FileNotFoundError as exc:
            raise StoreError(f"{d}: incomplete array store, missing {Path(exc.filename).name}") from exc
        except (json.JSONDecodeError, ValueError) as exc:
            raise StoreError(f"{d}: corrupt array store: {exc}") from exc
        try:
            return cls(
                poses,
                offsets,
                index,
                meta["joints"],
                meta["channels"],
                meta.get("fps", 25.0),
                arrays,
                meta.get("extra", {}),
                people,
            )
        except StoreError as exc:
            raise StoreError(f"{d}: {exc}") from exc
