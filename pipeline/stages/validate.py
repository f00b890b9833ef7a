"""Stage ``validate``: check all of params.yaml before any stage's outputs are touched.

DVC removes a stage's outs just before it runs the stage's command, so a stage that finds a bad
param in its own section has already lost its previous outputs. Every stage depends on this
stage's out, so DVC runs it first whenever a param changed; it checks every section with the
dataclass its stage reads (unknown, missing and mistyped keys, ranges, allowed values; integers
are integers), the values Lightning checks only when a Trainer is built (``train.accelerator``,
``strategy``, ``precision``), the systems ``evaluate`` scores against the trained variants, and
that no key set with ``dvc exp run -S`` is silently replaced by the selected profile
(:func:`pipeline.config.profile_conflicts`, against params.yaml of the git commit ``HEAD``; not
checked outside git). Every problem found is printed, one per line, and the stage fails.

Writes ``data/params_valid.json``, whose content never changes (``persist: true`` in dvc.yaml: DVC
does not delete it first, so a failed check leaves it, like everything else, as it was): a valid
change of one section reruns only the stages that read it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline.baselines.nslpg import VARIANTS as NSLPG_VARIANTS
from pipeline.baselines.pt import VARIANTS as PT_VARIANTS
from pipeline.config import (
    PARAMS_FILE,
    ParamsError,
    Stage,
    check_seed,
    parse_section,
    profile_conflicts,
)
from pipeline.data.policy import DataConfig
from pipeline.evaluation.scoring import EvaluateConfig, baseline_of
from pipeline.lifting.config import LiftConfig
from pipeline.preprocess.normalise import NormaliseConfig
from pipeline.synth.corpus import SynthConfig
from pipeline.training.engine import TrainConfig, check_trainer
from pipeline.training.sections import (
    BackTranslatorSection,
    FGDEncoderSection,
    LossWeights,
    NSLPGSection,
    PTSection,
    StudentSection,
    VAESection,
)

OUT = Path("data/params_valid.json")
SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "synthetic": SynthConfig,
    "normalise": NormaliseConfig,
    "lift": LiftConfig,
    "vae": VAESection,
    "student": StudentSection,
    "loss": LossWeights,
    "train": TrainConfig,
    "fgd_encoder": FGDEncoderSection,
    "backtranslator": BackTranslatorSection,
    "progressive": PTSection,
    "nslpg": NSLPGSection,
    "evaluate": EvaluateConfig,
}
STAGE = Stage("validate", ("seed", *SECTIONS), (), (OUT,))
CONTENT = {
    "params.yaml": "valid",
    "note": "written by the validate stage; the content never changes (see pipeline/stages/validate.py)",
}
log = logging.getLogger(__name__)


def committed_params(path: str = PARAMS_FILE) -> dict[str, Any] | None:
    """params.yaml as committed in git ``HEAD`` (what ``dvc exp run -S`` starts from); None outside
    git or when it is not committed."""
    try:
        proc = subprocess.run(
            ["git", "show", f"HEAD:./{path}"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    try:
        doc = yaml.safe_load(proc.stdout)
    except yaml.YAMLError:
        return None
    return doc if isinstance(doc, dict) else None


def problems(params: dict[str, Any], raw: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """Every problem of the resolved ``params`` (and of ``raw`` against ``baseline``), one message
    each; empty when all is valid."""
    out: list[str] = []
    parsed: dict[str, Any] = {}

    def attempt(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ParamsError as exc:
            out.append(str(exc))
            return None

    attempt(check_seed, params.get("seed"))
    for name, cls in SECTIONS.items():
        parsed[name] = attempt(parse_section, params, name, cls)
    if parsed["train"] is not None:
        attempt(check_trainer, parsed["train"])
    tracking = params.get("tracking", {})
    if not isinstance(tracking, dict) or not isinstance(tracking.get("experiment", ""), str):
        out.append(f"{PARAMS_FILE}: tracking.experiment must be a string, got {tracking!r}")
    evaluate = parsed["evaluate"]
    trained = {
        "pt": (parsed["progressive"], "progressive", PT_VARIANTS),
        "nslpg": (parsed["nslpg"], "nslpg", NSLPG_VARIANTS),
    }
    for key in ("systems", "figure_systems"):
        for i, system in enumerate(getattr(evaluate, key, None) or []):
            family_variant = baseline_of(str(system))
            if family_variant is None:
                continue
            family, variant = family_variant
            sec, name, _ = trained[family]
            if sec is not None and variant not in sec.variants:
                out.append(
                    f"{PARAMS_FILE}: evaluate.{key}[{i}]={system!r}: {variant!r} is not in "
                    f"{name}.variants={list(sec.variants)} (train_{family} would not train it)"
                )
    out.extend(f"{PARAMS_FILE}: {msg}" for msg in profile_conflicts(raw, baseline))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pipeline.stages.validate``."""
    try:
        params = STAGE.start(__doc__, argv)
    except ParamsError as exc:  # unreadable params.yaml or an unknown profile
        sys.exit(f"validate: {exc}")
    raw = yaml.safe_load(Path(PARAMS_FILE).read_text())
    found = problems(params.resolved, raw, committed_params())
    if found:
        for msg in found:
            log.error("%s", msg)
        sys.exit(f"validate: {len(found)} problem(s) in {PARAMS_FILE}; no stage ran, no output changed")
    STAGE.write_json(OUT, CONTENT)
    STAGE.summary(f"{PARAMS_FILE} valid (profile {params.get('profile', 'default')!r})")


if __name__ == "__main__":
    main()
