"""The back-translator (poses -> German text) of the back-translation metrics (§5.1): a small
Sign Language Transformer (SLT, Camgoz et al. 2020) without gloss supervision.

Tokens are whole words: a text is lower-cased and split on white space (PHOENIX-2014T texts are
already tokenised, punctuation separated), and the vocabulary (:class:`Vocab`) holds the train
texts' words seen at least ``min_count`` times plus ``<pad> <bos> <eos> <unk>``. Word-level
tokens keep decoding short and make BLEU's tokens the model's tokens; a word that never occurs in
train cannot be produced, exactly as in the word-level SLT models the paper's BT builds on.

:class:`BackTranslator` is a Transformer encoder-decoder: frames ``[B, T, J*3]`` in [0, 1] are
standardised per feature (mean/std of the train frames, :meth:`BackTranslator.set_normalisation`,
stored as buffers), go through a strided 1D convolution (``subsample``: halves the frame rate by
default), sinusoidal positions and a Transformer encoder; a Transformer decoder with causal
self-attention predicts the next word. :meth:`BackTranslator.greedy` decodes greedily (batched,
stops at ``<eos>`` or ``max_tokens``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError, check_fields, param
from pipeline.models.io import load_model, save_model
from pipeline.models.layers import sinusoidal_encoding

VOCAB_FILE = "vocab.json"
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


def words(text: str) -> list[str]:
    """Word tokens of a sentence: lower-cased, split on white space."""
    return text.lower().split()


@dataclass
class Vocab:
    """Word <-> id; ids 0..3 are ``<pad> <bos> <eos> <unk>``."""

    itos: list[str]

    def __post_init__(self) -> None:
        if tuple(self.itos[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}, got {self.itos[:4]}")
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: list[str], min_count: int = 1) -> Vocab:
        """Vocabulary of ``texts``' words seen >= ``min_count`` times (most frequent first, ties by word)."""
        counts = Counter(w for t in texts for w in words(t))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, max_tokens: int | None = None) -> list[int]:
        """``<bos> w1 .. wn <eos>`` ids (unknown words -> ``<unk>``), cut to ``max_tokens`` words."""
        ids = [self.stoi.get(w, 3) for w in words(text)]
        if max_tokens is not None:
            ids = ids[:max_tokens]
        return [1, *ids, 2]

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids`` up to the first ``<eos>``; ``<bos>``/``<pad>`` skipped."""
        out = []
        for i in ids:
            if i == 2:
                break
            if i > 2:
                out.append(self.itos[i])
        return " ".join(out)


@dataclass
class BackTranslatorConfig:
    """Hyper-parameters of :class:`BackTranslator`: the params section ``backtranslator``
    (``n_features``, ``vocab_size`` and ``max_tokens`` come from the train split)."""

    n_features: int = param(150, gt=0, derived=True)
    vocab_size: int = param(100, gt=0, derived=True)
    d_model: int = param(128, gt=0)
    heads: int = param(4, gt=0)
    enc_layers: int = param(2, gt=0)
    dec_layers: int = param(2, gt=0)
    ff: int = param(256, gt=0)
    dropout: float = param(0.1, ge=0, lt=1)
    subsample: int = param(2, gt=0)  # frame stride of the input convolution
    max_tokens: int = param(40, gt=0, derived=True)  # longest output (words, without <bos>/<eos>)

    def __post_init__(self) -> None:
        check_fields(self, "backtranslator")
        if self.d_model % self.heads:
            raise ParamsError(f"backtranslator.d_model={self.d_model} not divisible by heads={self.heads}")


class BackTranslator(nn.Module):
    """Pose-to-text Transformer: ``forward(poses, lengths, tokens_in) -> logits``; ``greedy`` decoding."""

    def __init__(self, config: BackTranslatorConfig) -> None:
        super().__init__()
        self.config = c = config
        k = 2 * c.subsample - 1 if c.subsample > 1 else 1
        self.inp = nn.Sequential(
            nn.Conv1d(c.n_features, c.d_model, k, stride=c.subsample, padding=k // 2), nn.GELU()
        )
        self.inp_norm = nn.LayerNorm(c.d_model)
        enc = nn.TransformerEncoderLayer(
            c.d_model, c.heads, c.ff, c.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(enc, c.enc_layers, enable_nested_tensor=False)
        self.embed = nn.Embedding(c.vocab_size, c.d_model, padding_idx=0)
        dec = nn.TransformerDecoderLayer(
            c.d_model, c.heads, c.ff, c.dropout, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(dec, c.dec_layers)
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)
        self.drop = nn.Dropout(c.dropout)
        # per-feature standardisation of the input frames, fitted on the train frames (set_normalisation)
        self.register_buffer("feat_mean", torch.zeros(c.n_features))
        self.register_buffer("feat_std", torch.ones(c.n_features))

    @torch.no_grad()
    def set_normalisation(self, frames: torch.Tensor, min_std: float = 1e-3) -> None:
        """Fit the input standardisation on ``frames [N, n_features]`` (mean, std floored at ``min_std``)."""
        frames = frames.reshape(-1, self.config.n_features).float()
        self.feat_mean.copy_(frames.mean(0))
        self.feat_std.copy_(frames.std(0).clamp(min=min_std))

    def encode(self, poses: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory ``[B, T', d]`` and its padding mask ``[B, T']`` (True = padding) for ``poses [B, T, F]``."""
        c = self.config
        if poses.ndim != 3 or poses.shape[-1] != c.n_features:
            raise ValueError(
                f"back-translator expects poses [B, T, {c.n_features}], got {tuple(poses.shape)}"
            )
        x = (poses - self.feat_mean) / self.feat_std
        x = x * (
            torch.arange(x.shape[1], device=x.device)[None, :, None] < lengths[:, None, None]
        )  # zero padding
        h = self.inp(x.transpose(1, 2)).transpose(1, 2)
        steps = h.shape[1]
        h = self.drop(self.inp_norm(h) + sinusoidal_encoding(steps, c.d_model, h.device))
        sub_len = torch.div(lengths + c.subsample - 1, c.subsample, rounding_mode="floor").clamp(min=1)
        pad = torch.arange(steps, device=h.device)[None, :] >= sub_len[:, None]
        return self.encoder(h, src_key_padding_mask=pad), pad

    def decode(self, tokens: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor) -> torch.Tensor:
        """Next-word logits ``[B, L, vocab]`` for input tokens ``[B, L]`` (``<bos>`` first)."""
        L = tokens.shape[1]
        x = self.drop(
            self.embed(tokens) * math.sqrt(self.config.d_model)
            + sinusoidal_encoding(L, self.config.d_model, tokens.device)
        )
        causal = torch.triu(torch.ones(L, L, dtype=torch.bool, device=tokens.device), 1)
        h = self.decoder(
            x,
            memory,
            tgt_mask=causal,
            tgt_key_padding_mask=tokens == 0,
            memory_key_padding_mask=memory_pad,
            tgt_is_causal=True,
        )
        return self.head(self.norm(h))

    def forward(self, poses: torch.Tensor, lengths: torch.Tensor, tokens_in: torch.Tensor) -> torch.Tensor:
        memory, pad = self.encode(poses, lengths)
        return self.decode(tokens_in, memory, pad)

    def loss(
        self, poses: torch.Tensor, lengths: torch.Tensor, tokens: torch.Tensor, label_smoothing: float = 0.1
    ) -> torch.Tensor:
        """Teacher-forced cross entropy of ``tokens [B, L]`` (``<bos> .. <eos>``, 0-padded)."""
        logits = self(poses, lengths, tokens[:, :-1])
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            tokens[:, 1:].reshape(-1),
            ignore_index=0,
            label_smoothing=label_smoothing,
        )

    @torch.no_grad()
    def greedy(
        self, poses: torch.Tensor, lengths: torch.Tensor, max_tokens: int | None = None
    ) -> list[list[int]]:
        """Greedy decoding: word ids per sequence (without ``<bos>``, up to ``<eos>``)."""
        max_tokens = max_tokens or self.config.max_tokens
        memory, pad = self.encode(poses, lengths)
        B = poses.shape[0]
        tokens = torch.full((B, 1), 1, dtype=torch.long, device=poses.device)
        done = torch.zeros(B, dtype=torch.bool, device=poses.device)
        for _ in range(max_tokens + 1):
            nxt = self.decode(tokens, memory, pad)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.zeros_like(nxt), nxt)  # pad after <eos>
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            done |= nxt == 2
            if bool(done.all()):
                break
        return [row[1:].tolist() for row in tokens]


def save_backtranslator(model: BackTranslator, vocab: Vocab, directory: str | Path) -> Path:
    """Write ``config.json``, ``model.pt`` and ``vocab.json`` to ``directory``."""
    d = save_model(model, directory)
    (d / VOCAB_FILE).write_text(json.dumps(vocab.itos, ensure_ascii=False))
    return d


def load_backtranslator(
    directory: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[BackTranslator, Vocab]:
    """Load a back-translator written by :func:`save_backtranslator`: eval mode, frozen."""
    d = Path(directory)
    model = load_model(BackTranslator, BackTranslatorConfig, d, "back-translator", map_location)
    try:
        vocab = Vocab(json.loads((d / VOCAB_FILE).read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{d}: not a saved back-translator, missing {VOCAB_FILE}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{d / VOCAB_FILE}: invalid vocabulary: {exc}") from exc
    if len(vocab) != model.config.vocab_size:
        raise ValueError(
            f"{d / VOCAB_FILE}: {len(vocab)} words but config says vocab_size={model.config.vocab_size}"
        )
    return model, vocab
