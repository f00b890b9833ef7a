"""Sentence/pose-sequence pairs of a lifted split for sequence models: checks, padding, masks.

Used by ``train_student`` and ``train_backtranslator`` (and usable by evaluation code):
:func:`load_pairs` reads a :class:`pipeline.data.store.SplitStore` (channels ``x, y, z`` in [0, 1])
into ``(text, frames)`` pairs (plus each sequence's gloss annotation, ``""`` when the index has
none), checking the text and values and applying the ``T_max`` policy (:func:`fit_max_frames`);
:func:`pad_sequences` / :func:`length_mask` build fixed-length batches; :class:`PairCollate`
tokenises the texts and pads the frames of a batch to ``T_max``; :class:`StateCollate` does the
same with cached text-encoder states (training with a frozen encoder).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.data.store import SplitStore, StoreError

log = logging.getLogger(__name__)

ON_LONG = ("raise", "truncate")


@dataclass
class Pairs:
    """Texts and ``[T_i, J*3]`` float32 frames of one split, after the checks of :func:`load_pairs`;
    ``glosses``: the index entries' ``gloss`` (white space normalised, ``""`` when absent)."""

    names: list[str]
    texts: list[str]
    frames: list[np.ndarray]
    n_joints: int
    clipped: int = 0  # values outside [0, 1] clipped
    truncated: int = 0  # sequences cut to T_max
    glosses: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(f) for f in self.frames], dtype=np.int64)


def load_pairs(
    store: SplitStore, where: str | Path, max_frames: int | None = None, on_long: str = "raise"
) -> Pairs:
    """Check a lifted split and return its pairs; frames flattened to ``[T, J*3]`` and clipped to [0, 1].

    Raises :class:`StoreError` naming ``where`` and the sequence for a missing/empty text, an empty
    sequence, non-finite values or wrong channels. Sequences longer than ``max_frames`` raise
    (``on_long="raise"``) or are truncated and counted (``"truncate"``, logged as a warning).
    """
    if on_long not in ON_LONG:
        raise ValueError(f"on_long={on_long!r} is invalid; expected one of {ON_LONG}")
    if store.channels != ["x", "y", "z"]:
        raise StoreError(f"{where}: channels {store.channels}, expected ['x', 'y', 'z']")
    names, texts, frames, glosses = [], [], [], []
    clipped = truncated = 0
    for i, entry in enumerate(store.index):
        name = str(entry.get("name", f"#{i}"))
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has no text: {text!r}")
        seq = np.asarray(store.sequence(i), dtype=np.float32)
        if len(seq) == 0:
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has no frames")
        if not np.isfinite(seq).all():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has non-finite values")
        if max_frames is not None and len(seq) > max_frames:
            if on_long == "raise":
                raise StoreError(
                    f"{where}: sequence {name!r} (row {i}) has {len(seq)} frames > student.max_frames="
                    f"{max_frames} (set student.on_long=truncate to cut it)"
                )
            truncated += 1
            seq = seq[:max_frames]
        clipped += int(((seq < 0) | (seq > 1)).sum())
        names.append(name)
        texts.append(text.strip())
        gloss = entry.get("gloss")
        glosses.append(" ".join(gloss.split()) if isinstance(gloss, str) else "")
        frames.append(np.clip(seq, 0.0, 1.0).reshape(len(seq), -1))
    if truncated:
        log.warning("%s: %d sequence(s) longer than T_max=%s truncated", where, truncated, max_frames)
    return Pairs(names, texts, frames, len(store.joints), clipped, truncated, glosses)


def fit_max_frames(max_frames: int | None, train: SplitStore) -> int:
    """``T_max``: ``max_frames`` when set, else the longest train sequence."""
    if max_frames is not None:
        if not isinstance(max_frames, int) or isinstance(max_frames, bool) or max_frames <= 0:
            raise ValueError(f"student.max_frames={max_frames!r} is invalid; expected null or an int > 0")
        return max_frames
    if len(train) == 0:
        raise StoreError("train split is empty: cannot derive T_max")
    return int(train.lengths.max())


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Bool ``[B, max_len]``: True on real frames (``t < lengths[b]``)."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def pad_sequences(
    seqs: list[np.ndarray] | list[torch.Tensor], max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``[T_i, ...]`` arrays to ``[B, max_len, ...]`` (default: longest) -> ``(padded, lengths)``."""
    tensors = [torch.as_tensor(np.asarray(s, dtype=np.float32)) for s in seqs]
    lengths = torch.tensor([len(t) for t in tensors], dtype=torch.long)
    longest = int(lengths.max()) if len(tensors) else 0
    max_len = longest if max_len is None else max_len
    if longest > max_len:
        raise ValueError(f"pad_sequences: a sequence has {longest} frames > max_len={max_len}")
    out = torch.zeros((len(tensors), max_len, *tensors[0].shape[1:]) if tensors else (0, max_len))
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out, lengths


class PairDataset(Dataset):
    """Index -> ``(text, frames [T, J*3])`` of :class:`Pairs`."""

    def __init__(self, pairs: Pairs) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[str, np.ndarray]:
        return self.pairs.texts[i], self.pairs.frames[i]


class PairCollate:
    """Collate ``(text, frames)`` items: tokenised texts plus frames padded to ``max_frames``.

    Returns ``{"input_ids", "attention_mask", "poses" [B, T_max, F], "lengths" [B]}``.
    """

    def __init__(self, tokenizer: Any, max_frames: int) -> None:
        self.tokenizer = tokenizer
        self.max_frames = max_frames

    def __call__(self, batch: list[tuple[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        texts = [t for t, _ in batch]
        poses, lengths = pad_sequences([f for _, f in batch], self.max_frames)
        return {**tokenize(self.tokenizer, texts), "poses": poses, "lengths": lengths}


class StateCollate:
    """Collate ``(text, frames)`` items with cached text-encoder states instead of token ids.

    ``cache`` maps each text to its encoder states ``[U_i, d]`` (see
    :func:`pipeline.models.student.encode_texts`). Returns ``{"states" [B, U, d] (zero padded),
    "attention_mask" [B, U], "poses" [B, T_max, F], "lengths" [B]}``.
    """

    def __init__(self, cache: dict[str, torch.Tensor], max_frames: int) -> None:
        self.cache = cache
        self.max_frames = max_frames

    def __call__(self, batch: list[tuple[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        missing = [t for t, _ in batch if t not in self.cache]
        if missing:
            raise KeyError(f"no cached encoder states for text {missing[0][:80]!r}")
        states = [self.cache[t] for t, _ in batch]
        n_tokens = torch.tensor([len(x) for x in states])
        padded = torch.nn.utils.rnn.pad_sequence(states, batch_first=True)
        mask = (torch.arange(padded.shape[1])[None, :] < n_tokens[:, None]).long()
        poses, lengths = pad_sequences([f for _, f in batch], self.max_frames)
        return {"states": padded, "attention_mask": mask, "poses": poses, "lengths": lengths}


def tokenize(tokenizer: Any, texts: list[str]) -> dict[str, torch.Tensor]:
    """Tokenise ``texts`` with padding and no silent truncation (too long raises naming the text)."""
    enc = tokenizer(texts, padding=True, truncation=False, return_tensors="pt")
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit < 100_000 and enc["input_ids"].shape[1] > limit:
        lens = enc["attention_mask"].sum(1)
        i = int(lens.argmax())
        raise ValueError(f"text has {int(lens[i])} tokens > the encoder's limit {limit}: {texts[i][:80]!r}")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
