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
- ``total``  = w_pose pose + w_distil distil + w_length length  (Eq. 11)

At inference :func:`predict_frames` gives ``T_hat = clamp(round(ratio_hat T_max), 1, T_max)`` and
frames beyond ``T_hat`` are discarded. The regulator returns the logit of the ratio; the Sigmoid
is applied by :attr:`StudentOutput.ratio` and inside BCE-with-logits (same values as
Sigmoid + BCE, numerically stable and safe under bf16 autocast).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError
from pipeline.models.text_encoder import DEFAULT_PRETRAINED, ENCODERS, build_text_encoder
from pipeline.sequences import length_mask

POSITIONAL = ("sinusoidal", "learned")


@dataclass
class StudentConfig:
    """Hyper-parameters of :class:`Student` (``student`` params section + data/VAE-derived sizes)."""

    text_encoder: str = "bert"  # bert | transformer (w/o-BERT ablation)
    pretrained: str = DEFAULT_PRETRAINED  # HF name / local path / the offline MiniLM package
    freeze_bert: bool = False
    scratch_layers: int | None = None  # depth of the ``transformer`` encoder; None = the BERT's depth
    decoder_dim: int | None = 256  # None = the encoder's width
    decoder_layers: int = 2
    decoder_heads: int = 4
    decoder_ffn: int = 512
    dropout: float = 0.1
    length_hidden: list[int] = field(default_factory=lambda: [256])  # FC widths of the regulator
    positional: str = "sinusoidal"  # decoder queries: sinusoidal | learned
    max_frames: int = 200  # T_max (resolved: never null here)
    latent: int = 32  # VAE latent size d
    n_features: int = 150  # J * 3

    def __post_init__(self) -> None:
        if self.text_encoder not in ENCODERS:
            raise ParamsError(
                f"student.text_encoder={self.text_encoder!r} is invalid; expected one of {ENCODERS}"
            )
        if self.positional not in POSITIONAL:
            raise ParamsError(
                f"student.positional={self.positional!r} is invalid; expected one of {POSITIONAL}"
            )
        self.length_hidden = [int(h) for h in self.length_hidden]
        for key in ("decoder_layers", "decoder_heads", "decoder_ffn", "max_frames", "latent", "n_features"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ParamsError(f"student.{key}={value!r} is invalid; expected an int > 0")
        if self.decoder_dim is not None and (self.decoder_dim <= 0 or self.decoder_dim % self.decoder_heads):
            raise ParamsError(
                f"student.decoder_dim={self.decoder_dim!r} is invalid; expected a positive multiple of "
                f"student.decoder_heads={self.decoder_heads}"
            )
        if self.scratch_layers is not None and (
            not isinstance(self.scratch_layers, int)
            or isinstance(self.scratch_layers, bool)
            or self.scratch_layers <= 0
        ):
            raise ParamsError(
                f"student.scratch_layers={self.scratch_layers!r} is invalid; expected null or an int > 0"
            )
        if not 0 <= self.dropout < 1:
            raise ParamsError(f"student.dropout={self.dropout!r} is invalid; expected 0 <= dropout < 1")
        if any(h <= 0 for h in self.length_hidden):
            raise ParamsError(f"student.length_hidden={self.length_hidden!r} is invalid; expected widths > 0")

    @classmethod
    def from_params(
        cls, student: dict[str, Any], max_frames: int, latent: int, n_features: int
    ) -> StudentConfig:
        """Build from the ``student`` section (training-only keys such as ``lr`` are ignored)."""
        names = {f.name for f in fields(cls)} - {"max_frames", "latent", "n_features"}
        kwargs = {k: v for k, v in student.items() if k in names}
        return cls(max_frames=max_frames, latent=latent, n_features=n_features, **kwargs)

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


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """``[length, dim]`` sine/cosine positional encodings (Vaswani et al.)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return pe


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
            for name, param in module.named_parameters():
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)
                elif name.endswith("bias") and "norm" not in name:
                    nn.init.zeros_(param)

    @property
    def encoder_is_fixed(self) -> bool:
        """True for a frozen pretrained BERT: a fixed function (eval mode, no dropout)."""
        return bool(getattr(self.encoder, "is_pretrained", False) and self.config.freeze_bert)

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


@torch.no_grad()
def encode_texts(
    student: Student, tokenizer: Any, texts: list[str], batch_size: int = 64
) -> dict[str, torch.Tensor]:
    """Cache of the fixed text encoder: unique text -> states of its real tokens ``[U_i, d_enc]`` (CPU, fp32).

    Only valid when :attr:`Student.encoder_is_fixed` (raises otherwise); the encoder runs in eval
    mode on the student's device, in batches of ``batch_size`` texts.
    """
    if not student.encoder_is_fixed:
        raise ValueError("encode_texts needs a frozen pretrained encoder (student.freeze_bert: true, bert)")
    from pipeline.sequences import tokenize

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
            states, _ = student.encoder(enc["input_ids"].to(device), mask)
            for i, text in enumerate(chunk):
                cache[text] = states[i, : int(mask[i].sum())].float().cpu().clone()
    finally:
        student.encoder.train(mode)
    return cache


def predict_frames(ratio: torch.Tensor, max_frames: int) -> torch.Tensor:
    """``T_hat = clamp(round(ratio * T_max), 1, T_max)`` (long)."""
    return torch.clamp(torch.round(ratio.float() * max_frames), 1, max_frames).long()


def duration_accuracy(pred: torch.Tensor, true: torch.Tensor, margin: float = 25.0) -> torch.Tensor:
    """DurACC: share of sequences with ``|T_hat - T| < margin`` frames (1 s at 25 fps)."""
    return ((pred.float() - true.float()).abs() < margin).float().mean()


def student_losses(
    out: StudentOutput,
    poses: torch.Tensor,
    lengths: torch.Tensor,
    vae: nn.Module,
    weights: dict[str, float],
) -> dict[str, torch.Tensor]:
    """Eq. 8-11 over real frames: ``{"pose", "length", "distil" (if weighted), "total"}``.

    ``poses [B, T_max, F]`` (zero padded), ``lengths [B]``; ``vae`` provides ``decode`` (PGM)
    and ``encode -> (mu, logvar)`` (LGM, evaluated without gradient). ``weights`` has the keys
    ``pose``, ``distil``, ``length`` (the ``loss`` params section).
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
    losses["total"] = total
    return losses
