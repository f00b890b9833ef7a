"""Stage ``synthesize``: the embedded synthetic, PHOENIX-shaped signing corpus.

Writes ``data/synthetic/``: OpenPose JSON frames, PHOENIX corpus files, the ground-truth 3D
sidecar ``gt3d/``, ``signers.json`` and ``stats.json`` (see :mod:`pipeline.synth.corpus` and
docs/ARCHITECTURE.md, section *synthesize*). When ``data.source`` is not ``synthetic`` the corpus
is not needed and is left as it is (the out is ``persist: true`` in dvc.yaml, so DVC does not delete
it either): a corpus generated earlier survives choosing another source; without one only
``README.txt`` is written, so that the stage's DVC out exists. With ``synthetic`` the directory is
emptied and regenerated (byte-deterministic for the same params).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.config import PARAMS_FILE, Stage, check_seed, parse_section
from pipeline.data.policy import DataConfig
from pipeline.synth.corpus import SynthConfig, generate_corpus
from pipeline.training import tracking

DST = Path("data/synthetic")
STAGE = Stage("synthesize", ("seed", "data.source", "synthetic"), (), (DST,))
log = logging.getLogger(__name__)


def run(params: dict[str, Any], out: str | Path = DST) -> dict[str, Any]:
    """Validate params and (re)write ``out``; return the generation stats."""
    out = Path(out)
    source = parse_section(params, "data", DataConfig).source
    cfg = parse_section(params, "synthetic", SynthConfig)
    seed = check_seed(params["seed"])
    if source != "synthetic":
        if out.is_dir() and any(out.iterdir()):
            return {"skipped": True, "source": source, "kept": True}
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.txt").write_text(
            f"The synthetic corpus is not used: {PARAMS_FILE} has data.source={source!r}.\n"
            "Set data.source: synthetic to generate it here.\n"
        )
        return {"skipped": True, "source": source, "kept": False}
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return generate_corpus(cfg, seed, out)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pipeline.stages.synthesize``."""
    params = STAGE.start(__doc__, argv)
    stats = run(params)
    with tracking.stage_run(STAGE.name, params) as mlflow_run:  # the counts in MLflow (child and parent run)
        tracking.log_final_metrics(mlflow_run, stats)
    if stats.get("skipped"):
        kept = "the existing corpus left as it is" if stats["kept"] else "none written"
        STAGE.summary(f"data.source={stats['source']!r}: synthetic corpus not generated ({kept})")
        return
    for split, c in stats["splits"].items():
        log.debug(
            "%s: %d sequences, %d frames (mean %.1f, max %d), %d empty frames, %d two-person frames, "
            "%.1f%% joints undetected",
            split, c["sequences"], c["frames"], c["mean_frames"], c["max_frames"], c["empty_frames"],
            c["two_person_frames"], 100.0 * c["missing_joints"] / max(c["joints"], 1),
        )  # fmt: skip
    counts = "/".join(str(c["sequences"]) for c in stats["splits"].values())
    STAGE.summary(
        f"{counts} sequences ({'/'.join(stats['splits'])}), {stats['frames']} frames, "
        f"{stats['frames_per_s']:.0f} frames/s"
    )


if __name__ == "__main__":
    main()
