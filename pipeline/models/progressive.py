"""Progressive Transformers (PT; Saunders et al., ECCV 2020): the autoregressive text-to-pose baseline.

:class:`ProgressiveTransformer` maps word ids (a word-level :class:`~pipeline.models.backtranslator.Vocab`,
``<pad>=0``) to a variable-length pose sequence, one frame per step:

- **Encoder** (as PT's code): token embedding + sinusoidal positions, pre-norm Transformer layers
  (self-attention, ReLU feed-forward), a final LayerNorm.
- **Decoder** over continuous frames (as PT's code): each input frame is the pose (``F`` values)
  plus one *counter* value, embedded by a single ``nn.Linear(F + 1, d)``, plus sinusoidal
  positions; pre-norm layers with causal self-attention and cross-attention to the encoder, a final
  LayerNorm and ``nn.Linear(d, F * N + 1, bias=False)`` (``N`` = :attr:`ProgressiveConfig.future_frames`).
  The attention is our own (:class:`Attention`) so that generation can keep a key/value cache.
- **Counter** (PT's "progress" channel, :func:`progress_counter`): ``c_t = t / (T - 1)`` rises
  linearly from 0 to exactly 1 at the last real frame (``c = 1`` for ``T = 1``). PT's data loader
  also appends a linear counter; we fix its end point to 1 so that the stop rule is well defined.
- **Teacher forcing** (:func:`teacher_forcing`): decoder input ``[start, y_0 .. y_{T-2}]`` with
  their counters, target ``y_0 .. y_{T-1}`` with their counters. *Deviation:* PT's code starts from
  the ground-truth first frame (and its greedy search even feeds the ground-truth counter, i.e. the
  ground-truth length); we generate from the text alone, so the start frame is fixed: zero pose and
  counter 0 (not learned - position 0's encoding already marks it, and it keeps the module simple).
- **Loss** (:func:`pt_losses`): MSE over the real (unpadded) target frames on all ``F * N + 1``
  output channels including the counter, as PT. ``total`` is that plain MSE, i.e.
  ``(F N pose + counter) / (F N + 1)``; ``pose`` and ``counter`` are the per-part MSEs (logged).
- **Stop rule** (PT paper §3.1, "the counter decides the end"): generation of a sequence ends at the
  first step whose predicted counter is ``>= stop_threshold`` (default ``1 - 0.5 / (max_frames - 1)``:
  halfway between the last two counters of the longest training sequence, so every real frame
  before the last of any training sequence stays below it), or at ``max_frames``; the length is the
  number of frames produced up to and including that step. Each predicted frame is fed back as the
  next input (predicted pose; predicted counter clamped to [0, 1]).
- **FP, future prediction** (PT §3.3, :func:`future_targets`): with ``future_frames = N > 1`` the
  target at step ``t`` is frames ``t .. t + N - 1`` concatenated, plus the counter of frame ``t``.
  *Deviation:* frames past the end are padded with the last real frame (PT's code cuts ``N``
  frames off the end of every sequence instead). Only the first block is used at inference.
  PT's FP configuration uses ``N = 10`` (:data:`FP_FRAMES`).
- **GN, Gaussian noise** (PT §3.3): in training mode only, ``noise_rate * N(0, 1) * noise_std``
  is added to the pose part of the decoder inputs (never to the counter; never in eval or
  generation). ``noise_std [F]`` is a buffer, zero at first (no noise in the first epoch), set at
  the end of each epoch by :meth:`ProgressiveTransformer.update_noise_std` to the per-coordinate
  (unbiased) std of the epoch's training prediction errors, first frame block only, collected by
  :meth:`ProgressiveTransformer.accumulate_errors` (as PT). *Deviations:* errors are taken on the
  real frames only (PT also counts padded frames), and the fixed start frame gets no noise (it is
  never a prediction at inference). PT's paper default is ``noise_rate = 5`` (:data:`PT_NOISE_RATE`;
  the repository's later GNFP config uses 0.001); ``noise_rate = 0`` switches GN off (base PT).
- **Decoding** (:meth:`ProgressiveTransformer.generate`): greedy and batched with per-sequence
  stopping; ``use_cache=True`` keeps each layer's self-attention keys/values and computes the
  memory's cross-attention keys/values once; ``use_cache=False`` re-runs the decoder on the whole
  prefix every step (PT's way). Both give the same frames.

Sizes: PT uses 2 encoder/decoder layers, 4 heads, width 512, feed-forward 2048, dropout 0; our
defaults are CPU-sized (width 128, feed-forward 256).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError, check_fields, param
from pipeline.data.sequences import length_mask
from pipeline.models.backtranslator import PAD_ID
from pipeline.models.layers import sinusoidal_encoding

SECTION = "progressive"  # the params section / error-message prefix of :class:`ProgressiveConfig`
FP_FRAMES = 10  # PT's future-prediction horizon (Configs/GNFP.yaml: future_prediction: 10)
PT_NOISE_RATE = 5.0  # PT's Gaussian-noise rate with GN on (paper default)


@dataclass
class ProgressiveConfig:
    """Hyper-parameters of :class:`ProgressiveTransformer` (``vocab_size``, ``max_frames`` and
    ``n_features`` come from the data)."""

    d_model: int = param(128, gt=0)  # PT: 512
    heads: int = param(4, gt=0)  # PT: 4
    encoder_layers: int = param(2, gt=0)  # PT: 2
    decoder_layers: int = param(2, gt=0)  # PT: 2
    ffn: int = param(256, gt=0)  # PT: 2048
    dropout: float = param(0.0, ge=0, lt=1)  # PT: 0.0
    # set per variant by train_pt (progressive.variants, fp_frames, noise_rate), not read as params:
    future_frames: int = param(1, gt=0, derived=True)  # N: 1 = base PT, FP_FRAMES for the FP variant
    noise_rate: float = param(0.0, ge=0, derived=True)  # GN: 0 = off (base PT), PT_NOISE_RATE with GN
    stop_threshold: float | None = param(None, gt=0, le=1)  # None = 1 - 0.5 / (max_frames - 1)
    vocab_size: int = param(1000, ge=4, derived=True)  # len(Vocab): <pad> <bos> <eos> <unk> + words
    max_frames: int = param(200, gt=0, derived=True)  # T_max: longest generated sequence
    n_features: int = param(150, gt=0, derived=True)  # F = J * 3

    def __post_init__(self) -> None:
        check_fields(self, SECTION)
        if self.d_model % self.heads:
            raise ParamsError(
                f"{SECTION}.d_model={self.d_model!r} is invalid; expected a positive multiple of "
                f"{SECTION}.heads={self.heads}"
            )

    @property
    def threshold(self) -> float:
        """The stop threshold on the predicted counter (``stop_threshold`` or its default)."""
        if self.stop_threshold is not None:
            return self.stop_threshold
        return 1.0 - 0.5 / (self.max_frames - 1) if self.max_frames > 1 else 1.0

    @property
    def out_features(self) -> int:
        """Width of the output head: ``F * N + 1``."""
        return self.n_features * self.future_frames + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- data -------------------------------------------------------------------------------------
def progress_counter(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``[B, max_len]`` counters ``t / (T_b - 1)`` (1 when ``T_b = 1``), 0 on padded frames."""
    t = torch.arange(max_len, device=lengths.device, dtype=torch.float32)[None, :]
    denom = (lengths.float() - 1).clamp(min=1)[:, None]
    counter = torch.where(lengths[:, None] > 1, t / denom, torch.ones_like(t))
    return counter * length_mask(lengths, max_len)


def future_targets(frames: torch.Tensor, lengths: torch.Tensor, n: int) -> torch.Tensor:
    """``[B, T, F * n]``: at step ``t`` frames ``t .. t + n - 1`` concatenated, indices past the last
    real frame clamped to it (padded steps repeat the last real frame too)."""
    b, t_max, _ = frames.shape
    idx = torch.arange(t_max, device=frames.device)[:, None] + torch.arange(n, device=frames.device)[None]
    last = (lengths.to(frames.device) - 1).clamp(min=0)[:, None, None]
    idx = torch.minimum(idx[None].expand(b, -1, -1), last)  # [B, T, n]
    gathered = torch.gather(frames, 1, idx.reshape(b, t_max * n, 1).expand(-1, -1, frames.shape[-1]))
    return gathered.reshape(b, t_max, -1)


def teacher_forcing(
    frames: torch.Tensor, lengths: torch.Tensor, future_frames: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(decoder_inputs [B, T, F + 1], targets [B, T, F * N + 1])`` of zero-padded ``frames [B, T, F]``.

    Inputs are the start frame (zero pose, counter 0) then ``y_0 .. y_{T-2}`` with their counters;
    targets are :func:`future_targets` of ``y_t`` plus the counter ``c_t``.
    """
    frames = frames.float()
    counter = progress_counter(lengths.to(frames.device), frames.shape[1])[..., None]
    with_counter = torch.cat([frames, counter], dim=-1)
    inputs = torch.cat([torch.zeros_like(with_counter[:, :1]), with_counter[:, :-1]], dim=1)
    targets = torch.cat([future_targets(frames, lengths, future_frames), counter], dim=-1)
    return inputs, targets


def pt_losses(outputs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
    """MSEs over real frames: ``{"pose", "counter", "total"}``; ``total`` = MSE on all channels (PT).

    ``outputs``/``targets [B, T, F * N + 1]`` (counter last), ``lengths [B]``.
    """
    mask = length_mask(lengths.to(outputs.device), outputs.shape[1])
    err = (outputs[mask].float() - targets[mask].float()) ** 2  # [N_real, W]
    return {"pose": err[:, :-1].mean(), "counter": err[:, -1].mean(), "total": err.mean()}


# -- layers -----------------------------------------------------------------------------------
class Attention(nn.Module):
    """Multi-head attention with explicit q/k/v projections, so keys/values can be cached."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``source [B, S, d]`` -> keys, values ``[B, heads, S, d / heads]``."""
        return self._split(self.k(source)), self._split(self.v(source))

    def attend(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """``query [B, L, d]`` over cached ``keys``/``values``; ``mask`` (True = attend) broadcasts to
        ``[B, heads, L, S]``."""
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(self._split(self.q(query)), keys, values, mask, dropout_p=p)
        return self.o(out.transpose(1, 2).flatten(2))

    def forward(self, query: torch.Tensor, source: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.attend(query, *self.keys_values(source), mask)


def _feed_forward(dim: int, ffn: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, dim))


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + feed-forward (PT's ``TransformerEncoderLayer``)."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.ffn = _feed_forward(dim, ffn, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, h, mask))
        return x + self.drop(self.ffn(self.norm2(x)))


class DecoderLayer(nn.Module):
    """Pre-norm causal self-attention, cross-attention to the memory, feed-forward (PT's
    ``TransformerDecoderLayer``); ``cache`` holds this layer's self-attention keys/values."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads, dropout)
        self.cross_attn = Attention(dim, heads, dropout)
        self.ffn = _feed_forward(dim, ffn, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        memory_mask: torch.Tensor,
        causal: torch.Tensor | None,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``x [B, L, d]``; with ``cache`` the new positions also attend to the cached ones."""
        h = self.norm1(x)
        k, v = self.self_attn.keys_values(h)
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        x = x + self.drop(self.self_attn.attend(h, k, v, causal))
        x = x + self.drop(self.cross_attn.attend(self.norm2(x), *memory_kv, memory_mask))
        return x + self.drop(self.ffn(self.norm3(x)))


class Generation(NamedTuple):
    """Output of :meth:`ProgressiveTransformer.generate`: ``frames [B, T, F]`` (zero after each
    length), ``lengths [B]`` (long) and the raw predicted ``counters [B, T]``."""

    frames: torch.Tensor
    lengths: torch.Tensor
    counters: torch.Tensor

    def to_list(self) -> list[np.ndarray]:
        """The sequences as float32 arrays ``[T_i, F]``."""
        frames = self.frames.float().cpu().numpy()
        return [frames[i, : int(n)].astype(np.float32) for i, n in enumerate(self.lengths.tolist())]


# -- model ------------------------------------------------------------------------------------
class ProgressiveTransformer(nn.Module):
    """Text encoder + progressive (counter-driven, autoregressive) pose decoder; see the module docs."""

    noise_std: torch.Tensor

    def __init__(self, config: ProgressiveConfig) -> None:
        super().__init__()
        self.config = c = config
        self.src_embed = nn.Embedding(c.vocab_size, c.d_model, padding_idx=PAD_ID)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(c.d_model, c.heads, c.ffn, c.dropout) for _ in range(c.encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(c.d_model)
        self.frame_embed = nn.Linear(c.n_features + 1, c.d_model)
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(c.d_model, c.heads, c.ffn, c.dropout) for _ in range(c.decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.out_features, bias=False)
        self.drop = nn.Dropout(c.dropout)  # on the embeddings (PT: emb_dropout)
        self.register_buffer("positions", sinusoidal_encoding(c.max_frames, c.d_model), persistent=False)
        self.register_buffer("noise_std", torch.zeros(c.n_features))
        self._err_stats: list[torch.Tensor] | None = None  # count, sum, sum of squares (float64)
        for name, weight in self.named_parameters():  # PT: xavier weights, zero biases
            if weight.dim() > 1:
                nn.init.xavier_uniform_(weight)
            elif name.endswith("bias") and "norm" not in name:
                nn.init.zeros_(weight)
        with torch.no_grad():
            self.src_embed.weight[PAD_ID].zero_()

    # -- encoder / decoder ----------------------------------------------------------------------
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Word ids ``[B, U]`` (``attention_mask`` 1 = real token) -> memory ``[B, U, d]``."""
        x = self.src_embed(input_ids) + sinusoidal_encoding(
            input_ids.shape[1], self.config.d_model, input_ids.device
        )
        x = self.drop(x)
        mask = self.memory_mask(attention_mask)
        for layer in self.encoder_layers:
            x = layer(x, mask)
        return self.encoder_norm(x)

    @staticmethod
    def memory_mask(attention_mask: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 1, U]`` bool, True on real tokens (the key mask of attention over the text)."""
        return attention_mask.bool()[:, None, None, :]

    def memory_keys_values(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each decoder layer's cross-attention keys/values of ``memory`` (computed once per batch)."""
        return [layer.cross_attn.keys_values(memory) for layer in self.decoder_layers]

    def _positions(self, start: int, length: int, device: torch.device) -> torch.Tensor:
        if start + length <= self.positions.shape[0]:
            return self.positions[start : start + length]
        return sinusoidal_encoding(start + length, self.config.d_model, device)[start:]

    def decode(
        self,
        decoder_inputs: torch.Tensor,
        memory_kv: list[tuple[torch.Tensor, torch.Tensor]],
        memory_mask: torch.Tensor,
        offset: int = 0,
        caches: list[dict[str, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Frames ``[B, L, F + 1]`` at positions ``offset .. offset + L - 1`` -> ``[B, L, F * N + 1]``.

        Without ``caches`` the inputs are the whole prefix (``offset`` 0, causal mask); with
        ``caches`` (one dict per layer) the earlier positions come from them and are extended.
        """
        length = decoder_inputs.shape[1]
        x = self.frame_embed(decoder_inputs) + self._positions(offset, length, decoder_inputs.device)
        x = self.drop(x)
        causal = None
        if caches is None or length > 1:
            causal = torch.ones(length, offset + length, dtype=torch.bool, device=x.device).tril(offset)
        for i, layer in enumerate(self.decoder_layers):
            x = layer(x, memory_kv[i], memory_mask, causal, None if caches is None else caches[i])
        return self.head(self.decoder_norm(x))

    def add_noise(self, decoder_inputs: torch.Tensor) -> torch.Tensor:
        """GN: ``noise_rate * N(0, 1) * noise_std`` on the pose channels of positions ``1..`` (not the
        start frame, never the counter); the inputs unchanged when not training or GN is off."""
        if not self.training or self.config.noise_rate == 0:
            return decoder_inputs
        noise = torch.randn_like(decoder_inputs[:, 1:, :-1]) * self.noise_std.to(decoder_inputs.dtype)
        noisy = decoder_inputs.clone()
        noisy[:, 1:, :-1] += self.config.noise_rate * noise
        return noisy

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced outputs ``[B, T, F * N + 1]`` for ``decoder_inputs [B, T, F + 1]``
        (:func:`teacher_forcing`); GN noise is added in training mode."""
        memory = self.encode(input_ids, attention_mask)
        inputs = self.add_noise(decoder_inputs.float())
        return self.decode(inputs, self.memory_keys_values(memory), self.memory_mask(attention_mask))

    # -- Gaussian noise statistics --------------------------------------------------------------
    @torch.no_grad()
    def accumulate_errors(self, outputs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> None:
        """Add this batch's prediction errors (first frame block, real frames) to the epoch's statistics."""
        n_feat = self.config.n_features
        mask = length_mask(lengths.to(outputs.device), outputs.shape[1])
        err = (outputs[mask][:, :n_feat] - targets[mask][:, :n_feat]).double()
        stats = [
            torch.tensor(float(len(err)), dtype=torch.float64, device=err.device),
            err.sum(0),
            (err**2).sum(0),
        ]
        if self._err_stats is None:
            self._err_stats = stats
        else:
            self._err_stats = [a + b for a, b in zip(self._err_stats, stats, strict=True)]

    @property
    def error_stats(self) -> list[torch.Tensor] | None:
        """The errors accumulated since the last :meth:`update_noise_std` (count, sum, sum of
        squares; float64), ``None`` before the first batch; settable (a training checkpoint)."""
        return self._err_stats

    @error_stats.setter
    def error_stats(self, stats: list[torch.Tensor] | None) -> None:
        self._err_stats = None if stats is None else [t.to(torch.float64) for t in stats]

    @torch.no_grad()
    def pending_noise_std(self) -> torch.Tensor:
        """The std :meth:`update_noise_std` would set now (the current one with < 2 error frames)."""
        stats = self._err_stats
        if stats is None or stats[0] < 2:
            return self.noise_std.clone()
        n, total, squares = stats
        var = ((squares - total**2 / n) / (n - 1)).clamp(min=0)
        return var.sqrt().to(self.noise_std)

    @torch.no_grad()
    def update_noise_std(self) -> torch.Tensor:
        """Set :attr:`noise_std` to the (unbiased) per-feature std of the accumulated errors and start
        a new epoch's statistics; with fewer than 2 error frames it is left unchanged."""
        self.noise_std.copy_(self.pending_noise_std())
        self._err_stats = None
        return self.noise_std

    # -- generation -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_frames: int | None = None,
        use_cache: bool = True,
        stop_threshold: float | None = None,
    ) -> Generation:
        """Greedy autoregressive decoding from the start frame (eval mode; the mode is restored).

        A sequence stops at the first step whose predicted counter is ``>= stop_threshold``
        (default :attr:`ProgressiveConfig.threshold`) or after ``max_frames`` (default the config's)
        frames; finished sequences keep being computed until all are done, then are cut.
        """
        c = self.config
        max_frames = c.max_frames if max_frames is None else max_frames
        threshold = c.threshold if stop_threshold is None else stop_threshold
        if max_frames < 1:
            raise ValueError(f"max_frames={max_frames} must be >= 1")
        mode = self.training
        self.eval()
        try:
            memory = self.encode(input_ids, attention_mask)
            memory_kv, mask = self.memory_keys_values(memory), self.memory_mask(attention_mask)
            b, device = input_ids.shape[0], input_ids.device
            step_input = torch.zeros(b, 1, c.n_features + 1, device=device)  # the start frame
            prefix = step_input
            caches: list[dict[str, torch.Tensor]] | None = (
                [{} for _ in self.decoder_layers] if use_cache else None
            )
            lengths = torch.full((b,), max_frames, dtype=torch.long, device=device)
            done = torch.zeros(b, dtype=torch.bool, device=device)
            poses, counters = [], []
            for t in range(max_frames):
                if use_cache:
                    out = self.decode(step_input, memory_kv, mask, offset=t, caches=caches)[:, -1]
                else:
                    out = self.decode(prefix, memory_kv, mask)[:, -1]
                pose, counter = out[:, : c.n_features], out[:, -1]
                poses.append(pose)
                counters.append(counter)
                stop = (counter >= threshold) & ~done
                lengths[stop] = t + 1
                done |= stop
                if bool(done.all()):
                    break
                step_input = torch.cat([pose, counter.clamp(0, 1)[:, None]], dim=-1)[:, None]
                if not use_cache:
                    prefix = torch.cat([prefix, step_input], dim=1)
            frames = torch.stack(poses, dim=1).float()
            frames = frames * length_mask(lengths, frames.shape[1])[..., None]
            return Generation(frames, lengths, torch.stack(counters, dim=1).float())
        finally:
            self.train(mode)
