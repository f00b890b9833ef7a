"""NSLP-G baseline (Hwang et al., BMVC 2021, "Non-Autoregressive Sign Language Production with
Gaussian Space"; reference code: github.com/Eddie-Hwang/NSLP-G), re-implemented in our conventions.

NSLP-G maps a sentence to a sequence of per-frame latents of a pretrained pose VAE in one
non-autoregressive pass; the VAE's decoder (the "Gaussian space" decoder) turns every latent into a
pose frame. We reuse OUR pretrained frame VAE (:class:`pipeline.models.vae.VAE`): it is the same
kind of model as theirs (a per-frame VAE with a Sigmoid decoder trained with BCE), so
:meth:`VAE.decode` is the Gaussian-space decoder. Parts and where they come from:

- **Text encoder** (their code): a word embedding over a word-level vocabulary built from the train
  texts (:class:`pipeline.models.backtranslator.Vocab`: ``<pad>=0 <bos>=1 <eos>=2 <unk>=3``), plus
  sinusoidal positions, then ``nn.TransformerEncoder`` (post-norm, ReLU) with the padded tokens
  masked. The model reads ``input_ids`` + ``attention_mask`` (:func:`encode_batch`).
- **Pose decoder** (their code): non-autoregressive ``nn.TransformerDecoder``; one query per output
  frame = zeros + sinusoidal position encoding, no causal mask (every frame attends to every real
  frame), padded frames masked as keys (their ``tgt_key_padding_mask``), cross-attention to the text
  states. ``Linear(d, latent)`` gives a deterministic latent per frame (no sampling), decoded by
  ``VAE.decode`` into pose frames. (One version of their code puts ReLU + LayerNorm before the
  linear layer; we use the plain linear map.) Because padded frames are masked as keys, the real
  frames' outputs do not depend on how much padding a batch has.
- **Length**: NSLP-G has no length predictor; it decodes the ground-truth number of frames in
  training and at test time. ``length: oracle`` (default) does the same, so :meth:`NSLPG.generate`
  needs the true lengths and DurACC is trivially 1 — compare its DTW/FGD/BT numbers with that in
  mind. ``length: regulator`` (our addition, to make the baseline usable without the reference
  length) reuses the student's :class:`~pipeline.models.student.LengthRegulator` on the first
  (``<bos>``) text state, trained with BCE on ``T / T_max`` (our Eq. 10) while the pose decoder is
  teacher-forced with the true length; :func:`~pipeline.models.student.predict_frames` gives the
  length at inference.
- **Loss** (:meth:`NSLPG.losses`): ``pose`` = MSE between the decoded frames and the ground truth
  over the real (unpadded) frames only — their code zeroes the padded frames' errors but still
  divides by the padded size, which weights a sequence by the batch's padding; we average over
  real frames, as our student does. ``+ gloss_weight * gloss`` (the GS variant) and
  ``+ length_weight * length`` (``length: regulator`` only).
- **GS** (gloss supervision, their code): a separate Transformer decoder over gloss embeddings
  (teacher forcing: input ``<bos> g1..gn``, target ``g1..gn <eos>``) cross-attending to the text
  states, a linear layer to the gloss vocabulary (:class:`GlossSeqVocab`, the same special ids),
  cross-entropy with label smoothing 0.1 (their newer code) ignoring padding. Their gloss decoder
  has NO causal mask, so the target token is visible in the input and the loss is nearly trivial;
  we use a causal mask (a documented fix). ``gloss_weight: 0`` (default) = "base" and builds no
  gloss decoder; their newer code uses 0.1 for GS.
- **+ft** (their ``--vae_ft``): ``finetune_vae: true`` trains the VAE decoder jointly under the same
  losses; otherwise (base / GS) the VAE is frozen (``requires_grad`` False) and kept in eval mode
  even when the model is put in training mode. Only the VAE *decoder* is ever trained (its encoder
  is unused by NSLP-G). :meth:`NSLPG.trainable_parameters` is what the optimizer should receive.

Sizes: their 2022 defaults are hidden 512, 8 heads, 4 layers, FFN 1024, dropout 0; our defaults are
CPU-sized (128, 4 heads, 2 layers, FFN 256, dropout 0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError, check_fields, param
from pipeline.data.sequences import length_mask
from pipeline.models.backtranslator import PAD_ID, SPECIALS, Vocab, gloss_tokens
from pipeline.models.backtranslator import (
    encode_batch as encode_batch,  # re-exported: batches texts and glosses
)
from pipeline.models.layers import sinusoidal_encoding
from pipeline.models.student import LengthRegulator, predict_frames

BOS_ID, EOS_ID, UNK_ID = 1, 2, 3  # the ids of :data:`SPECIALS` after <pad> (PAD_ID = 0) in both vocabularies
LENGTHS = ("oracle", "regulator")


class GlossSeqVocab(Vocab):
    """Gloss <-> id for the GS gloss decoder: :class:`Vocab`'s special ids (``<pad> <bos> <eos>
    <unk>``), but gloss tokens split by :func:`gloss_tokens` (case kept, not lower-cased)."""

    @classmethod
    def build(cls, glosses: list[str], min_count: int = 1) -> GlossSeqVocab:
        """Every gloss seen >= ``min_count`` times in ``glosses`` (most frequent first, ties by gloss)."""
        counts = Counter(g for s in glosses for g in gloss_tokens(s))
        kept = sorted((g for g, c in counts.items() if c >= min_count), key=lambda g: (-counts[g], g))
        return cls([*SPECIALS, *kept])

    def encode(self, gloss: str, max_tokens: int | None = None) -> list[int]:
        """``<bos> g1 .. gn <eos>`` ids (unknown glosses -> ``<unk>``), cut to ``max_tokens`` glosses."""
        ids = [self.stoi.get(g, UNK_ID) for g in gloss_tokens(gloss)]
        if max_tokens is not None:
            ids = ids[:max_tokens]
        return [BOS_ID, *ids, EOS_ID]


@dataclass
class NSLPGConfig:
    """Hyper-parameters of :class:`NSLPG` (params section ``nslpg``); ``vocab_size``,
    ``gloss_vocab_size``, ``max_frames``, ``latent`` and ``n_features`` come from the data and the VAE."""

    d_model: int = param(128, gt=0)  # theirs: 512
    heads: int = param(4, gt=0)  # theirs: 8
    enc_layers: int = param(2, gt=0)  # theirs: 4
    dec_layers: int = param(2, gt=0)  # theirs: 4
    gloss_layers: int = param(2, gt=0)  # GS gloss decoder depth; theirs: = the other decoders'
    ffn: int = param(256, gt=0)  # theirs: 1024
    dropout: float = param(0.0, ge=0, lt=1)  # theirs: 0
    length: Literal["oracle", "regulator"] = "oracle"  # oracle = NSLP-G (true lengths at test time)
    length_hidden: list[int] = param([128])  # FC widths of the regulator (length: regulator)
    length_weight: float = param(1.0, ge=0)  # weight of the length BCE (length: regulator)
    label_smoothing: float = param(0.1, ge=0, lt=1)  # of the gloss cross-entropy
    # set per variant by train_nslpg (nslpg.variants, nslpg.gloss_weight), not read as params:
    gloss_weight: float = param(0.0, ge=0, derived=True)  # 0 = base; > 0 = GS (their newer code: 0.1)
    finetune_vae: bool = param(False, derived=True)  # +ft: train the VAE decoder jointly
    vocab_size: int = param(100, gt=0, derived=True)  # word vocabulary (incl. the 4 specials)
    gloss_vocab_size: int = param(0, ge=0, derived=True)  # gloss vocabulary (incl. specials); 0 = none
    max_frames: int = param(200, gt=0, derived=True)  # T_max of the regulator's ratio T / T_max
    latent: int = param(32, gt=0, derived=True)  # the VAE's latent size
    n_features: int = param(150, gt=0, derived=True)  # J * 3

    def __post_init__(self) -> None:
        check_fields(self, "nslpg")
        if self.d_model % self.heads:
            raise ParamsError(
                f"nslpg.d_model={self.d_model!r} is invalid; expected a multiple of nslpg.heads={self.heads}"
            )
        if any(h <= 0 for h in self.length_hidden):
            raise ParamsError(f"nslpg.length_hidden={self.length_hidden!r} is invalid; expected widths > 0")
        if self.gloss_weight > 0 and self.gloss_vocab_size <= len(SPECIALS):
            raise ParamsError(
                f"nslpg.gloss_vocab_size={self.gloss_vocab_size!r} is invalid with nslpg.gloss_weight="
                f"{self.gloss_weight}; expected the specials plus at least one gloss (> {len(SPECIALS)})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NSLPGOutput:
    """``z [B, T, latent]`` (one latent per frame), the regulator's ``ratio_logit [B]`` (None with
    ``length: oracle``) and the gloss decoder's ``gloss_logits [B, L-1, V_g]`` (None without GS)."""

    z: torch.Tensor
    ratio_logit: torch.Tensor | None = None
    gloss_logits: torch.Tensor | None = None


def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Bool ``[size, size]``: True where position ``i`` may NOT attend to ``j`` (``j > i``)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).triu(1)


def _xavier(modules: Sequence[nn.Module]) -> None:
    """Xavier-uniform matrices and zero biases (LayerNorms keep their ones/zeros), as the student."""
    for module in modules:
        for name, weight in module.named_parameters():
            if weight.dim() > 1:
                nn.init.xavier_uniform_(weight)
            elif name.endswith("bias") and "norm" not in name:
                nn.init.zeros_(weight)


class NSLPG(nn.Module):
    """Text encoder + NAR pose decoder + latent projection + the VAE's decoder; optional length
    regulator and GS gloss decoder (see the module docstring).

    ``vae`` provides ``decode(z) -> frames`` (our :class:`~pipeline.models.vae.VAE`); with a
    ``config`` attribute its ``latent``/``n_features`` must match ours. The VAE is a submodule
    (saved with the model, so a fine-tuned decoder travels with it).
    """

    def __init__(self, config: NSLPGConfig, vae: nn.Module) -> None:
        super().__init__()
        self.config = c = config
        vae_config = getattr(vae, "config", None)
        for key in ("latent", "n_features"):
            theirs = getattr(vae_config, key, getattr(c, key))
            if theirs != getattr(c, key):
                raise ParamsError(
                    f"nslpg.{key}={getattr(c, key)!r} does not match the VAE's {key}={theirs!r}"
                )
        d = c.d_model
        self.embed = nn.Embedding(c.vocab_size, d, padding_idx=PAD_ID)
        enc = nn.TransformerEncoderLayer(d, c.heads, c.ffn, c.dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(enc, c.enc_layers, enable_nested_tensor=False)
        dec = nn.TransformerDecoderLayer(d, c.heads, c.ffn, c.dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(dec, c.dec_layers)
        self.to_latent = nn.Linear(d, c.latent)
        self.drop = nn.Dropout(c.dropout)
        trained: list[nn.Module] = [self.encoder, self.decoder, self.to_latent]
        self.length = None
        if c.length == "regulator":
            self.length = LengthRegulator(d, c.length_hidden, c.dropout)
            trained.append(self.length)
        self.gloss_embed = self.gloss_decoder = self.gloss_head = None
        if c.gloss_weight > 0:
            self.gloss_embed = nn.Embedding(c.gloss_vocab_size, d, padding_idx=PAD_ID)
            gdec = nn.TransformerDecoderLayer(d, c.heads, c.ffn, c.dropout, batch_first=True)
            self.gloss_decoder = nn.TransformerDecoder(gdec, c.gloss_layers)
            self.gloss_head = nn.Linear(d, c.gloss_vocab_size)
            trained += [self.gloss_decoder, self.gloss_head]
        _xavier(trained)
        self.vae = vae
        vae.requires_grad_(False)
        if c.finetune_vae:
            decoder = getattr(vae, "decoder", None)
            if not isinstance(decoder, nn.Module):
                raise ValueError(
                    "finetune_vae needs a VAE with a `decoder` module (the Gaussian-space decoder)"
                )
            decoder.requires_grad_(True)  # only the decoder: the VAE's encoder is unused
        self.train(self.training)

    def train(self, mode: bool = True) -> NSLPG:
        """Set the training mode; a frozen VAE (``finetune_vae`` False) always stays in eval mode."""
        super().train(mode)
        if not self.config.finetune_vae:
            self.vae.eval()
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters the optimizer should update: every one with ``requires_grad`` (the VAE's
        decoder only with ``finetune_vae``; the VAE's encoder never)."""
        return (p for p in self.parameters() if p.requires_grad)

    # -- parts ------------------------------------------------------------------------------------
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Text states ``[B, U, d]``: word embedding + sinusoidal positions + Transformer encoder."""
        x = self.embed(input_ids) + sinusoidal_encoding(
            input_ids.shape[1], self.config.d_model, input_ids.device
        )
        return self.encoder(self.drop(x), src_key_padding_mask=attention_mask == 0)

    def decode_latents(
        self, states: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor, n_frames: int
    ) -> torch.Tensor:
        """``z [B, n_frames, latent]``: zero queries + sinusoidal positions, no causal mask, frames
        ``t >= lengths[b]`` masked as keys, cross-attention to ``states``."""
        _check_lengths(lengths, len(states), n_frames)
        queries = sinusoidal_encoding(n_frames, self.config.d_model, states.device)
        tgt = torch.zeros_like(states[:, :1, :1]) + queries[None].to(states.dtype)  # [B, T, d]
        hidden = self.decoder(
            self.drop(tgt),
            states,
            tgt_key_padding_mask=~length_mask(lengths.to(states.device), n_frames),
            memory_key_padding_mask=attention_mask == 0,
        )
        return self.to_latent(hidden)

    def decode_glosses(
        self, states: torch.Tensor, attention_mask: torch.Tensor, gloss_in: torch.Tensor
    ) -> torch.Tensor:
        """GS gloss decoder: logits ``[B, L, V_g]`` of the next gloss for inputs ``<bos> g1 ..``
        (causal self-attention, padded inputs masked, cross-attention to ``states``)."""
        if self.gloss_decoder is None or self.gloss_embed is None or self.gloss_head is None:
            raise ValueError("this NSLP-G has no gloss decoder (nslpg.gloss_weight is 0)")
        size = gloss_in.shape[1]
        x = self.gloss_embed(gloss_in) + sinusoidal_encoding(size, self.config.d_model, gloss_in.device)
        hidden = self.gloss_decoder(
            self.drop(x),
            states,
            tgt_mask=causal_mask(size, gloss_in.device),
            tgt_is_causal=True,
            tgt_key_padding_mask=gloss_in == PAD_ID,
            memory_key_padding_mask=attention_mask == 0,
        )
        return self.gloss_head(hidden)

    def decode_frames(self, z: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The VAE decoder on every latent: frames ``[B, T, F]``, zero beyond ``lengths``."""
        frames = self.vae.decode(z)
        keep = length_mask(lengths.to(z.device), z.shape[1])
        return frames.masked_fill(~keep[..., None], 0.0)

    # -- training ---------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        lengths: torch.Tensor,
        n_frames: int | None = None,
        gloss_ids: torch.Tensor | None = None,
    ) -> NSLPGOutput:
        """Teacher-forced pass: decode ``n_frames`` (default ``max(lengths)``) latents with the true
        ``lengths``; the regulator's logit (``length: regulator``); the gloss logits when GS is on
        and ``gloss_ids`` (``<bos> g1..gn <eos>`` padded, :func:`encode_batch`) are given."""
        states = self.encode(input_ids, attention_mask)
        n_frames = int(lengths.max()) if n_frames is None else n_frames
        out = NSLPGOutput(self.decode_latents(states, attention_mask, lengths, n_frames))
        if self.length is not None:
            out.ratio_logit = self.length(states[:, 0])
        if gloss_ids is not None and self.gloss_decoder is not None:
            out.gloss_logits = self.decode_glosses(states, attention_mask, gloss_ids[:, :-1])
        return out

    def losses(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        poses: torch.Tensor,
        lengths: torch.Tensor,
        gloss_ids: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{"pose", "gloss" (GS), "length" (regulator), "total"}`` for zero-padded ``poses
        [B, T, F]`` with ``lengths [B]``; ``gloss_ids`` are required when ``gloss_weight > 0``.

        ``pose``: MSE over the real frames only; ``gloss``: label-smoothed cross-entropy of the
        targets ``gloss_ids[:, 1:]`` ignoring ``<pad>``; ``length``: BCE of ``T / max_frames``.
        """
        c = self.config
        if c.gloss_weight > 0 and gloss_ids is None:
            raise ValueError(f"nslpg.gloss_weight={c.gloss_weight}: losses() needs gloss_ids")
        if self.length is not None and int(lengths.max()) > c.max_frames:
            raise ValueError(f"a sequence has {int(lengths.max())} frames > nslpg.max_frames={c.max_frames}")
        out = self(
            input_ids, attention_mask, lengths, poses.shape[1], gloss_ids if c.gloss_weight > 0 else None
        )
        mask = length_mask(lengths.to(poses.device), poses.shape[1])
        y_hat = self.vae.decode(out.z[mask]).float()  # only the real frames are decoded
        losses = {"pose": F.mse_loss(y_hat, poses[mask].float())}
        total = losses["pose"]
        if out.gloss_logits is not None and gloss_ids is not None:
            logits = out.gloss_logits.float()
            losses["gloss"] = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                gloss_ids[:, 1:].reshape(-1),
                ignore_index=PAD_ID,
                label_smoothing=c.label_smoothing,
            )
            total = total + c.gloss_weight * losses["gloss"]
        if out.ratio_logit is not None:
            ratio = lengths.to(out.ratio_logit.device).float() / c.max_frames
            losses["length"] = F.binary_cross_entropy_with_logits(out.ratio_logit.float(), ratio)
            total = total + c.length_weight * losses["length"]
        losses["total"] = total
        return losses

    # -- inference --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pose frames ``[B, max(lengths), F]`` (zero beyond each length) and ``lengths [B]``, in
        eval mode without gradients (the training mode is restored).

        ``length: oracle`` (NSLP-G) needs the true ``lengths``; ``length: regulator`` predicts them
        (:func:`predict_frames`) unless ``lengths`` are given (an oracle-length evaluation).
        """
        if lengths is None and self.length is None:
            raise ValueError(
                "NSLP-G with nslpg.length='oracle' decodes the ground-truth number of frames: "
                "generate() needs lengths (one per sentence)"
            )
        mode = self.training
        self.eval()
        try:
            states = self.encode(input_ids, attention_mask)
            if lengths is None:
                assert self.length is not None
                ratio = torch.sigmoid(self.length(states[:, 0]).float())
                lengths = predict_frames(ratio, self.config.max_frames)
            lengths = torch.as_tensor(lengths, dtype=torch.long, device=states.device)
            z = self.decode_latents(states, attention_mask, lengths, int(lengths.max()))
            frames = self.decode_frames(z, lengths)
        finally:
            self.train(mode)
        return frames, lengths


def _check_lengths(lengths: torch.Tensor, batch: int, n_frames: int) -> None:
    """Raise ``ValueError`` unless ``lengths`` has one value per sentence in ``1..n_frames``."""
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > n_frames):
        raise ValueError(f"lengths must be in 1..{n_frames} (the decoded frames), got {lengths.tolist()}")
