"""The back-translator (poses -> German text) of the back-translation metrics (§5.1): a small
Sign Language Transformer (SLT, Camgoz et al. 2020, "Sign Language Transformers: Joint End-to-end
Sign Language Recognition and Translation") with a CTC gloss-recognition head.

Tokens are whole words: a text is lower-cased and split on white space (PHOENIX-2014T texts are
already tokenised, punctuation separated), and the vocabulary (:class:`Vocab`) holds the train
texts' words seen at least ``min_count`` times plus ``<pad> <bos> <eos> <unk>``. Word-level
tokens keep decoding short and make BLEU's tokens the model's tokens; a word that never occurs in
train cannot be produced, exactly as in the word-level SLT models the paper's BT builds on.
Glosses are the upper-case gloss tokens of the store index (``gloss`` field, split on white
space, case kept); :class:`GlossVocab` holds every train gloss plus ``<blank> <unk>``, and the CTC
blank is id 0 (:data:`BLANK_ID`).

:class:`BackTranslator` is a Transformer encoder-decoder: frames ``[B, T, J*3]`` in [0, 1] are
standardised per feature (mean/std of the train frames, :meth:`BackTranslator.set_normalisation`,
stored as buffers), go through a strided 1D convolution (``subsample``: halves the frame rate by
default), sinusoidal positions and a Transformer encoder; a Transformer decoder with causal
self-attention predicts the next word. With ``gloss_vocab_size > 0`` a gloss head (LayerNorm +
linear to the gloss vocabulary incl. the blank) on the encoder output is trained with CTC
(:meth:`BackTranslator.losses`: ``gloss_weight`` x CTC + label-smoothed cross entropy, the SLT
joint loss) and recognises glosses by CTC best-path decoding (:meth:`BackTranslator.recognise`,
:func:`ctc_collapse`: argmax per step, merge repeats, drop blanks).

Decoding (:meth:`BackTranslator.generate`) is :func:`beam_search`, batched over sentences (the
memory is expanded to ``B * beam``), with the GNMT / SLT length penalty: a finished hypothesis of
``|Y|`` generated tokens (its ``<eos>`` included) scores ``log P(Y) / ((5 + |Y|) / 6) ** alpha``.
``beam_size`` and ``length_penalty`` (alpha) are saved in the config, so evaluation decodes with the
setting chosen on dev; ``beam_size = 1`` is greedy decoding. The search takes a
``step(tokens) -> log-probs`` callable and is independent of the network.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
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
PAD_ID = SPECIALS.index(PAD)  # 0: token-id padding of every word-level model (PT, NSLP-G, this SLT)


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


GLOSS_VOCAB_FILE = "gloss_vocab.json"
BLANK, GLOSS_UNK = "<blank>", "<unk>"
GLOSS_SPECIALS = (BLANK, GLOSS_UNK)
BLANK_ID = 0  # the CTC blank of the gloss head


def gloss_tokens(gloss: str) -> list[str]:
    """Gloss tokens of an annotation: split on white space, case kept (``"ABEND SONNE"``)."""
    return gloss.split()


def encode_batch(
    vocab: Vocab, items: Sequence[str], max_tokens: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``vocab.encode`` each item and pad with ``<pad>``: ``(ids [B, L], attention_mask [B, L])``
    (mask 1 on real tokens). Works for any vocabulary with :class:`Vocab`'s ``encode`` (the texts of
    PT and NSLP-G, NSLP-G's glosses)."""
    seqs = [vocab.encode(item, max_tokens) for item in items]
    width = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, (ids != PAD_ID).long()


@dataclass
class GlossVocab:
    """Gloss <-> id of the CTC head; id 0 is the blank (:data:`BLANK_ID`), 1 is ``<unk>``."""

    itos: list[str]

    def __post_init__(self) -> None:
        if tuple(self.itos[:2]) != GLOSS_SPECIALS:
            raise ValueError(f"gloss vocabulary must start with {GLOSS_SPECIALS}, got {self.itos[:2]}")
        self.stoi = {g: i for i, g in enumerate(self.itos)}

    @classmethod
    def build(cls, glosses: list[str]) -> GlossVocab:
        """Every gloss of ``glosses`` (most frequent first, ties by gloss) after ``<blank> <unk>``."""
        counts = Counter(g for s in glosses for g in gloss_tokens(s))
        return cls([*GLOSS_SPECIALS, *sorted(counts, key=lambda g: (-counts[g], g))])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, gloss: str) -> list[int]:
        """Ids of the gloss tokens (unknown -> ``<unk>``); no blank, no boundary tokens."""
        return [self.stoi.get(g, 1) for g in gloss_tokens(gloss)]

    def decode(self, ids: Sequence[int]) -> str:
        """Gloss string of ``ids``; blanks skipped."""
        return " ".join(self.itos[i] for i in ids if i != BLANK_ID)


@dataclass
class BackTranslatorConfig:
    """Hyper-parameters of :class:`BackTranslator`: the params section ``backtranslator``
    (``n_features``, ``vocab_size``, ``gloss_vocab_size`` and ``max_tokens`` come from the train
    split; ``length_penalty`` is replaced by the value chosen on dev)."""

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
    gloss_vocab_size: int = param(0, ge=0, derived=True)  # glosses + blank of the CTC head; 0 = no head
    beam_size: int = param(4, gt=0)  # 1 = greedy decoding
    length_penalty: float = param(1.0, ge=0)  # alpha of ((5 + |Y|) / 6) ** alpha

    def __post_init__(self) -> None:
        check_fields(self, "backtranslator")
        if self.d_model % self.heads:
            raise ParamsError(f"backtranslator.d_model={self.d_model} not divisible by heads={self.heads}")
        if self.gloss_vocab_size == 1:
            raise ParamsError("backtranslator: gloss_vocab_size=1 (only the blank); use 0 for no gloss head")


# -- decoding ------------------------------------------------------------------------------------


def length_penalty_factor(length: int, alpha: float) -> float:
    """GNMT length normaliser ``((5 + length) / 6) ** alpha`` (``length`` counts the ``<eos>``)."""
    return ((5.0 + length) / 6.0) ** alpha


def beam_search(
    step: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    beam_size: int,
    max_len: int,
    length_penalty: float = 0.0,
    bos: int = 1,
    eos: int = 2,
    pad: int = 0,
    device: str | torch.device = "cpu",
) -> list[list[int]]:
    """Batched beam search; the best hypothesis per sentence as ids after ``<bos>``, up to and
    including its ``<eos>`` (or ``max_len + 1`` ids without one when none finished).

    ``step(tokens [N, L]) -> [N, V]``: next-token log-probabilities (or logits: they are
    log-softmax normalised here) for each prefix; rows ``b * beam_size .. (b + 1) * beam_size - 1``
    belong to sentence ``b`` (``N = batch_size * beam_size``; ``batch_size`` rows for beam 1).

    ``beam_size = 1`` is greedy decoding: argmax of ``step``'s output, ``pad`` fed after
    ``<eos>``, stop when every row ended or after ``max_len + 1`` tokens. Otherwise each step keeps
    the ``beam_size`` best non-finished prefixes (by summed log-probability) of each sentence;
    a candidate ending in ``<eos>`` ranked among the ``beam_size`` best of its step is finished
    with score ``log P / length_penalty_factor(|Y|, alpha)``. A sentence is done when no live
    prefix can still beat its best finished hypothesis (a live raw score ``s <= 0`` can at most
    reach ``s / length_penalty_factor(max_len + 1, alpha)``), so the result is the best finished
    hypothesis the beam produced; live prefixes left at ``max_len + 1`` tokens compete unfinished.
    """
    if beam_size < 1 or max_len < 0 or length_penalty < 0:
        raise ValueError(
            f"beam_search: beam_size={beam_size} must be >= 1, max_len={max_len} >= 0, "
            f"length_penalty={length_penalty} >= 0"
        )
    if beam_size == 1:
        return _greedy(step, batch_size, max_len, bos, eos, pad, device)
    B, K = batch_size, beam_size
    tokens = torch.full((B * K, 1), bos, dtype=torch.long, device=device)
    scores = torch.full((B, K), -math.inf, device=device)
    scores[:, 0] = 0.0  # one live prefix (<bos>) per sentence at the start
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool, device=device)
    lp_max = length_penalty_factor(max_len + 1, length_penalty)
    rows = torch.arange(B, device=device)[:, None] * K
    for t in range(1, max_len + 2):  # t = tokens generated after this step
        logp = torch.log_softmax(step(tokens).float(), dim=-1)
        V = logp.shape[-1]
        cand = (scores.reshape(-1, 1) + logp).reshape(B, K * V)
        n_top = min(2 * K, K * V)  # at most K candidates end in <eos>: K others remain when V >= 2
        top, idx = cand.topk(n_top, dim=1)
        origin, tok = torch.div(idx, V, rounding_mode="floor"), idx % V
        is_eos = tok == eos
        ended = is_eos[:, :K] & torch.isfinite(top[:, :K]) & ~done[:, None]
        if bool(ended.any()):
            norm = length_penalty_factor(t, length_penalty)
            for b, j in ended.nonzero().tolist():
                ids = tokens[int(rows[b, 0] + origin[b, j]), 1:].tolist() + [eos]
                finished[b].append((float(top[b, j]) / norm, ids))
        # the K best candidates that do not end in <eos> stay live
        key = torch.arange(n_top, device=device) + is_eos.long() * n_top
        pick = key.argsort(dim=1)[:, :K]
        scores = top.gather(1, pick).masked_fill(is_eos.gather(1, pick), -math.inf)
        src = (rows + origin.gather(1, pick)).reshape(-1)
        tokens = torch.cat([tokens[src], tok.gather(1, pick).reshape(-1, 1)], dim=1)
        best_live = scores.max(dim=1).values
        bound = best_live / lp_max if length_penalty > 0 else best_live
        for b in range(B):
            if not done[b] and (
                not math.isfinite(float(best_live[b]))
                or (finished[b] and max(f[0] for f in finished[b]) >= float(bound[b]))
            ):
                done[b] = True
        scores = scores.masked_fill(done[:, None], -math.inf)
        if bool(done.all()):
            break
    out = []
    for b in range(B):
        hyps = list(finished[b])
        if not bool(done[b]):  # ran out of length: live prefixes compete as they are
            for k in range(K):
                s = float(scores[b, k])
                if math.isfinite(s):
                    hyps.append((s / lp_max, tokens[b * K + k, 1:].tolist()))
        out.append(max(hyps, key=lambda h: h[0])[1] if hyps else [])
    return out


def _greedy(
    step: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    max_len: int,
    bos: int,
    eos: int,
    pad: int,
    device: str | torch.device,
) -> list[list[int]]:
    tokens = torch.full((batch_size, 1), bos, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    for _ in range(max_len + 1):
        nxt = step(tokens).argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)  # pad after <eos>
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        done |= nxt == eos
        if bool(done.all()):
            break
    return [_until_eos(row[1:].tolist(), eos) for row in tokens]


def _until_eos(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids


def ctc_collapse(ids: Sequence[int], blank: int = BLANK_ID) -> list[int]:
    """CTC best-path labels of per-step ids: merge repeated ids, then drop blanks."""
    out: list[int] = []
    prev = None
    for i in ids:
        if i != prev and i != blank:
            out.append(int(i))
        prev = i
    return out


# -- the model -----------------------------------------------------------------------------------


class BackTranslator(nn.Module):
    """Pose-to-text Transformer with an optional CTC gloss head: ``forward(poses, lengths,
    tokens_in) -> logits``, :meth:`losses` (joint loss), :meth:`generate` (beam search),
    :meth:`recognise` (glosses)."""

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
        # CTC gloss head on the (pre-norm, so un-normalised) encoder output: glosses + blank (id 0)
        self.gloss_head = (
            nn.Sequential(nn.LayerNorm(c.d_model), nn.Linear(c.d_model, c.gloss_vocab_size))
            if c.gloss_vocab_size
            else None
        )
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

    def _gloss_head(self) -> nn.Module:
        if self.gloss_head is None:
            raise ValueError(
                "this back-translator has no gloss head (trained with backtranslator.gloss_weight: 0): "
                "gloss recognition is unavailable"
            )
        return self.gloss_head

    def gloss_log_probs(self, memory: torch.Tensor) -> torch.Tensor:
        """CTC log-probabilities ``[B, T', gloss_vocab_size]`` (blank = id 0) of the encoder memory."""
        return F.log_softmax(self._gloss_head()(memory).float(), dim=-1)

    def ctc_loss(
        self,
        memory: torch.Tensor,
        memory_pad: torch.Tensor,
        glosses: torch.Tensor,
        gloss_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """CTC of gloss ids ``[B, S]`` (0-padded, lengths ``[B]``); mean over the batch of the loss per
        target gloss (``reduction="mean"``); impossible alignments give 0 (``zero_infinity``)."""
        logp = self.gloss_log_probs(memory).transpose(0, 1)  # [T', B, G]
        return F.ctc_loss(
            logp,
            glosses,
            (~memory_pad).sum(1),
            gloss_lengths,
            blank=BLANK_ID,
            reduction="mean",
            zero_infinity=True,
        )

    def _ce(self, logits: torch.Tensor, tokens: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            tokens[:, 1:].reshape(-1),
            ignore_index=0,
            label_smoothing=label_smoothing,
        )

    def loss(
        self, poses: torch.Tensor, lengths: torch.Tensor, tokens: torch.Tensor, label_smoothing: float = 0.1
    ) -> torch.Tensor:
        """Teacher-forced cross entropy of ``tokens [B, L]`` (``<bos> .. <eos>``, 0-padded)."""
        return self._ce(self(poses, lengths, tokens[:, :-1]), tokens, label_smoothing)

    def losses(
        self,
        poses: torch.Tensor,
        lengths: torch.Tensor,
        tokens: torch.Tensor,
        glosses: torch.Tensor | None = None,
        gloss_lengths: torch.Tensor | None = None,
        label_smoothing: float = 0.1,
        gloss_weight: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """The SLT joint loss ``{"ce", "ctc" (gloss_weight > 0), "total" = gloss_weight * ctc + ce}``."""
        memory, pad = self.encode(poses, lengths)
        out = {"ce": self._ce(self.decode(tokens[:, :-1], memory, pad), tokens, label_smoothing)}
        out["total"] = out["ce"]
        if gloss_weight > 0:
            if glosses is None or gloss_lengths is None:
                raise ValueError("losses: gloss_weight > 0 needs glosses and gloss_lengths")
            out["ctc"] = self.ctc_loss(memory, pad, glosses, gloss_lengths)
            out["total"] = out["ce"] + gloss_weight * out["ctc"]
        return out

    @torch.no_grad()
    def generate(
        self,
        poses: torch.Tensor,
        lengths: torch.Tensor,
        beam_size: int | None = None,
        length_penalty: float | None = None,
        max_tokens: int | None = None,
    ) -> list[list[int]]:
        """Beam-search word ids per sequence (without ``<bos>``, up to and including ``<eos>``);
        ``None`` = the config's ``beam_size`` / ``length_penalty`` / ``max_tokens``."""
        c = self.config
        K = c.beam_size if beam_size is None else beam_size
        alpha = c.length_penalty if length_penalty is None else length_penalty
        memory, pad = self.encode(poses, lengths)
        if K > 1:
            memory, pad = memory.repeat_interleave(K, dim=0), pad.repeat_interleave(K, dim=0)
        return beam_search(
            lambda tokens: self.decode(tokens, memory, pad)[:, -1],
            poses.shape[0],
            K,
            max_tokens or c.max_tokens,
            alpha,
            device=poses.device,
        )

    @torch.no_grad()
    def recognise(self, poses: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """CTC best-path gloss ids per sequence (argmax per encoder step, :func:`ctc_collapse`)."""
        memory, pad = self.encode(poses, lengths)
        best = self.gloss_log_probs(memory).argmax(-1).cpu()
        steps = (~pad).sum(1).cpu().tolist()
        return [ctc_collapse(row[:n].tolist()) for row, n in zip(best, steps, strict=True)]


# -- files ---------------------------------------------------------------------------------------


def save_backtranslator(
    model: BackTranslator, vocab: Vocab, directory: str | Path, glosses: GlossVocab | None = None
) -> Path:
    """Write ``config.json``, ``model.pt``, ``vocab.json`` and, with a gloss head, ``gloss_vocab.json``."""
    size = model.config.gloss_vocab_size
    if (glosses is None) != (size == 0) or (glosses is not None and len(glosses) != size):
        raise ValueError(
            f"save_backtranslator: gloss head of {size} classes but "
            f"{'no' if glosses is None else len(glosses)} gloss vocabulary entries"
        )
    d = save_model(model, directory)
    (d / VOCAB_FILE).write_text(json.dumps(vocab.itos, ensure_ascii=False))
    if glosses is not None:
        (d / GLOSS_VOCAB_FILE).write_text(json.dumps(glosses.itos, ensure_ascii=False))
    else:
        (d / GLOSS_VOCAB_FILE).unlink(missing_ok=True)  # no stale gloss vocabulary of an earlier model
    return d


def _read_list(path: Path, what: str) -> list[str]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path.parent}: not a saved back-translator, missing {path.name}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid {what}: {exc}") from exc


def load_backtranslator(
    directory: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[BackTranslator, Vocab, GlossVocab | None]:
    """Load a back-translator written by :func:`save_backtranslator`: eval mode, frozen; the gloss
    vocabulary is ``None`` for a model without a gloss head."""
    d = Path(directory)
    model = load_model(BackTranslator, BackTranslatorConfig, d, "back-translator", map_location)
    vocab = Vocab(_read_list(d / VOCAB_FILE, "vocabulary"))
    if len(vocab) != model.config.vocab_size:
        raise ValueError(
            f"{d / VOCAB_FILE}: {len(vocab)} words but config says vocab_size={model.config.vocab_size}"
        )
    glosses = None
    if model.config.gloss_vocab_size:
        glosses = GlossVocab(_read_list(d / GLOSS_VOCAB_FILE, "gloss vocabulary"))
        if len(glosses) != model.config.gloss_vocab_size:
            raise ValueError(
                f"{d / GLOSS_VOCAB_FILE}: {len(glosses)} entries but config says "
                f"gloss_vocab_size={model.config.gloss_vocab_size}"
            )
    return model, vocab, glosses
