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

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from pipeline.baselines.common import check_variants, generator_fields, read_saved, write_saved
from pipeline.config import check_positive
from pipeline.models.backtranslator import Vocab, encode_batch
from pipeline.models.io import CONFIG_FILE, WEIGHTS_FILE, save_weights
from pipeline.models.progressive import ProgressiveConfig, ProgressiveTransformer

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
            ids, mask = encode_batch(self.vocab, texts[start : start + batch_size])
            seqs = self.model.generate(ids.to(self.device), mask.to(self.device)).to_list()
            out += [s.reshape(len(s), self.n_joints, 3) for s in seqs]
        return out


def save_pt(directory: str | Path, model: ProgressiveTransformer, vocab: Vocab, meta: dict[str, Any]) -> Path:
    """Write a PT directory: ``config.json`` (the config and ``meta``: variant, n_joints, joints, fps),
    ``model.pt`` (float32, with ``noise_std``) and ``vocab.json``."""
    d = write_saved(directory, "progressive", model.config, vocab, meta)
    save_weights(model, d)
    return d


def load_pt(directory: str | Path, device: str | torch.device = "cpu") -> PTGenerator:
    """Load a directory written by :func:`save_pt`: eval mode, frozen."""
    d = Path(directory)
    meta, config, vocab, state = read_saved(d, "PT", "train_pt", "progressive", ProgressiveConfig)
    model = ProgressiveTransformer(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{d / WEIGHTS_FILE}: weights do not match {d / CONFIG_FILE}: {exc}") from exc
    model.to(device).eval().requires_grad_(False)
    return PTGenerator(model, vocab, device=device, **generator_fields(meta))
