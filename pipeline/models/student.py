"""Latent Learning Module (LLM, paper §3.3-3.4): the knowledge-distillation student.

``Student(input_ids, attention_mask)`` encodes a sentence with a text encoder
(:mod:`pipeline.models.text_encoder`), predicts the length ratio ``T / T_max`` from the
``[CLS]``/``[BOS]`` state with the :class:`LengthRegulator` (FC layers + Sigmoid), and decodes
``T_max`` latent frames non-autoregressively with the :class:`NARDecoder`: its queries are the
positional encodings of positions ``0..T_max-1``, keys/values the encoder states (Eq. 4-6; no
causal mask, no previous-frame input). A linear layer maps the decoder states to the VAE latent
size: ``Z_lang [B, T_max, latent]``.

With the frozen pose VAE (encoder = LGM, decoder = PGM, :mod:`pipeline.models.vae`),
:func:`student_losses` computes over the real (unpadded) frames only:

- ``pose``   = MSE(PGM(Z_lang), Y)               (Eq. 8)
- ``distil`` = MSE(Z_lang, Z_pose), Z_pose = LGM mu(Y)  (Eq. 9; not computed when its weight is 0)
- ``length`` = BCE(ratio_hat, T / T_max)          (Eq. 10)
- ``motion`` = MSE(PGM(Z_lang)[t+1] - PGM(Z_lang)[t], Y[t+1] - Y[t]) over consecutive real frames
  (our documented addition, issue 13: not in the paper; computed only when its weight is nonzero)
- ``total``  = w_pose pose + w_distil distil + w_length length (+ w_motion motion)  (Eq. 11)

At inference :func:`predict_frames` gives ``T_hat = clamp(round(ratio_hat T_max), 1, T_max)`` and
frames beyond ``T_hat`` are discarded. The regulator returns the logit of the ratio; the Sigmoid
is applied by :attr:`StudentOutput.ratio` and inside BCE-with-logits (same values as
Sigmoid + BCE, numerically stable and safe under bf16 autocast).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError, check_fields, param
from pipeline.data.sequences import length_mask, tokenize
from pipeline.models.layers import sinusoidal_encoding
from pipeline.models.text_encoder import DEFAULT_PRETRAINED, build_text_encoder


@dataclass
class StudentConfig:
    """Hyper-parameters of :class:`Student`: the model keys of the params section ``student``
    (``max_frames`` = the resolved ``T_max``, ``latent`` and ``n_features`` come from the data and
    the VAE)."""

    text_encoder: Literal["bert", "transformer"] = "bert"  # transformer = the w/o-BERT ablation
    pretrained: str = DEFAULT_PRETRAINED  # HF name / local path / the offline MiniLM package
    freeze_bert: bool = False
    train_layers: int | None = param(None, ge=0)  # top BERT layers fine-tuned (None = all + embeddings)
    scratch_layers: int | None = param(None, gt=0)  # depth of the ``transformer`` encoder; None = the BERT's
    decoder_dim: int | None = param(256, gt=0)  # None = the encoder's width
    decoder_layers: int = param(2, gt=0)
    decoder_heads: int = param(4, gt=0)
    decoder_ffn: int = param(512, gt=0)
    dropout: float = param(0.1, ge=0, lt=1)
    length_hidden: list[int] = param([256])  # FC widths of the regulator
    positional: Literal["sinusoidal", "learned"] = "sinusoidal"  # decoder queries
    max_frames: int = param(200, gt=0, derived=True)  # T_max (resolved: never null here)
    latent: int = param(32, gt=0, derived=True)  # VAE latent size d
    n_features: int = param(150, gt=0, derived=True)  # J * 3

    def __post_init__(self) -> None:
        check_fields(self, "student")
        if self.decoder_dim is not None and self.decoder_dim % self.decoder_heads:
            raise ParamsError(
                f"student.decoder_dim={self.decoder_dim!r} is invalid; expected a positive multiple of "
                f"student.decoder_heads={self.decoder_heads}"
            )
        if any(h <= 0 for h in self.length_hidden):
            raise ParamsError(f"student.length_hidden={self.length_hidden!r} is invalid; expected widths > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StudentOutput:
    """``z_lang [B, T_max, latent]`` and the length regulator's ``ratio_logit [B]``."""

    z_lang: torch.Tensor
    ratio_logit: torch.Tensor

    @property
    def ratio(self) -> torch.Tensor:
        """Predicted ``T / T_max`` in (0, 1): the regulator's Sigmoid."""
        return torch.sigmoid(self.ratio_logit.float())


class LengthRegulator(nn.Module):
    """FC layers (ReLU, dropout) ending in one unit; Sigmoid of it = ``T / T_max``. Returns the logit."""

    def __init__(self, dim: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(dim, width), nn.ReLU(), nn.Dropout(dropout)]
            dim = width
        layers.append(nn.Linear(dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled).squeeze(-1)


class NARDecoder(nn.Module):
    """Non-autoregressive decoder: positional queries attend to the encoder states (Eq. 4-6)."""

    def __init__(
        self, dim: int, heads: int, ffn: int, layers: int, dropout: float, max_frames: int, positional: str
    ) -> None:
        super().__init__()
        if positional == "learned":
            self.queries = nn.Parameter(torch.empty(max_frames, dim))
            nn.init.xavier_uniform_(self.queries)
        else:
            self.register_buffer("queries", sinusoidal_encoding(max_frames, dim), persistent=False)
        layer = nn.TransformerDecoderLayer(dim, heads, ffn, dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)

    def forward(self, memory: torch.Tensor, memory_padding: torch.Tensor) -> torch.Tensor:
        """``memory [B, U, d]``, ``memory_padding [B, U]`` (True = pad) -> ``[B, T_max, d]``."""
        tgt = self.queries[None].expand(memory.shape[0], -1, -1).to(memory.dtype)
        return self.decoder(tgt, memory, memory_key_padding_mask=memory_padding)


class Student(nn.Module):
    """Text encoder + length regulator + NAR decoder + projection to the VAE latent (``Z_lang``).

    ``encoder_config`` is the transformers config of ``config.pretrained``; ``load_pretrained``
    False builds a ``bert`` encoder from the config only (weights come from a saved state dict).
    """

    def __init__(self, config: StudentConfig, encoder_config: Any, load_pretrained: bool = True) -> None:
        super().__init__()
        self.config = config
        pretrained = config.pretrained if load_pretrained else None
        self.encoder = build_text_encoder(
            config.text_encoder,
            encoder_config,
            pretrained,
            config.freeze_bert,
            config.dropout,
            config.scratch_layers,
            config.train_layers,
        )
        d_enc = self.encoder.hidden_size
        d = config.decoder_dim or d_enc
        if d % config.decoder_heads:
            raise ParamsError(
                f"decoder width {d} is not a multiple of student.decoder_heads={config.decoder_heads}"
            )
        self.memory_proj = nn.Linear(d_enc, d) if d != d_enc else nn.Identity()
        self.length = LengthRegulator(d_enc, config.length_hidden, config.dropout)
        self.decoder = NARDecoder(
            d,
            config.decoder_heads,
            config.decoder_ffn,
            config.decoder_layers,
            config.dropout,
            config.max_frames,
            config.positional,
        )
        self.to_latent = nn.Linear(d, config.latent)
        for module in (self.memory_proj, self.length, self.decoder, self.to_latent):
            for name, weight in module.named_parameters():
                if weight.dim() > 1:
                    nn.init.xavier_uniform_(weight)
                elif name.endswith("bias") and "norm" not in name:
                    nn.init.zeros_(weight)

    @property
    def encoder_is_fixed(self) -> bool:
        """True for a frozen pretrained BERT (``freeze_bert`` or ``train_layers: 0``): a fixed function."""
        return bool(getattr(self.encoder, "is_pretrained", False) and getattr(self.encoder, "freeze", False))

    @property
    def encoder_has_fixed_part(self) -> bool:
        """True when a pretrained BERT's embeddings (and lower layers) are not trained: cacheable."""
        return bool(getattr(self.encoder, "has_fixed_part", False))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> StudentOutput:
        states, _ = self.encoder(input_ids, attention_mask)
        return self.decode_states(states, attention_mask)

    def decode_states(self, states: torch.Tensor, attention_mask: torch.Tensor) -> StudentOutput:
        """Everything after the text encoder, from its states ``[B, U, d_enc]`` (pooled = ``states[:, 0]``).

        Lets training with a frozen encoder run on cached states (:func:`encode_texts`); states
        at padded positions (``attention_mask == 0``) are ignored.
        """
        ratio_logit = self.length(states[:, 0])
        hidden = self.decoder(self.memory_proj(states), attention_mask == 0)
        return StudentOutput(self.to_latent(hidden), ratio_logit)

    def decode_cached(self, fixed: torch.Tensor, attention_mask: torch.Tensor) -> StudentOutput:
        """The student from the cached output of the encoder's fixed part (:func:`encode_texts`):
        the trained top layers (none when frozen), then :meth:`decode_states`."""
        return self.decode_states(self.encoder.top(fixed, attention_mask), attention_mask)


@torch.no_grad()
def encode_texts(
    student: Student, tokenizer: Any, texts: list[str], batch_size: int = 64
) -> dict[str, torch.Tensor]:
    """Cache of the text encoder's fixed part: unique text -> its output at the real tokens ``[U_i, d_enc]``
    (CPU, fp32): the final states of a frozen BERT, the input of the trained top layers otherwise.

    Only valid when :attr:`Student.encoder_has_fixed_part` (raises otherwise); the encoder runs in
    eval mode on the student's device, in batches of ``batch_size`` texts.
    """
    if not student.encoder_has_fixed_part:
        raise ValueError(
            "encode_texts needs a pretrained encoder with a fixed part "
            "(text_encoder: bert and freeze_bert: true or train_layers below its depth)"
        )
    mode = student.encoder.training
    student.encoder.eval()
    device = next(student.encoder.parameters()).device
    unique = list(dict.fromkeys(texts))
    cache: dict[str, torch.Tensor] = {}
    try:
        for start in range(0, len(unique), batch_size):
            chunk = unique[start : start + batch_size]
            enc = tokenize(tokenizer, chunk)
            mask = enc["attention_mask"].to(device)
            states = student.encoder.fixed(enc["input_ids"].to(device), mask)
            for i, text in enumerate(chunk):
                cache[text] = states[i, : int(mask[i].sum())].float().cpu().clone()
    finally:
        student.encoder.train(mode)
    return cache


def predict_frames(ratio: torch.Tensor, max_frames: int) -> torch.Tensor:
    """``T_hat = clamp(round(ratio * T_max), 1, T_max)`` (long)."""
    return torch.clamp(torch.round(ratio.float() * max_frames), 1, max_frames).long()


def student_losses(
    out: StudentOutput,
    poses: torch.Tensor,
    lengths: torch.Tensor,
    vae: nn.Module,
    weights: dict[str, float],
) -> dict[str, torch.Tensor]:
    """Eq. 8-11 over real frames: ``{"pose", "length", "distil" (if weighted), "motion" (if
    weighted), "total"}``.

    ``poses [B, T_max, F]`` (zero padded), ``lengths [B]``; ``vae`` provides ``decode`` (PGM)
    and ``encode -> (mu, logvar)`` (LGM, evaluated without gradient). ``weights`` has the keys
    ``pose``, ``distil``, ``length`` and optionally ``motion`` (the ``loss`` params section; a
    missing ``motion`` is 0, the paper's Eq. 11).
    """
    t_max = out.z_lang.shape[1]
    if poses.shape[1] != t_max:
        raise ValueError(f"poses have {poses.shape[1]} frames, the student decodes T_max={t_max}")
    mask = length_mask(lengths, t_max)
    z_real = out.z_lang[mask].float()  # [N_real, latent]
    y_real = poses[mask].float()  # [N_real, F]
    y_hat = vae.decode(z_real).float()
    losses = {"pose": F.mse_loss(y_hat, y_real)}
    ratio = lengths.float() / t_max
    losses["length"] = F.binary_cross_entropy_with_logits(out.ratio_logit.float(), ratio)
    total = weights.get("pose", 1.0) * losses["pose"] + weights.get("length", 1.0) * losses["length"]
    w_distil = weights.get("distil", 1.0)
    if w_distil:
        with torch.no_grad():
            z_pose = vae.encode(y_real)[0].float()
        losses["distil"] = F.mse_loss(z_real, z_pose)
        total = total + w_distil * losses["distil"]
    w_motion = weights.get("motion", 0.0)
    if w_motion:
        steps = length_mask(lengths - 1, t_max - 1)  # pairs (t, t+1) with both frames real
        decoded = torch.zeros_like(poses, dtype=y_hat.dtype)
        decoded[mask] = y_hat
        d_hat = (decoded[:, 1:] - decoded[:, :-1])[steps]
        d_true = (poses[:, 1:] - poses[:, :-1]).float()[steps]
        losses["motion"] = F.mse_loss(d_hat, d_true) if len(d_true) else y_hat.sum() * 0.0
        total = total + w_motion * losses["motion"]
    losses["total"] = total
    return losses
