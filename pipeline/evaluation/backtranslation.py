"""Back-translation metrics (§5.1): decode poses to text with the back-translator (beam search with
the saved beam size and length penalty), score BLEU/ROUGE; recognise glosses with its CTC head
(scored with :func:`pipeline.evaluation.text_metrics.word_error_rate`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from pipeline.data.sequences import pad_sequences
from pipeline.evaluation.text_metrics import bleu_scores, rouge_l
from pipeline.models.backtranslator import BackTranslator, GlossVocab, Vocab, words


def _batches(
    frames: list[np.ndarray], batch_size: int, device: str
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """``(indices, poses, lengths)`` batches of similar lengths (less padding), frames clipped to [0, 1]."""
    order = np.argsort([len(f) for f in frames])
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        batch = [np.clip(np.asarray(frames[i], np.float32).reshape(len(frames[i]), -1), 0, 1) for i in idx]
        poses, lengths = pad_sequences(batch)
        yield idx, poses.to(device), lengths.to(device)


@torch.no_grad()
def translate(
    model: BackTranslator,
    vocab: Vocab,
    frames: list[np.ndarray],
    batch_size: int = 64,
    device: str = "cpu",
    beam_size: int | None = None,
    length_penalty: float | None = None,
) -> list[str]:
    """Back-translation of ``frames`` (each ``[T, J*3]`` or ``[T, J, 3]`` in [0, 1]) by beam search;
    ``beam_size`` / ``length_penalty`` ``None`` = the model config's setting (1 = greedy)."""
    model.eval()
    texts: dict[int, str] = {}
    for idx, poses, lengths in _batches(frames, batch_size, device):
        for i, ids in zip(idx, model.generate(poses, lengths, beam_size, length_penalty), strict=True):
            texts[int(i)] = vocab.decode(ids)
    return [texts[i] for i in range(len(frames))]


@torch.no_grad()
def recognise(
    model: BackTranslator,
    glosses: GlossVocab | None,
    frames: list[np.ndarray],
    batch_size: int = 64,
    device: str = "cpu",
) -> list[str]:
    """Gloss strings of ``frames`` by CTC best-path decoding of the gloss head (``ValueError`` when
    the model has none, i.e. it was trained with ``backtranslator.gloss_weight: 0``)."""
    size = model.config.gloss_vocab_size
    if glosses is None or size == 0:
        raise ValueError(
            "gloss recognition is unavailable: the back-translator was trained without a gloss head "
            "(backtranslator.gloss_weight: 0) or its gloss vocabulary is missing"
        )
    if len(glosses) != size:
        raise ValueError(f"gloss vocabulary has {len(glosses)} entries, the gloss head {size}")
    model.eval()
    out: dict[int, str] = {}
    for idx, poses, lengths in _batches(frames, batch_size, device):
        for i, ids in zip(idx, model.recognise(poses, lengths), strict=True):
            out[int(i)] = glosses.decode(ids)
    return [out[i] for i in range(len(frames))]


def score(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """BLEU-1..4 and ROUGE-L (0..100) of ``hyps`` against ``refs`` (references lower-cased like the vocab)."""
    refs = [" ".join(words(r)) for r in refs]
    return {**bleu_scores(hyps, refs), "rouge": rouge_l(hyps, refs)}
