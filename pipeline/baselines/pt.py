"""Progressive Transformers (PT) as a trained product: the variants, the saved directory, text -> poses.

Variants (:data:`VARIANTS`, params ``progressive.variants``): ``base`` (one future frame, no
Gaussian noise), ``fp`` (future prediction of ``fp_frames`` frames), ``gn`` (Gaussian noise at
``noise_rate``) and ``fpgn`` (both, PT's best setting and the paper's "FP&GN");
:func:`variant_config` sets them on a :class:`~pipeline.models.progressive.ProgressiveConfig`.

:func:`save_pt` writes ``<dir>/config.json`` (``{"progressive": config, "variant", "n_joints",
"joints", "fps"}``), ``model.pt`` (state dict, the GN ``noise_std`` buffer included) and
``vocab.json`` (the word vocabulary, :class:`~pipeline.models.backtranslator.Vocab`);
:func:`load_pt` reads it into a :class:`PTGenerator` whose ``generate(texts)`` decodes greedily
(KV cache) until the counter stops each sequence and returns ``[T_i, J, 3]`` float32 poses in the
lifted [0, 1] space (unclipped: PT's output layer is linear).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from pipeline.baselines.variants import check_variants
from pipeline.config import check_positive
from pipeline.models.backtranslator import VOCAB_FILE, Vocab
from pipeline.models.io import CONFIG_FILE, WEIGHTS_FILE, save_weights
from pipeline.models.progressive import PAD_ID, ProgressiveConfig, ProgressiveTransformer

# variant -> (future prediction, Gaussian noise)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "base": (False, False),
    "fp": (True, False),
    "gn": (False, True),
    "fpgn": (True, True),
}


def variant_config(
    config: ProgressiveConfig, variant: str, fp_frames: int, noise_rate: float
) -> ProgressiveConfig:
    """``config`` with the variant's future frames (``fp_frames`` or 1) and GN rate (``noise_rate`` or 0)."""
    check_variants([variant], "progressive.variants", list(VARIANTS))
    fp, gn = VARIANTS[variant]
    return replace(config, future_frames=fp_frames if fp else 1, noise_rate=noise_rate if gn else 0.0)


def text_batch(vocab: Vocab, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Word ids ``<bos> w1 .. wn <eos>`` padded with ``<pad>``, and the attention mask (1 = token)."""
    seqs = [vocab.encode(t) for t in texts]
    ids = torch.full((len(seqs), max((len(s) for s in seqs), default=0)), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, (ids != PAD_ID).long()


@dataclass
class PTGenerator:
    """A trained PT for inference: ``generate(texts) -> [T_i, J, 3]`` (lifted [0, 1] space)."""

    model: ProgressiveTransformer
    vocab: Vocab
    n_joints: int
    variant: str = ""
    fps: float = 25.0
    device: str | torch.device = "cpu"
    joints: list[str] = field(default_factory=list)
    oracle_length: ClassVar[bool] = False  # PT predicts its lengths (the counter)

    @torch.no_grad()
    def generate(self, texts: list[str], batch_size: int = 32) -> list[np.ndarray]:
        """Greedy decoding of each text (KV cache), in batches of ``batch_size`` sentences."""
        if isinstance(texts, str):
            raise TypeError("generate takes a list of texts, got one str")
        check_positive(batch_size, "batch_size")
        self.model.eval()
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            ids, mask = text_batch(self.vocab, texts[start : start + batch_size])
            seqs = self.model.generate(ids.to(self.device), mask.to(self.device)).to_list()
            out += [s.reshape(len(s), self.n_joints, 3) for s in seqs]
        return out


def save_pt(directory: str | Path, model: ProgressiveTransformer, vocab: Vocab, meta: dict[str, Any]) -> Path:
    """Write a PT directory: ``config.json`` (the config and ``meta``: variant, n_joints, joints, fps),
    ``model.pt`` (float32, with ``noise_std``) and ``vocab.json``."""
    if len(vocab) != model.config.vocab_size:
        raise ValueError(f"save_pt: {len(vocab)} words but vocab_size={model.config.vocab_size}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / CONFIG_FILE).write_text(json.dumps({"progressive": asdict(model.config), **meta}, indent=1))
    save_weights(model, d)
    (d / VOCAB_FILE).write_text(json.dumps(vocab.itos, ensure_ascii=False))
    return d


def load_pt(directory: str | Path, device: str | torch.device = "cpu") -> PTGenerator:
    """Load a directory written by :func:`save_pt`: eval mode, frozen."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such model directory (run `dvc repro train_pt` first)")
    try:
        meta = json.loads((d / CONFIG_FILE).read_text())
        itos = json.loads((d / VOCAB_FILE).read_text(encoding="utf-8"))
        state = torch.load(d / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{d}: not a saved PT, missing {Path(exc.filename).name}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{d}: invalid JSON: {exc}") from exc
    try:
        config = ProgressiveConfig(**meta["progressive"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{d / CONFIG_FILE}: invalid PT config: {exc}") from exc
    vocab = Vocab(itos)
    if len(vocab) != config.vocab_size:
        raise ValueError(
            f"{d / VOCAB_FILE}: {len(vocab)} words but config says vocab_size={config.vocab_size}"
        )
    model = ProgressiveTransformer(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{d / WEIGHTS_FILE}: weights do not match {d / CONFIG_FILE}: {exc}") from exc
    model.to(device).eval().requires_grad_(False)
    return PTGenerator(
        model,
        vocab,
        int(meta["n_joints"]),
        str(meta.get("variant", "")),
        float(meta.get("fps", 25.0)),
        device,
        list(meta.get("joints") or []),
    )
