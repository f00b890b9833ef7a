"""Translation latency of the trained student: milliseconds per sentence at batch 1 and batch 32.

Times :meth:`pipeline.inference.Translator.translate` (tokenise, text encoder, length regulator,
NAR decoder, PGM decode of all T_max frames, cut to T_hat, inverse lift map) on ``--sentences``
German weather sentences built from fixed templates, in batches of each ``--batch-sizes`` value,
after ``--warmup`` untimed passes; reports the median over ``--repeats`` of (wall time / sentences)
per device. ``--device auto`` times the CPU (``--threads`` torch threads, default 2) and, when CUDA
is available, the GPU too. Imports only torch, transformers, numpy, the offline MiniLM package and
project modules (no MLflow, DVC, Lightning, orjson or pose-format), so it runs on a bare GPU box:

    python -m benchmarks.translate_latency --model models/student            # CPU (+ cuda if present)
    python -m benchmarks.translate_latency --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

DAYS = ["am montag", "am dienstag", "morgen", "heute nacht", "am wochenende", "in der neuen woche"]
PLACES = ["im norden", "im sueden", "an der kueste", "in den alpen", "im osten", "im nordwesten"]
WEATHER = [
    "regnet es",
    "scheint die sonne",
    "gibt es gewitter",
    "ist es meist trocken",
    "schneit es",
    "weht ein frischer wind",
    "bilden sich nebelfelder",
]
TAILS = ["", " bei temperaturen um zehn grad", " und es wird kaelter", " mit einzelnen schauern"]


def sentences(n: int) -> list[str]:
    """``n`` deterministic sentences of 6-16 words and tokens (``day + weather + place + tail``)."""
    out = []
    for i in range(n):
        day, place = DAYS[i % len(DAYS)], PLACES[(i // 2) % len(PLACES)]
        weather, tail = WEATHER[(i // 3) % len(WEATHER)], TAILS[(i // 5) % len(TAILS)]
        out.append(f"{day} {weather} {place}{tail} .")
    return out


def machine(device: torch.device) -> dict[str, Any]:
    """What ran it: CPU, cores, load average, torch version, GPU name."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__}
    if hasattr(os, "getloadavg"):
        info["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def time_device(
    model: Path, device: torch.device, batch_sizes: list[int], texts: list[str], repeats: int, warmup: int
) -> dict[str, Any]:
    """Median ms per sentence for each batch size on ``device``."""
    from pipeline.inference import Translator

    t0 = time.perf_counter()
    translator = Translator.load(model, device=device)
    result: dict[str, Any] = {"load_s": round(time.perf_counter() - t0, 2), "machine": machine(device)}
    if device.type == "cpu":
        result["threads"] = torch.get_num_threads()
    frames = [len(p) for p in translator.translate(texts[:8])]
    result["mean_frames"] = round(sum(frames) / len(frames), 1)
    for b in batch_sizes:
        translator.batch_size = b
        for _ in range(warmup):
            translator.translate(texts[: max(b, 1)])
        per_sentence = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            translator.translate(texts)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            per_sentence.append((time.perf_counter() - t) * 1000 / len(texts))
        result[f"batch_{b}"] = {
            "ms_per_sentence": round(statistics.median(per_sentence), 2),
            "min_ms": round(min(per_sentence), 2),
            "max_ms": round(max(per_sentence), 2),
        }
        print(f"{device} batch {b}: {result[f'batch_{b}']['ms_per_sentence']} ms/sentence", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI; prints the results as JSON (and writes ``--json``)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.translate_latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", default="models/student", help="student directory (default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (cpu, + cuda when available) | cpu | cuda[:N]")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--sentences", type=int, default=64, help="sentences per timed pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    model = Path(args.model)
    if not (model / "config.json").is_file():
        print(
            f"translate_latency: error: {model} is not a trained student directory (no config.json); "
            "run `dvc repro train_student` or pass --model DIR",
            file=sys.stderr,
        )
        return 1
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if args.device == "auto":
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
    else:
        devices = [torch.device(args.device)]
    texts = sentences(args.sentences)
    results: dict[str, Any] = {"model": str(model), "sentences": len(texts), "repeats": args.repeats}
    with torch.inference_mode():
        for device in devices:
            results[str(device)] = time_device(
                model, device, args.batch_sizes, texts, args.repeats, args.warmup
            )
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
