"""Where do the student's hands shrink? Realism ratios at each step of the teacher-student chain.

    python -m benchmarks.hand_shrink [--split dev] [--vae-only] [--write-docs]

Uses ``data/lifted``, ``models/vae`` and ``models/student`` (run ``dvc repro`` first). For every
body part, the ratio of mean bone length and of motion SD (frame-to-frame displacement) to the
ground truth (:func:`pipeline.evaluation.metrics.realism_ratios`, body-centred units) of:

- ``vae_recon``: the VAE's reconstruction of the ground truth, PGM(LGM mean(y)) frame by frame —
  what the decoder can express at all;
- ``vae_mean_latent``: PGM of the train-mean latent, every frame — the pose the decoder returns
  when the latent regresses all the way to the mean;
- ``student``: the student's output for the split's texts (its own lengths).

A shrink already present in ``vae_recon`` points at the decoder (BCE/MSE reconstruction of small,
fast hand joints); one that appears only in ``student`` points at the latent regression (the
student's latents pulled towards the mean). ``--vae-only`` leaves the student out (no
``models/student`` needed: VAE work before the student is trained). Prints one JSON object;
``--write-docs`` replaces the body of "## Where the hands shrink" in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.docs import write_section  # noqa: E402
from pipeline.data.skeleton import part_bones, part_slices  # noqa: E402
from pipeline.data.store import SplitStore  # noqa: E402
from pipeline.data.transform import UnitRange  # noqa: E402
from pipeline.evaluation.metrics import realism_ratios  # noqa: E402
from pipeline.inference import load_student  # noqa: E402
from pipeline.models.vae import load_vae  # noqa: E402


@torch.no_grad()
def chain_ratios(split: str = "dev", student: bool = True) -> dict[str, Any]:
    """Realism ratios of the VAE reconstruction, the VAE's mean-latent pose and (``student``) the student."""
    lifted = ROOT / "data" / "lifted"
    store, train = SplitStore.load(lifted / split), SplitStore.load(lifted / "train")
    unit = UnitRange.load(lifted / "transform.json")
    refs = [np.asarray(s, np.float32) for s in store.sequences()]
    texts = [e["text"] for e in store.index]
    n_joints = refs[0].shape[1]
    vae = load_vae(ROOT / "models" / "vae")

    def recon(seq: np.ndarray) -> np.ndarray:
        y = torch.from_numpy(np.clip(seq, 0, 1).reshape(len(seq), -1))
        return vae.decode(vae.encode(y)[0]).numpy().reshape(seq.shape)

    train_frames = np.clip(np.asarray(train.poses, np.float32), 0, 1).reshape(len(train.poses), -1)
    mu_train = vae.encode(torch.from_numpy(train_frames))[0]
    mean_pose = vae.decode(mu_train.mean(0, keepdim=True)).numpy().reshape(1, n_joints, 3)
    systems = {
        "vae_recon": [recon(s) for s in refs],
        "vae_mean_latent": [np.repeat(mean_pose, len(s), axis=0) for s in refs],
    }
    if student:
        generator = load_student(ROOT / "models" / "student", "cpu")
        systems["student"] = [np.asarray(g, np.float32) for g in generator.generate(texts, batch_size=32)]

    def body(seqs: list[np.ndarray]) -> list[np.ndarray]:
        return [unit.inverse(np.asarray(s, np.float64)) for s in seqs]

    bones, parts = part_bones(n_joints), part_slices(n_joints)
    ref_body = body(refs)
    out = {name: realism_ratios(body(seqs), ref_body, bones, parts) for name, seqs in systems.items()}
    return {"split": split, "sentences": len(refs), "joints": n_joints, "ratios": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="dev")
    ap.add_argument("--vae-only", action="store_true", help="leave the student out")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = chain_ratios(args.split, student=not args.vae_only)
    print(json.dumps(result, indent=1))
    if args.write_docs:
        write_docs(result)


def write_docs(r: dict[str, Any]) -> None:
    parts = list(next(iter(r["ratios"].values())))
    head = "| system | " + " | ".join(f"{p} bones | {p} motion" for p in parts) + " |\n"
    head += "|---|" + "---:|" * (2 * len(parts)) + "\n"
    rows = "".join(
        f"| {name} | "
        + " | ".join(f"{v[p]['bone_ratio']:.2f} | {v[p]['motion_ratio']:.2f}" for p in parts)
        + " |\n"
        for name, v in r["ratios"].items()
    )
    body = (
        "Script: `benchmarks/hand_shrink.py` (`python -m benchmarks.hand_shrink --write-docs`), the "
        f"{r['split']} split ({r['sentences']} sentences, {r['joints']} joints), committed default models. "
        "Ratios to the ground truth (body-centred units; 1 = as real signing): the VAE's reconstruction "
        "PGM(LGM(y)), the pose PGM gives for the train-mean latent (every frame), and the student.\n\n"
        + head
        + rows
    )
    write_section("Where the hands shrink", body)


if __name__ == "__main__":
    main()
