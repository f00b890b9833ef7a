"""Stage ``synthesize``: the embedded synthetic, PHOENIX-shaped signing corpus.

Reads params ``synthetic``, ``seed`` and ``data.source``; writes ``data/synthetic/`` (see
:mod:`pipeline.synth.corpus` and docs/ARCHITECTURE.md, section *synthesize*). When
``data.source`` is not ``synthetic`` the corpus is not needed: only ``README.txt`` is written
so that the stage's DVC out exists.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pipeline.config import PARAMS_FILE, load_params, section
from pipeline.synth.corpus import SynthConfig, check_seed, generate_corpus

OUT = Path("data/synthetic")
log = logging.getLogger("pipeline.synthesize")


def run(params: dict, out: str | Path = OUT) -> dict:
    """Validate params and (re)write ``out``; return the generation stats."""
    out = Path(out)
    source = section(params, "data").get("source")
    cfg = SynthConfig.from_params(section(params, "synthetic"))
    seed = check_seed(params.get("seed"))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if source != "synthetic":
        (out / "README.txt").write_text(
            f"The synthetic corpus is not used: {PARAMS_FILE} has data.source={source!r}.\n"
            "Set data.source: synthetic to generate it here.\n"
        )
        return {"skipped": True, "source": source}
    return generate_corpus(cfg, seed, out)


def main() -> None:
    """Entry point of ``python -m pipeline.synthesize``."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    stats = run(load_params())
    if stats.get("skipped"):
        log.info("data.source=%r: synthetic corpus not generated", stats["source"])
        return
    for split, c in stats["splits"].items():
        log.info(
            "%s: %d sequences, %d frames (mean %.1f, max %d), %d empty frames, %d two-person frames, "
            "%.1f%% joints undetected",
            split, c["sequences"], c["frames"], c["mean_frames"], c["max_frames"], c["empty_frames"],
            c["two_person_frames"], 100.0 * c["missing_joints"] / max(c["joints"], 1),
        )  # fmt: skip
    log.info("%d frames in %.1f s (%.0f frames/s)", stats["frames"], stats["seconds"], stats["frames_per_s"])


if __name__ == "__main__":
    main()
