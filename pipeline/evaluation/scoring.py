"""Scoring of generated sign poses against the references: the systems and metrics of the paper's
Tables 1-3 (§5), in lifted [0, 1] units.

Systems, each producing one pose sequence per sentence (:func:`evaluate`):

- ``gt``: the reference sequence itself;
- ``mean``: the mean train frame repeated for the mean train length (rounded);
- ``random``: a train sequence drawn uniformly per sentence (``numpy`` generator seeded with
  ``seed`` and the split), i.e. a real signing of (almost always) another sentence;
- ``student``: a generator ``texts -> sequences`` (the trained student).

Metrics per split and system (:meth:`Scorer.score_split`):

- ``fgd`` (and ``fgd_x10``, the paper's FGD†): Eq. 12 between the FGD encoder's features of all
  reference windows and all windows of the system's sequences
  (:func:`pipeline.evaluation.metrics.windows`: ``window`` = 34 frames with the encoder's
  ``stride``; a sequence or span shorter than 34 frames gives one window padded by repeating its
  last frame);
- ``bleu1..bleu4``, ``rouge``: back-translation of the system's sequences vs the reference
  sentences (:mod:`pipeline.evaluation.backtranslation`: cumulative corpus BLEU-n,
  sentence-averaged ROUGE-L F1, 0..100);
- ``dtw_mje``: mean over sentences of :func:`pipeline.evaluation.metrics.dtw_mje` against the
  reference, in the lifted **[0, 1]** units (the store's coordinates; the inverse of
  ``data/lifted/transform.json`` maps them to lifted 3D units per channel);
- ``duracc``: share of sentences with ``|T_hat - T| < evaluate.margin`` frames; ``len_mae``: mean
  absolute length error in frames;
- ``fgd_len_<lo>_<hi>``: FGD over the sentences whose *reference* length lies in ``[lo, hi)``
  (real = their reference windows, generated = their system windows); ``fgd_first_<n>``: FGD over
  the first ``n`` frames of every reference and every system sequence (a system sequence shorter
  than ``n`` contributes what it has). A subset with fewer than 2 windows on either side has no
  FGD: the key is left out and ``skipped`` counts it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pipeline.config import ParamsError, param
from pipeline.data.store import SplitStore, StoreError
from pipeline.evaluation.backtranslation import score, translate
from pipeline.evaluation.metrics import MetricError, dtw_mje, duration_accuracy, fgd, windows
from pipeline.models.backtranslator import BackTranslator, Vocab
from pipeline.models.fgd_encoder import FGDEncoder

log = logging.getLogger(__name__)

Generator = Callable[[list[str]], list[np.ndarray]]


@dataclass(frozen=True)
class EvaluateConfig:
    """The ``evaluate`` params section."""

    splits: list[Literal["dev", "test"]]
    systems: list[Literal["gt", "mean", "random", "student"]]
    margin: float = param(gt=0)  # DurACC: |T_hat - T| < margin frames (1 s at 25 fps)
    intervals: list[list[int]] = param()  # reference lengths [lo, hi) for Table 2's FGD
    prefixes: list[int] = param()  # FGD over the first N frames of every sequence (Table 2)
    batch_size: int = param(gt=0)  # sentences per student / back-translator batch
    cpu_threads: int = param(0, ge=0)  # torch CPU threads (0 = torch default)
    figures: int = param(3, ge=0)  # Fig. 3: dev sentences drawn side by side (0 = none)
    figure_frames: int = param(6, gt=0)  # skeletons per row of that strip
    compare_student: str | None = None  # optional 2nd student dir as a 3rd row of Fig. 3
    compare_label: str = "w/o KD"  # its row label

    def __post_init__(self) -> None:
        for key in ("splits", "systems"):
            if not getattr(self, key):
                raise ParamsError(f"params.yaml: evaluate.{key} is empty")
        for iv in self.intervals:
            if not (len(iv) == 2 and 0 <= iv[0] < iv[1]):
                raise ParamsError(
                    f"params.yaml: evaluate.intervals entry {iv!r}; expected [lo, hi] with 0 <= lo < hi"
                )
        bad = [n for n in self.prefixes if n <= 0]
        if bad:
            raise ParamsError(
                f"params.yaml: evaluate.prefixes entry {bad[0]!r}; expected a number of frames > 0"
            )

    @property
    def length_split(self) -> str:
        """The split of the FGD-by-length plot and Figure 4: test, else the last one evaluated."""
        return "test" if "test" in self.splits else self.splits[-1]


@dataclass
class Scorer:
    """Frozen evaluation models plus settings; :meth:`score_split` scores systems on one split."""

    fgd_encoder: FGDEncoder
    backtranslator: BackTranslator
    vocab: Vocab
    margin: float = 25.0
    intervals: list[list[int]] = field(default_factory=lambda: [[0, 50], [50, 100], [100, 150], [150, 200]])
    prefixes: list[int] = field(default_factory=lambda: [20, 40, 60, 80])
    batch_size: int = 32

    @classmethod
    def from_config(
        cls, fgd_encoder: FGDEncoder, backtranslator: BackTranslator, vocab: Vocab, cfg: EvaluateConfig
    ) -> Scorer:
        """The scorer of the ``evaluate`` params section ``cfg`` with these evaluation models."""
        intervals, prefixes = [list(iv) for iv in cfg.intervals], list(cfg.prefixes)
        return cls(fgd_encoder, backtranslator, vocab, cfg.margin, intervals, prefixes, cfg.batch_size)

    def features(self, seqs: list[np.ndarray]) -> np.ndarray:
        """FGD features ``[W, latent]`` of all windows of ``seqs`` (``[T, J, 3]`` each, clipped to [0, 1])."""
        c = self.fgd_encoder.config
        wins = []
        for s in seqs:
            flat = np.clip(np.asarray(s, np.float32), 0.0, 1.0).reshape(len(s), -1)
            wins.append(windows(flat, c.window, c.stride))
        x = torch.from_numpy(np.concatenate(wins)) if wins else torch.zeros(0, c.window, c.n_features)
        return self.fgd_encoder.embed(x).double().numpy()

    def _fgd(self, refs: list[np.ndarray], gens: list[np.ndarray]) -> float | None:
        real, gen = self.features(refs), self.features(gens)
        if len(real) < 2 or len(gen) < 2:
            return None
        return fgd(real, gen)

    def score_split(
        self, refs: list[np.ndarray], texts: list[str], systems: dict[str, list[np.ndarray]], where: str = ""
    ) -> dict[str, dict[str, float]]:
        """Metrics ``{system: {metric: value}}`` of each system's sequences against ``refs``/``texts``."""
        ref_len = np.array([len(r) for r in refs])
        out: dict[str, dict[str, float]] = {}
        for name, gens in systems.items():
            if len(gens) != len(refs):
                raise MetricError(
                    f"{where}: system {name!r} has {len(gens)} sequences for {len(refs)} sentences"
                )
            for i, g in enumerate(gens):
                if g.ndim != 3 or g.shape[1:] != refs[i].shape[1:] or len(g) == 0:
                    raise MetricError(
                        f"{where}: system {name!r} sentence {i}: sequence of shape {g.shape}, "
                        f"expected [T>0, {refs[i].shape[1]}, {refs[i].shape[2]}]"
                    )
                if not np.isfinite(g).all():
                    raise MetricError(f"{where}: system {name!r} sentence {i} has non-finite values")
            gen_len = np.array([len(g) for g in gens])
            m: dict[str, float] = {}
            value = self._fgd(refs, gens)
            if value is None:
                raise MetricError(f"{where}: fewer than 2 windows for FGD of {name!r}")
            m["fgd"], m["fgd_x10"] = value, 10.0 * value
            hyps = translate(self.backtranslator, self.vocab, gens, self.batch_size)
            m.update(score(hyps, texts))
            m["dtw_mje"] = float(np.mean([dtw_mje(g, r) for g, r in zip(gens, refs, strict=True)]))
            m["duracc"] = duration_accuracy(gen_len, ref_len, self.margin)
            m["len_mae"] = float(np.abs(gen_len - ref_len).mean())
            skipped = 0
            for lo, hi in self.intervals:
                idx = np.flatnonzero((ref_len >= lo) & (ref_len < hi))
                v = self._fgd([refs[i] for i in idx], [gens[i] for i in idx]) if len(idx) else None
                if v is None:
                    skipped += 1
                else:
                    m[f"fgd_len_{lo}_{hi}"] = v
            for n in self.prefixes:
                v = self._fgd([r[:n] for r in refs], [g[:n] for g in gens])
                if v is None:
                    skipped += 1
                else:
                    m[f"fgd_first_{n}"] = v
            m["skipped"] = skipped
            out[name] = m
            log.info("%s %s: fgd %.4f bleu4 %.2f dtw %.4f", where, name, m["fgd"], m["bleu4"], m["dtw_mje"])
        return out


def baselines(train: SplitStore, n: int, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """``mean``: mean train frame x mean train length (n copies); ``random``: n random train sequences."""
    if len(train) == 0:
        raise StoreError("train split is empty: no Mean/Random baselines")
    poses = np.asarray(train.poses, np.float32)
    mean_len = max(1, int(round(float(train.lengths.mean()))))
    mean_seq = np.repeat(poses.mean(axis=0, keepdims=True), mean_len, axis=0)
    pick = rng.integers(0, len(train), size=n)
    return {
        "mean": [mean_seq] * n,
        "random": [np.asarray(train.sequence(int(i)), np.float32) for i in pick],
    }


def references(store: SplitStore, where: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """Reference sequences ``[T, J, 3]`` and texts of a split, checked."""
    if store.channels != ["x", "y", "z"]:
        raise StoreError(f"{where}: channels {store.channels}, expected ['x', 'y', 'z']")
    refs, texts = [], []
    for i, entry in enumerate(store.index):
        name, text = entry.get("name", f"#{i}"), entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has no text: {text!r}")
        seq = np.asarray(store.sequence(i), np.float32)
        if len(seq) == 0 or not np.isfinite(seq).all():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) is empty or has non-finite values")
        refs.append(seq)
        texts.append(text.strip())
    if not refs:
        raise StoreError(f"{where}: no sequences")
    return refs, texts


def evaluate(
    stores: dict[str, SplitStore],
    scorer: Scorer,
    cfg: EvaluateConfig,
    seed: int,
    generator: Generator | None = None,
    where: Path = Path(),
    keep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Nested metrics ``{split: {system: {metric: value}, "n": N}}`` for the splits/systems of ``cfg``.

    With ``keep`` (a dict), ``keep[split] = (refs, texts, systems)`` holds the scored sequences.
    """
    result: dict[str, Any] = {}
    for k, split in enumerate(cfg.splits):
        refs, texts = references(stores[split], where / split)
        systems: dict[str, list[np.ndarray]] = {}
        base = baselines(stores["train"], len(refs), np.random.default_rng([int(seed), k]))
        t0 = time.perf_counter()
        for name in cfg.systems:
            if name == "gt":
                systems[name] = refs
            elif name in base:
                systems[name] = base[name]
            else:
                if generator is None:
                    raise ValueError("evaluate.systems includes 'student' but no student generator was given")
                systems[name] = [np.asarray(g, np.float32) for g in generator(texts)]
        gen_seconds = time.perf_counter() - t0
        if keep is not None:
            keep[split] = (refs, texts, systems)
        result[split] = {"n": len(refs), **scorer.score_split(refs, texts, systems, where=str(where / split))}
        result[split]["generate_seconds"] = round(gen_seconds, 2)
    return result
