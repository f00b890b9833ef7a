"""NSLP-G as a trained product: the variants, the saved directory, text (+ lengths) -> poses.

Variants (:data:`VARIANTS`, params ``nslpg.variants``): ``base``, ``gs`` (gloss supervision at
``nslpg.gloss_weight``), ``base_ft`` and ``gs_ft`` (the VAE decoder fine-tuned jointly, NSLP-G's
"+ft"); :func:`variant_config` sets them on a :class:`~pipeline.models.nslpg.NSLPGConfig`.

:func:`save_nslpg` writes ``<dir>/config.json`` (``{"nslpg": config, "variant", "n_joints",
"joints", "fps"}``), ``model.pt`` (the NSLP-G weights without the VAE), ``vae/`` (the VAE it
decodes with, :func:`pipeline.models.io.save_model`: a copy of ``models/vae``, fine-tuned for the
``*_ft`` variants), ``vocab.json`` and, with GS, ``gloss_vocab.json``. :func:`load_nslpg` reads it
into an :class:`NSLPGGenerator`: ``generate(texts, lengths)`` -> ``[T_i, J, 3]`` float32 poses in
the lifted [0, 1] space. With ``length: oracle`` (NSLP-G's protocol, :attr:`NSLPGGenerator.oracle_length`)
the reference lengths must be given, so its DurACC is 1 by construction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.baselines.common import check_variants, generator_fields, read_saved, write_saved
from pipeline.config import check_positive
from pipeline.models.backtranslator import Vocab, encode_batch
from pipeline.models.io import CONFIG_FILE, WEIGHTS_FILE, save_model
from pipeline.models.nslpg import NSLPG, GlossSeqVocab, NSLPGConfig
from pipeline.models.vae import load_vae

GLOSS_VOCAB_FILE = "gloss_vocab.json"
VAE_DIR = "vae"
# variant -> (gloss supervision, fine-tuned VAE decoder)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "base": (False, False),
    "gs": (True, False),
    "base_ft": (False, True),
    "gs_ft": (True, True),
}


def variant_config(
    config: NSLPGConfig, variant: str, gloss_weight: float, gloss_vocab_size: int
) -> NSLPGConfig:
    """``config`` with the variant's gloss weight (``gloss_weight`` and the gloss vocabulary's size
    for GS, else 0) and ``finetune_vae``."""
    check_variants([variant], "nslpg.variants", list(VARIANTS))
    gs, ft = VARIANTS[variant]
    return replace(
        config,
        gloss_weight=gloss_weight if gs else 0.0,
        gloss_vocab_size=gloss_vocab_size if gs else 0,
        finetune_vae=ft,
    )


@dataclass
class NSLPGGenerator:
    """A trained NSLP-G for inference: ``generate(texts, lengths=None) -> [T_i, J, 3]``."""

    model: NSLPG
    vocab: Vocab
    n_joints: int
    variant: str = ""
    fps: float = 25.0
    device: str | torch.device = "cpu"
    joints: list[str] = field(default_factory=list)

    @property
    def oracle_length(self) -> bool:
        """True when the model decodes the given reference lengths (``length: oracle``)."""
        return self.model.config.length == "oracle"

    @torch.no_grad()
    def generate(
        self, texts: list[str], lengths: Sequence[int] | None = None, batch_size: int = 32
    ) -> list[np.ndarray]:
        """Poses per text; ``lengths`` (one per text) are required with ``length: oracle`` and
        override the regulator otherwise."""
        if isinstance(texts, str):
            raise TypeError("generate takes a list of texts, got one str")
        check_positive(batch_size, "batch_size")
        if lengths is not None and len(lengths) != len(texts):
            raise ValueError(f"{len(lengths)} lengths for {len(texts)} texts")
        self.model.eval()
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            ids, mask = encode_batch(self.vocab, texts[start : start + batch_size])
            given = None
            if lengths is not None:
                given = torch.as_tensor(list(lengths[start : start + batch_size]), dtype=torch.long)
                given = given.to(self.device)
            frames, t_hat = self.model.generate(ids.to(self.device), mask.to(self.device), given)
            poses = frames.float().cpu().numpy()
            out += [
                poses[i, : int(t)].reshape(int(t), self.n_joints, 3).astype(np.float32)
                for i, t in enumerate(t_hat.cpu().tolist())
            ]
        return out


def save_nslpg(
    directory: str | Path,
    model: NSLPG,
    vocab: Vocab,
    meta: dict[str, Any],
    glosses: GlossSeqVocab | None = None,
) -> Path:
    """Write an NSLP-G directory (see the module docstring); ``glosses`` is required with GS."""
    c = model.config
    if c.gloss_weight > 0 and (glosses is None or len(glosses) != c.gloss_vocab_size):
        raise ValueError(f"save_nslpg: GS needs the gloss vocabulary of {c.gloss_vocab_size} entries")
    d = write_saved(directory, "nslpg", c, vocab, meta)
    state = {
        k: v.detach().cpu().float().contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith("vae.")
    }
    torch.save(state, d / WEIGHTS_FILE)
    save_model(model.vae.cpu().float(), d / VAE_DIR)
    gloss_file = d / GLOSS_VOCAB_FILE
    if c.gloss_weight > 0 and glosses is not None:
        gloss_file.write_text(json.dumps(glosses.itos, ensure_ascii=False))
    else:
        gloss_file.unlink(missing_ok=True)
    return d


def load_nslpg(directory: str | Path, device: str | torch.device = "cpu") -> NSLPGGenerator:
    """Load a directory written by :func:`save_nslpg` (its own VAE copy): eval mode, frozen."""
    d = Path(directory)
    meta, config, vocab, state = read_saved(d, "NSLP-G", "train_nslpg", "nslpg", NSLPGConfig)
    model = NSLPG(config, load_vae(d / VAE_DIR))
    missing, unexpected = model.load_state_dict(state, strict=False)
    wrong = [k for k in missing if not k.startswith("vae.")] + list(unexpected)
    if wrong:
        raise ValueError(f"{d / WEIGHTS_FILE}: weights do not match {d / CONFIG_FILE}: {wrong[:5]}")
    model.to(device).eval().requires_grad_(False)
    return NSLPGGenerator(model, vocab, device=device, **generator_fields(meta))
