"""Back-translation metrics: decode poses to text with the back-translator, score BLEU/ROUGE (§5.1)."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.data.sequences import pad_sequences
from pipeline.evaluation.metrics import bleu_scores, rouge_l
from pipeline.models.backtranslator import BackTranslator, Vocab, words


@torch.no_grad()
def translate(
    model: BackTranslator, vocab: Vocab, frames: list[np.ndarray], batch_size: int = 64, device: str = "cpu"
) -> list[str]:
    """Greedy back-translation of ``frames`` (each ``[T, J*3]`` or ``[T, J, 3]`` in [0, 1])."""
    model.eval()
    order = np.argsort([len(f) for f in frames])  # similar lengths per batch: less padding
    texts: dict[int, str] = {}
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        batch = [np.clip(np.asarray(frames[i], np.float32).reshape(len(frames[i]), -1), 0, 1) for i in idx]
        poses, lengths = pad_sequences(batch)
        for i, ids in zip(idx, model.greedy(poses.to(device), lengths.to(device)), strict=True):
            texts[int(i)] = vocab.decode(ids)
    return [texts[i] for i in range(len(frames))]


def score(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """BLEU-1..4 and ROUGE-L (0..100) of ``hyps`` against ``refs`` (references lower-cased like the vocab)."""
    refs = [" ".join(words(r)) for r in refs]
    return {**bleu_scores(hyps, refs), "rouge": rouge_l(hyps, refs)}
