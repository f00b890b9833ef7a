"""Statistics of the synthetic corpus beside PHOENIX-2014T's published ones (issue 13's baseline).

    python -m benchmarks.corpus_stats [--write-docs]

Samples the sentences exactly as the ``synthesize`` stage does (``sample_corpus`` with the
generator ``default_rng([seed, 7])``, the params' ``synthetic`` section) at the default sizes and at
``profiles.paper`` sizes, and the frame count of each sentence from the motion plan
(``build_controls``, same per-sentence generator and signer as the stage; no poses are drawn). Reports
per corpus: sentences per split, train vocabulary (German words, glosses), train tokens, singletons
(train types seen once), dev/test out-of-vocabulary tokens, words / glosses / frames per sentence
(mean and range), the share of the train tokens covered by the 10 most frequent types, and the
slope of log frequency over log rank (Zipf: about -1 for natural text). PHOENIX-2014T values are the
ones stated in issue 13 (Camgoz et al. 2018, Table 1; not re-checked against the paper here); ``–`` = no
PHOENIX value. Also: the train vocabulary after 10/25/50/100 % of the train sentences (type/token
curve) and the spread of words / glosses per sentence (std, 10/50/90 % quantiles).
Prints one JSON object; ``--write-docs`` replaces the body of "## Corpus statistics vs PHOENIX-2014T"
in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.docs import write_section  # noqa: E402
from pipeline.config import check_seed, deep_merge, parse_section, read_yaml  # noqa: E402
from pipeline.data.store import SPLITS  # noqa: E402
from pipeline.synth.body import make_signers  # noqa: E402
from pipeline.synth.corpus import SynthConfig  # noqa: E402
from pipeline.synth.grammar import sample_corpus  # noqa: E402
from pipeline.synth.motion import build_controls  # noqa: E402

PHOENIX = {  # Camgoz et al. 2018, Table 1, as stated in issue 13 (not re-checked against the paper here)
    "sentences": {"train": 7096, "dev": 519, "test": 642},
    "words": {
        "vocab": 2887, "vocab_dev": 951, "vocab_test": 1001, "tokens": 99081, "tokens_dev": 6820,
        "tokens_test": 7816, "singletons": 1077, "oov_dev": 57, "oov_test": 60, "per_sentence": 14.0,
    },
    "glosses": {
        "vocab": 1066, "vocab_dev": 393, "vocab_test": 411, "tokens": 67781, "tokens_dev": 3745,
        "tokens_test": 4257, "singletons": 337, "oov_dev": 19, "oov_test": 22, "per_sentence": 9.5,
    },
    "frames_per_sentence": 116.0,
}  # fmt: skip
CURVE = (0.1, 0.25, 0.5, 1.0)  # type/token curve: train vocabulary after these shares of the train sentences


def token_stats(train: list[list[str]], held: dict[str, list[list[str]]]) -> dict[str, Any]:
    """Vocabulary, tokens, singletons, OOV and Zipf slope of ``train`` token lists (+ dev/test OOV)."""
    counts = Counter(t for s in train for t in s)
    freq = np.array(sorted(counts.values(), reverse=True), float)
    ranks = np.arange(1, len(freq) + 1)
    slope = float(np.polyfit(np.log(ranks), np.log(freq), 1)[0]) if len(freq) > 1 else float("nan")
    lengths = np.array([len(s) for s in train])
    out = {
        "vocab": len(counts),
        "tokens": int(freq.sum()),
        "singletons": int((freq == 1).sum()),
        "curve": {f"{q:.0%}": len({t for s in train[: round(q * len(train))] for t in s}) for q in CURVE},
        "top10_share": float(freq[:10].sum() / freq.sum()),
        "zipf_slope": slope,
        "per_sentence": float(np.mean(lengths)),
        "range": [int(min(lengths)), int(max(lengths))],
        "std": float(np.std(lengths)),
        "quantiles_10_50_90": [float(v) for v in np.quantile(lengths, [0.1, 0.5, 0.9])],
    }
    for split, sents in held.items():
        toks = [t for s in sents for t in s]
        oov = [t for t in toks if t not in counts]
        out[f"oov_{split}"] = {
            "vocab": len(set(toks)),
            "tokens": len(oov),
            "rate": len(oov) / max(1, len(toks)),
            "types": len(set(oov)),
        }
    return out


def corpus_stats(cfg: SynthConfig, seed: int) -> dict[str, Any]:
    """Statistics of the corpus ``synthesize`` would write with ``cfg`` and ``seed``."""
    t0 = time.perf_counter()
    sentences = sample_corpus(
        np.random.default_rng([seed, 7]), cfg.sizes, cfg.min_glosses, cfg.max_glosses, cfg.text
    )
    t_text = time.perf_counter() - t0
    signers = make_signers(cfg.n_signers, np.random.default_rng([seed, 11]), cfg.signing.left_handed)
    frames = []
    for split_id, split in enumerate(SPLITS):
        for i, (_, gloss) in enumerate(sentences[split]):
            rng = np.random.default_rng([seed, split_id, i])
            signer = signers[int(rng.integers(len(signers)))]
            controls = build_controls(gloss.split(), signer, rng, cfg.max_frames, cfg.fps, cfg.signing)
            frames.append(len(controls.palm_r))
    words = {s: [t.lower().split()[:-1] for t, _ in sentences[s]] for s in SPLITS}  # final "." dropped
    glosses = {s: [g.split() for _, g in sentences[s]] for s in SPLITS}
    return {
        "sentences": {s: len(sentences[s]) for s in SPLITS},
        "words": token_stats(words["train"], {s: words[s] for s in ("dev", "test")}),
        "glosses": token_stats(glosses["train"], {s: glosses[s] for s in ("dev", "test")}),
        "distinct_sentences_train": len({t for t, _ in sentences["train"]}),
        "frames_per_sentence": float(np.mean(frames)),
        "frames_range": [int(min(frames)), int(max(frames))],
        "seconds_text": round(t_text, 3),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    result = {"phoenix": PHOENIX}
    raw = read_yaml(ROOT / "params.yaml", "params file", ValueError)
    for profile in ("default", "paper"):
        params = deep_merge({k: v for k, v in raw.items() if k != "profiles"}, raw["profiles"][profile])
        cfg = parse_section(params, "synthetic", SynthConfig)
        result[profile] = corpus_stats(cfg, check_seed(params["seed"]))
    print(json.dumps(result, indent=1))
    if args.write_docs:
        write_docs(result)


def _fmt(v: Any, digits: int = 0) -> str:
    return "–" if v is None else (f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}")


def _splits(counts: dict[str, int]) -> str:
    return " / ".join(f"{counts[s]:,}" for s in SPLITS)


def write_docs(r: dict[str, Any]) -> None:
    d, p, ph = r["default"], r["paper"], r["phoenix"]
    rows = [
        ("sentences train / dev / test", *(_splits(c["sentences"]) for c in (d, p, ph))),
        ("German word types (train)", _fmt(d["words"]["vocab"]), _fmt(p["words"]["vocab"]), "2,887"),
        ("gloss types (train)", _fmt(d["glosses"]["vocab"]), _fmt(p["glosses"]["vocab"]), "1,066"),
        (
            "distinct train sentences",
            _fmt(d["distinct_sentences_train"]),
            _fmt(p["distinct_sentences_train"]),
            "–",
        ),
    ]
    for key, label in (("words", "words"), ("glosses", "glosses")):
        a, b = d[key], p[key]
        rows += [
            (f"{label} per sentence (range)", f"{a['per_sentence']:.1f} ({a['range'][0]}–{a['range'][1]})",
             f"{b['per_sentence']:.1f} ({b['range'][0]}–{b['range'][1]})", f"~{ph[key]['per_sentence']:g}"),
            (f"{label}: train singletons", _fmt(a["singletons"]), _fmt(b["singletons"]),
             _fmt(ph[key]["singletons"])),
            (f"{label}: train types at 10 / 25 / 50 / 100 % of train",
             *(" / ".join(f"{v:,}" for v in c["curve"].values()) for c in (a, b)), "–"),
            (f"{label} per sentence: std; 10 / 50 / 90 % quantiles",
             *(f"{c['std']:.1f}; " + " / ".join(f"{v:g}" for v in c["quantiles_10_50_90"])
               for c in (a, b)), "–"),
            (f"{label}: top-10 types' share of tokens", *(f"{c['top10_share']:.0%}" for c in (a, b)), "–"),
            (f"{label}: Zipf slope (log freq / log rank)", *(f"{c['zipf_slope']:.2f}" for c in (a, b)), "–"),
            (f"{label}: dev / test OOV tokens", f"{a['oov_dev']['tokens']} / {a['oov_test']['tokens']}",
             f"{b['oov_dev']['tokens']} / {b['oov_test']['tokens']}",
             f"{ph[key]['oov_dev']} / {ph[key]['oov_test']}"),
            (f"{label}: dev / test vocabulary", f"{a['oov_dev']['vocab']:,} / {a['oov_test']['vocab']:,}",
             f"{b['oov_dev']['vocab']:,} / {b['oov_test']['vocab']:,}",
             f"{ph[key]['vocab_dev']:,} / {ph[key]['vocab_test']:,}"),
            (f"{label}: train tokens", _fmt(a["tokens"]), _fmt(b["tokens"]), _fmt(ph[key]["tokens"])),
        ]  # fmt: skip
    rows.append(
        (
            "frames per sentence (range)",
            f"{d['frames_per_sentence']:.1f} ({d['frames_range'][0]}–{d['frames_range'][1]})",
            f"{p['frames_per_sentence']:.1f} ({p['frames_range'][0]}–{p['frames_range'][1]})",
            "~116",
        )
    )
    table = "| | ours, default | ours, `profile=paper` sizes | PHOENIX-2014T |\n|---|---:|---:|---:|\n"
    table += "".join(f"| {' | '.join(row)} |\n" for row in rows)
    body = (
        "Script: `benchmarks/corpus_stats.py` (`python -m benchmarks.corpus_stats --write-docs`): the "
        "sentences and frame counts `synthesize` draws (no poses). PHOENIX-2014T: the values stated in "
        "issue 13 (Camgoz et al. 2018, Table 1; not re-checked here); `–` = no PHOENIX value.\n\n"
        + table
        + "\n"
        f"Sampling took {d['seconds']} s (default) and {p['seconds']} s (paper sizes) on "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), Python "
        f"{platform.python_version()}.\n"
    )
    write_section("Corpus statistics vs PHOENIX-2014T", body)


if __name__ == "__main__":
    main()
