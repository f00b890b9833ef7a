"""The params sections of the training stages, as dataclasses (one per section; see pipeline.config).

They live here, not in their stage modules, because two kinds of code read them: the stage that
trains (``pipeline/stages/<stage>.py``) and ``pipeline/stages/validate.py``, which checks every
section before DVC removes any stage's outputs — and no stage imports another stage.

``vae`` -> :class:`VAESection` (pretrain_vae), ``student`` -> :class:`StudentSection` and ``loss``
-> :class:`LossWeights` (train_student), ``fgd_encoder`` -> :class:`FGDEncoderSection`,
``backtranslator`` -> :class:`BackTranslatorSection`, ``progressive`` -> :class:`PTSection`
(train_pt), ``nslpg`` -> :class:`NSLPGSection` (train_nslpg); ``train`` is
:class:`pipeline.training.engine.TrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.baselines.common import check_variants
from pipeline.baselines.nslpg import VARIANTS as NSLPG_VARIANTS
from pipeline.baselines.pt import VARIANTS as PT_VARIANTS
from pipeline.config import ParamsError, param
from pipeline.models.backtranslator import BackTranslatorConfig
from pipeline.models.fgd_encoder import FGDEncoderConfig
from pipeline.models.nslpg import NSLPGConfig
from pipeline.models.progressive import FP_FRAMES, PT_NOISE_RATE, ProgressiveConfig
from pipeline.models.student import StudentConfig
from pipeline.models.vae import VAEConfig
from pipeline.training import engine


# -- pretrain_vae ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VAESection:
    """The ``vae`` params section: the model (hidden, latent, loss, kl_weight) and its training
    (epochs, batch_size in frames, lr, cpu_threads)."""

    fit: engine.FitConfig = param(flatten=True)
    model: VAEConfig = param(factory=VAEConfig, flatten=True)


# -- train_backtranslator ----------------------------------------------------------------------
@dataclass(frozen=True)
class BackTranslatorSection:
    """The ``backtranslator`` params section: the model (:class:`BackTranslatorConfig`) and how it
    is trained."""

    fit: engine.FitConfig = param(flatten=True)
    val_every: int = param(gt=0)  # beam dev decoding (BLEU-4 model selection) every N epochs and at the end
    min_count: int = param(gt=0)  # words seen fewer times in train map to <unk>
    model: BackTranslatorConfig = param(factory=BackTranslatorConfig, flatten=True)
    noise: float = param(0.0, ge=0)  # std of Gaussian noise added to training frames
    label_smoothing: float = param(0.1, ge=0, lt=1)
    weight_decay: float = param(0.01, ge=0)
    gloss_weight: float = param(1.0, ge=0)  # weight of the CTC gloss loss; 0 = no gloss head
    length_penalties: tuple[float, ...] = param((0.0, 0.5, 1.0, 1.5, 2.0))  # alphas tried on dev

    def __post_init__(self) -> None:
        bad = [a for a in self.length_penalties if a < 0]
        if bad:
            raise ParamsError(f"backtranslator.length_penalties: {bad[0]} is invalid; expected values >= 0")


# -- train_fgd_encoder -------------------------------------------------------------------------
@dataclass(frozen=True)
class FGDEncoderSection:
    """The ``fgd_encoder`` params section: the model (:class:`FGDEncoderConfig`, with the window and
    the evaluation stride) and how it is trained."""

    fit: engine.FitConfig = param(flatten=True)
    train_stride: int = param(gt=0)  # window stride when cutting the train sequences for training
    warmup: float = param(0.05, ge=0, lt=1)  # fraction of the steps with a linear lr warm-up, then cosine
    model: FGDEncoderConfig = param(factory=FGDEncoderConfig, flatten=True)


# -- train_nslpg -------------------------------------------------------------------------------
@dataclass(frozen=True)
class NSLPGSection:
    """The ``nslpg`` params section: the model (:class:`NSLPGConfig`), its variants and how they
    are trained."""

    fit: engine.FitConfig = param(flatten=True)
    model: NSLPGConfig = param(factory=NSLPGConfig, flatten=True)
    variants: list[str] = param(
        ["base", "gs", "base_ft", "gs_ft"]
    )  # names of pipeline.baselines.nslpg.VARIANTS
    gloss_weight: float = param(
        0.1, gt=0
    )  # weight of the gloss loss of the GS variants (NSLP-G's newer code)
    weight_decay: float = param(0.0, ge=0)  # AdamW; 0 = Adam (NSLP-G)
    min_count: int = param(1, gt=0)  # train words seen fewer times map to <unk>
    max_frames: int | None = param(None, gt=0)  # T_max of the regulator; null = the longest train sequence
    seed: int | None = param(None, ge=0)  # training seed of this stage alone (null = the global seed)

    def __post_init__(self) -> None:
        check_variants(self.variants, "nslpg.variants", list(NSLPG_VARIANTS))

    @property
    def gloss_supervised(self) -> bool:
        """Whether a listed variant trains the gloss decoder."""
        return any(NSLPG_VARIANTS[v][0] for v in self.variants)


# -- train_pt ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PTSection:
    """The ``progressive`` params section: the model (:class:`ProgressiveConfig`), its variants and
    how they are trained."""

    fit: engine.FitConfig = param(flatten=True)
    model: ProgressiveConfig = param(factory=ProgressiveConfig, flatten=True)
    variants: list[str] = param(["base", "fpgn"])  # names of pipeline.baselines.pt.VARIANTS
    fp_frames: int = param(FP_FRAMES, gt=1)  # future frames N of the FP variants (PT: 10)
    noise_rate: float = param(PT_NOISE_RATE, gt=0)  # GN rate of the GN variants (PT paper: 5)
    weight_decay: float = param(0.0, ge=0)  # AdamW; 0 = Adam (PT)
    min_count: int = param(1, gt=0)  # train words seen fewer times map to <unk>
    max_frames: int | None = param(None, gt=0)  # T_max; null = the longest train sequence
    seed: int | None = param(None, ge=0)  # training seed of this stage alone (null = the global seed)

    def __post_init__(self) -> None:
        check_variants(self.variants, "progressive.variants", list(PT_VARIANTS))


# -- train_student -----------------------------------------------------------------------------
@dataclass(frozen=True)
class StudentSection:
    """The ``student`` params section: the model (:class:`StudentConfig`) and how it is trained."""

    fit: engine.FitConfig = param(flatten=True)
    model: StudentConfig = param(factory=StudentConfig, flatten=True)
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: decay to 0 over the epochs, per epoch
    weight_decay: float = param(0.01, ge=0)
    bert_lr: float | None = param(
        None, gt=0
    )  # lr of the fine-tuned pretrained layers; null = lr (one lr, as the paper)
    max_frames: int | None = param(None, gt=0)  # T_max; null = the longest train sequence
    on_long: Literal["raise", "truncate"] = "raise"  # sequences longer than T_max
    cache_encoder: bool = True  # run the encoder's fixed part once per sentence before fitting
    seed: int | None = param(None, ge=0)  # training seed of this stage alone (null = the global seed)


@dataclass(frozen=True)
class LossWeights:
    """The ``loss`` params section: the weights of Eq. 11 (``distil: 0`` = the w/o-KD ablation) and
    of our added pose-velocity term (``motion``, 0 = the paper)."""

    pose: float = param(1.0, ge=0)
    distil: float = param(1.0, ge=0)
    length: float = param(1.0, ge=0)
    motion: float = param(0.0, ge=0)  # MSE of frame differences of PGM(Z_lang) vs Y (not in the paper)
