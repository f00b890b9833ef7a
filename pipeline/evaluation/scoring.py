"""Scoring of generated sign poses against the references: the systems and metrics of the paper's
Tables 1-3 (§5), with every reading the paper leaves open computed and labelled.

Systems, each producing one pose sequence per sentence (:func:`evaluate`):

- ``gt``: the reference sequence itself;
- ``mean``: the mean train frame repeated for the mean train length (rounded);
- ``random_per_sentence``: a train sequence drawn uniformly *per sentence* (``numpy`` generator
  seeded with ``seed`` and the split): a real signing of (almost always) another sentence;
- ``random_single``: *one* train sequence, drawn once per split, standing in for every sentence.
  The paper's "Random" does not say which of the two it is;
- ``student``: a generator ``texts -> sequences`` (the trained student);
- ``pt_<variant>`` / ``nslpg_<variant>``: the baselines' generators (Progressive Transformers,
  NSLP-G; :mod:`pipeline.baselines`). A generated system may be an oracle-length one
  (:class:`GeneratedSystem`, ``oracle_length``): it is given the reference lengths (NSLP-G decodes
  the true number of frames), so its DurACC is 1 and its length error 0 by construction; its
  metrics carry ``oracle_length: 1``.

FGD (Eq. 12) on the FGD encoder's features of 34-frame windows, in two readings:

- ``fgd_pooled``: NSLP-G's ``eval_fgd`` reading: one Gaussian over all windows of all reference
  sequences of the split, one over all windows of all system sequences (windows cut with the
  encoder's ``stride``, :func:`pipeline.models.fgd_encoder.windows`; a sequence shorter than a
  window gives one window padded by repeating its last frame);
- ``fgd_paired``: each system sequence against *its own* reference: the Fréchet distance between
  the stride-1 windows of the two sequences, averaged over sentences. A sequence shorter than
  ``window + 1`` frames is padded by repeating its last frame to ``window + 1`` frames (two windows:
  the distance then reduces to the squared distance of the feature means plus a rank-1 term).

``_x10`` keys are the paper's FGD† (FGD x 10). Table 2 in both forms and both readings:

- ``fgd_{pooled,paired}_len_<lo>_<hi>``: over the sentences whose *reference* length lies in
  ``[lo, hi)`` (groups of sentences);
- ``fgd_{pooled,paired}_seg_<lo>_<hi>``: over the frames ``[lo, hi)`` of every sequence (time
  segments within each sequence); a sentence whose reference or system sequence has no frame in the
  segment is left out of that segment;
- ``fgd_pooled_first_<n>``: over the first ``n`` frames of every reference and system sequence.

A subset with fewer than 2 windows (pooled) or no sentence (paired) has no value: its key is left
out and ``skipped`` counts it. Other metrics per split and system (:meth:`Scorer.score_split`):
``bleu1..bleu4``, ``rouge`` of the back-translations (beam search, the back-translator's saved
setting), ``gloss_wer`` of its CTC recognition head against the reference glosses (when it has
one and the corpus has glosses), ``dtw_mje`` (DTW path and mean joint error over the 50 manual
joints, lifted [0, 1] units) and ``dtw_mje_<part>`` (each part's mean joint error along the same
path), ``duracc`` (``|T_hat - T| < margin`` frames), ``len_mae`` (frames) and ``realism.<part>``:
``bone_ratio`` and ``motion_ratio`` of the system to the references
(:func:`pipeline.evaluation.metrics.realism_ratios`, in body-centred units when the lift map is
given).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pipeline.config import ParamsError, param
from pipeline.data.skeleton import PARTS, part_bones, part_slices
from pipeline.data.store import SplitStore, StoreError
from pipeline.data.transform import UnitRange
from pipeline.evaluation.backtranslation import recognise, score, translate
from pipeline.evaluation.metrics import MetricError, dtw_mje_parts, duration_accuracy, fgd, realism_ratios
from pipeline.evaluation.text_metrics import word_error_rate
from pipeline.models.backtranslator import BackTranslator, GlossVocab, Vocab
from pipeline.models.fgd_encoder import FGDEncoder, windows

log = logging.getLogger(__name__)

Generator = Callable[..., list[np.ndarray]]  # texts (and, oracle-length, the reference lengths) -> sequences
FIXED_SYSTEMS = ("gt", "mean", "random_per_sentence", "random_single", "student")
BASELINE_RE = re.compile(r"^(pt|nslpg)_([a-z0-9]+(?:_[a-z0-9]+)*)$")  # pt_<variant>, nslpg_<variant>
MANUAL = slice(0, PARTS["right_hand"].stop)  # the 50 manual joints: DTW alignment


def baseline_of(system: str) -> tuple[str, str] | None:
    """``("pt" | "nslpg", variant)`` of a baseline system name (``pt_fpgn``, ``nslpg_gs_ft``), else None."""
    m = BASELINE_RE.match(system)
    return (m.group(1), m.group(2)) if m else None


def check_systems(systems: Sequence[str], key: str) -> None:
    """Raise :class:`ParamsError` naming ``key`` for an unknown or repeated system name."""
    for i, name in enumerate(systems):
        if name not in FIXED_SYSTEMS and baseline_of(str(name)) is None:
            raise ParamsError(
                f"params.yaml: {key}[{i}]={name!r} is invalid; expected one of "
                f"{', '.join(FIXED_SYSTEMS)}, pt_<variant>, nslpg_<variant>"
            )
    if len(set(systems)) != len(systems):
        raise ParamsError(f"params.yaml: {key}={list(systems)!r} names a system twice")


@dataclass(frozen=True)
class GeneratedSystem:
    """A system a model generates: ``generate(texts)`` -> one ``[T, J, 3]`` sequence per text or,
    with ``oracle_length``, ``generate(texts, lengths)`` given the reference lengths."""

    generate: Generator
    oracle_length: bool = False
    max_frames: int | None = None  # its longest output (None: unbounded, e.g. oracle length)


@dataclass(frozen=True)
class EvaluateConfig:
    """The ``evaluate`` params section."""

    splits: list[Literal["dev", "test"]]
    systems: list[str]  # FIXED_SYSTEMS, pt_<variant>, nslpg_<variant> (models/pt|nslpg/<variant>)
    margin: float = param(gt=0)  # DurACC: |T_hat - T| < margin frames (1 s at 25 fps)
    intervals: list[list[int]] = param()  # [lo, hi) frames: reference lengths and time segments (Table 2)
    prefixes: list[int] = param()  # FGD over the first N frames of every sequence (Table 2)
    batch_size: int = param(gt=0)  # sentences per student / back-translator batch
    cpu_threads: int = param(0, ge=0)  # torch CPU threads (0 = torch default)
    figures: int = param(3, ge=0)  # Fig. 3: dev sentences drawn side by side (0 = none)
    figure_frames: int = param(6, gt=0)  # skeletons per row of that strip
    figure_systems: list[str] = param(["pt_fpgn", "nslpg_base_ft", "student"])  # Fig. 3 rows after GT
    compare_student: str | None = None  # optional 2nd student dir as a last row of Fig. 3
    compare_label: str = "w/o KD"  # its row label

    def __post_init__(self) -> None:
        for key in ("splits", "systems"):
            if not getattr(self, key):
                raise ParamsError(f"params.yaml: evaluate.{key} is empty")
        check_systems(self.systems, "evaluate.systems")
        check_systems(self.figure_systems, "evaluate.figure_systems")
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


class WindowFeatures:
    """FGD features of one list of sequences, computed once per (span, stride) and reused."""

    def __init__(self, encoder: FGDEncoder, seqs: Sequence[np.ndarray]) -> None:
        self.encoder, self.seqs = encoder, seqs
        self._cache: dict[tuple[int, int, int, bool], np.ndarray] = {}
        # each sequence's first index holding the same array (Mean/Random-single repeat one sequence)
        first: dict[int, int] = {}
        self._first = [first.setdefault(id(s), k) for k, s in enumerate(seqs)]

    def _embed(self, keys: list[tuple[int, int, int, bool]]) -> None:
        """Fill the cache for ``(sequence id, lo, hi, paired)`` keys in one encoder pass."""
        c = self.encoder.config
        todo = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if not todo:
            return
        wins = []
        for i, lo, hi, paired in todo:
            span = np.clip(np.asarray(self.seqs[i][lo:hi], np.float32), 0.0, 1.0).reshape(-1, c.n_features)
            if paired and len(span) < c.window + 1:  # at least two stride-1 windows
                span = np.concatenate([span, np.repeat(span[-1:], c.window + 1 - len(span), axis=0)])
            wins.append(windows(span, c.window, 1 if paired else c.stride))
        z = self.encoder.embed(torch.from_numpy(np.concatenate(wins))).double().numpy()
        for k, part in zip(todo, np.split(z, np.cumsum([len(w) for w in wins])[:-1]), strict=True):
            self._cache[k] = part

    def _ids(self, idx: Sequence[int], lo: int, hi: int | None) -> list[tuple[int, int, int]]:
        top = [len(self.seqs[i]) if hi is None else min(hi, len(self.seqs[i])) for i in idx]
        return [(self._first[i], lo, t) for i, t in zip(idx, top, strict=True) if t > lo]

    def pooled(self, idx: Sequence[int], lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Windows of ``seqs[i][lo:hi]`` for ``i`` in ``idx`` (empty spans skipped), stacked."""
        keys = [(*k, False) for k in self._ids(idx, lo, hi)]
        self._embed(keys)
        return np.concatenate([self._cache[k] for k in keys]) if keys else np.zeros((0, 1))

    def paired(self, i: int, lo: int = 0, hi: int | None = None) -> np.ndarray | None:
        """Stride-1 windows of ``seqs[i][lo:hi]`` (None when the span is empty)."""
        keys = [(*k, True) for k in self._ids([i], lo, hi)]
        self._embed(keys)
        return self._cache[keys[0]] if keys else None

    def prefetch_paired(self, lo: int = 0, hi: int | None = None) -> None:
        """Embed the stride-1 windows of every sequence's ``[lo:hi]`` in one pass."""
        self._embed([(*k, True) for k in self._ids(range(len(self.seqs)), lo, hi)])


def _pooled_fgd(real: np.ndarray, gen: np.ndarray) -> float | None:
    return fgd(real, gen) if len(real) >= 2 and len(gen) >= 2 else None


@dataclass
class Scorer:
    """Frozen evaluation models plus settings; :meth:`score_split` scores systems on one split."""

    fgd_encoder: FGDEncoder
    backtranslator: BackTranslator
    vocab: Vocab
    glosses: GlossVocab | None = None  # the back-translator's CTC gloss vocabulary (None: no head)
    margin: float = 25.0
    intervals: list[list[int]] = field(default_factory=lambda: [[0, 50], [50, 100], [100, 150], [150, 200]])
    prefixes: list[int] = field(default_factory=lambda: [20, 40, 60, 80])
    batch_size: int = 32
    unit: UnitRange | None = None  # lifted [0, 1] -> body-centred units, for the realism statistics

    @classmethod
    def from_config(
        cls,
        fgd_encoder: FGDEncoder,
        backtranslator: BackTranslator,
        vocab: Vocab,
        cfg: EvaluateConfig,
        glosses: GlossVocab | None = None,
        unit: UnitRange | None = None,
    ) -> Scorer:
        """The scorer of the ``evaluate`` params section ``cfg`` with these evaluation models."""
        intervals, prefixes = [list(iv) for iv in cfg.intervals], list(cfg.prefixes)
        return cls(
            fgd_encoder, backtranslator, vocab, glosses, cfg.margin, intervals, prefixes, cfg.batch_size, unit
        )

    def _check(self, refs: list[np.ndarray], name: str, gens: list[np.ndarray], where: str) -> None:
        if len(gens) != len(refs):
            raise MetricError(f"{where}: system {name!r} has {len(gens)} sequences for {len(refs)} sentences")
        for i, g in enumerate(gens):
            if g.ndim != 3 or g.shape[1:] != refs[i].shape[1:] or len(g) == 0:
                raise MetricError(
                    f"{where}: system {name!r} sentence {i}: sequence of shape {g.shape}, "
                    f"expected [T>0, {refs[i].shape[1]}, {refs[i].shape[2]}]"
                )
            if not np.isfinite(g).all():
                raise MetricError(f"{where}: system {name!r} sentence {i} has non-finite values")

    def fgd_readings(
        self, ref: WindowFeatures, gen: WindowFeatures, n: int, ref_len: np.ndarray
    ) -> dict[str, float]:
        """Both FGD readings of ``n`` sentences overall and over the Table-2 spans (``ref_len``: the
        reference lengths); ``skipped`` counts the spans without a value."""
        every = range(n)
        for f in (ref, gen):
            f.prefetch_paired()
        paired = [fgd(ref.paired(i), gen.paired(i)) for i in every]
        m: dict[str, float] = {"fgd_pooled": fgd(ref.pooled(every), gen.pooled(every))}
        m["fgd_paired"] = float(np.mean(paired))
        out: dict[str, float | None] = {}
        for lo, hi in self.intervals:
            idx = np.flatnonzero((ref_len >= lo) & (ref_len < hi))
            out[f"fgd_pooled_len_{lo}_{hi}"] = _pooled_fgd(ref.pooled(idx), gen.pooled(idx))
            out[f"fgd_paired_len_{lo}_{hi}"] = float(np.mean([paired[i] for i in idx])) if len(idx) else None
            out[f"fgd_pooled_seg_{lo}_{hi}"] = _pooled_fgd(
                ref.pooled(every, lo, hi), gen.pooled(every, lo, hi)
            )
            for f in (ref, gen):
                f.prefetch_paired(lo, hi)
            pairs = [(ref.paired(i, lo, hi), gen.paired(i, lo, hi)) for i in every]
            seg = [fgd(r, g) for r, g in pairs if r is not None and g is not None]
            out[f"fgd_paired_seg_{lo}_{hi}"] = float(np.mean(seg)) if seg else None
        for k in self.prefixes:
            out[f"fgd_pooled_first_{k}"] = _pooled_fgd(ref.pooled(every, 0, k), gen.pooled(every, 0, k))
        m |= {k: v for k, v in out.items() if v is not None}
        m["skipped"] = sum(v is None for v in out.values())
        return m

    def _body(self, seqs: list[np.ndarray]) -> list[np.ndarray]:
        if self.unit is None:
            return seqs
        return [self.unit.inverse(np.asarray(s, np.float64)) for s in seqs]

    def score_split(
        self,
        refs: list[np.ndarray],
        texts: list[str],
        systems: dict[str, list[np.ndarray]],
        where: str = "",
        glosses: list[str | None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Metrics ``{system: {metric: value}}`` of each system's sequences against ``refs``/``texts``
        (and the reference ``glosses`` for the gloss WER)."""
        ref_len = np.array([len(r) for r in refs])
        n_joints = refs[0].shape[1]
        parts, bones = part_slices(n_joints), part_bones(n_joints)
        ref_feats = WindowFeatures(self.fgd_encoder, refs)
        ref_body = self._body(refs)
        can_recognise = self.glosses is not None and glosses is not None and all(glosses)
        if not can_recognise:
            why = (
                "the back-translator has no gloss head" if self.glosses is None else "references lack glosses"
            )
            log.warning("%s: no gloss WER (%s)", where, why)
        out: dict[str, dict[str, Any]] = {}
        for name, gens in systems.items():
            self._check(refs, name, gens, where)
            t0 = time.perf_counter()
            gen_len = np.array([len(g) for g in gens])
            gen_feats = WindowFeatures(self.fgd_encoder, gens)
            m: dict[str, Any] = self.fgd_readings(ref_feats, gen_feats, len(refs), ref_len)
            m["fgd_pooled_x10"], m["fgd_paired_x10"] = 10.0 * m["fgd_pooled"], 10.0 * m["fgd_paired"]
            hyps = translate(self.backtranslator, self.vocab, gens, self.batch_size)
            m.update(score(hyps, texts))
            if can_recognise:
                recognised = recognise(self.backtranslator, self.glosses, gens, self.batch_size)
                m["gloss_wer"] = word_error_rate(recognised, [str(g) for g in glosses or []])
            dtw = dtw_mje_parts(gens, refs, parts, align=MANUAL if n_joints > MANUAL.stop else None)
            m["dtw_mje"] = float(dtw.pop("all").mean())
            m |= {f"dtw_mje_{p}": float(v.mean()) for p, v in dtw.items()}
            m["duracc"] = duration_accuracy(gen_len, ref_len, self.margin)
            m["len_mae"] = float(np.abs(gen_len - ref_len).mean())
            m["realism"] = realism_ratios(self._body(gens), ref_body, bones, parts)
            out[name] = m
            log.info(
                "%s %s: FGD pooled %.4f paired %.4f, BLEU-4 %.2f, DTW-MJE %.4f (%.1f s)",
                where, name, m["fgd_pooled"], m["fgd_paired"], m["bleu4"], m["dtw_mje"],
                time.perf_counter() - t0,
            )  # fmt: skip
        return out


def baselines(train: SplitStore, n: int, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """``mean``: mean train frame x mean train length (n copies); ``random_per_sentence``: n train
    sequences drawn independently; ``random_single``: one train sequence drawn for all n."""
    if len(train) == 0:
        raise StoreError("train split is empty: no Mean/Random baselines")
    poses = np.asarray(train.poses, np.float32)
    mean_len = max(1, int(round(float(train.lengths.mean()))))
    mean_seq = np.repeat(poses.mean(axis=0, keepdims=True), mean_len, axis=0)
    pick = rng.integers(0, len(train), size=n)
    single = np.asarray(train.sequence(int(rng.integers(0, len(train)))), np.float32)
    return {
        "mean": [mean_seq] * n,
        "random_per_sentence": [np.asarray(train.sequence(int(i)), np.float32) for i in pick],
        "random_single": [single] * n,
    }


def references(store: SplitStore, where: str | Path) -> tuple[list[np.ndarray], list[str], list[str | None]]:
    """Reference sequences ``[T, J, 3]``, texts and glosses (None where the index has none) of a split."""
    if store.channels != ["x", "y", "z"]:
        raise StoreError(f"{where}: channels {store.channels}, expected ['x', 'y', 'z']")
    refs, texts, glosses = [], [], []
    for i, entry in enumerate(store.index):
        name, text = entry.get("name", f"#{i}"), entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has no text: {text!r}")
        seq = np.asarray(store.sequence(i), np.float32)
        if len(seq) == 0 or not np.isfinite(seq).all():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) is empty or has non-finite values")
        gloss = entry.get("gloss")
        refs.append(seq)
        texts.append(text.strip())
        glosses.append(gloss.strip() if isinstance(gloss, str) and gloss.strip() else None)
    if not refs:
        raise StoreError(f"{where}: no sequences")
    return refs, texts, glosses


def evaluate(
    stores: dict[str, SplitStore],
    scorer: Scorer,
    cfg: EvaluateConfig,
    seed: int,
    generators: Mapping[str, Generator | GeneratedSystem] | None = None,
    where: Path = Path(),
    keep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Nested metrics ``{split: {system: {metric: value}, "n": N}}`` for the splits/systems of ``cfg``.

    ``generators`` maps each generated system of ``cfg.systems`` (``student``, ``pt_*``,
    ``nslpg_*``) to a :class:`GeneratedSystem` or a plain ``texts -> sequences`` callable; an
    oracle-length system is given the reference lengths and its metrics get ``oracle_length: 1``,
    every generated system its ``generate_seconds``, one with a ``max_frames`` that and
    ``refs_over_max_frames`` (references it cannot reach in length, also logged). With ``keep`` (a dict),
    ``keep[split] = (refs, texts, systems)`` holds the scored sequences.
    """
    result: dict[str, Any] = {}
    for k, split in enumerate(cfg.splits):
        refs, texts, glosses = references(stores[split], where / split)
        systems: dict[str, list[np.ndarray]] = {}
        extra: dict[str, dict[str, Any]] = {}
        base = baselines(stores["train"], len(refs), np.random.default_rng([int(seed), k]))
        t0 = time.perf_counter()
        for name in cfg.systems:
            if name == "gt":
                systems[name] = refs
            elif name in base:
                systems[name] = base[name]
            else:
                system = (generators or {}).get(name)
                if system is None:
                    raise ValueError(f"evaluate.systems includes {name!r} but no {name} generator was given")
                if not isinstance(system, GeneratedSystem):
                    system = GeneratedSystem(system)
                t1 = time.perf_counter()
                if system.oracle_length:
                    seqs = system.generate(texts, [len(r) for r in refs])
                else:
                    seqs = system.generate(texts)
                systems[name] = [np.asarray(g, np.float32) for g in seqs]
                extra[name] = {"generate_seconds": round(time.perf_counter() - t1, 2)}
                if system.oracle_length:
                    extra[name]["oracle_length"] = 1
                if system.max_frames is not None:
                    over = sum(len(r) > system.max_frames for r in refs)
                    extra[name] |= {"max_frames": system.max_frames, "refs_over_max_frames": int(over)}
                    if over:
                        log.warning(
                            "%s %s: %d of %d references are longer than its maximum output (%d frames)",
                            split,
                            name,
                            over,
                            len(refs),
                            system.max_frames,
                        )
        gen_seconds = time.perf_counter() - t0
        if keep is not None:
            keep[split] = (refs, texts, systems)
        scored = scorer.score_split(refs, texts, systems, where=str(where / split), glosses=glosses)
        for name, values in extra.items():
            scored[name] |= values
        result[split] = {"n": len(refs), **scored, "generate_seconds": round(gen_seconds, 2)}
    return result
