"""Evaluation: baselines, per-system scoring (GT is perfect), the FGD windows, params, the markdown table,
and the stage's metrics/plot/table/figure files."""

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from conftest import lifted_store, save_lifted

from pipeline.baselines.nslpg import save_nslpg
from pipeline.baselines.nslpg import variant_config as nslpg_variant
from pipeline.baselines.pt import save_pt
from pipeline.baselines.pt import variant_config as pt_variant
from pipeline.config import ParamsError, load_params, parse_section
from pipeline.data.store import SplitStore, StoreError
from pipeline.evaluation import figures, render
from pipeline.evaluation.metrics import MetricError
from pipeline.evaluation.scoring import (
    EvaluateConfig,
    GeneratedSystem,
    Scorer,
    WindowFeatures,
    baseline_of,
    baselines,
    evaluate,
    references,
)
from pipeline.evaluation.tables import SPAN_RE, eval_table, system_label
from pipeline.models.backtranslator import BackTranslator, BackTranslatorConfig, Vocab, save_backtranslator
from pipeline.models.fgd_encoder import FGDEncoder, FGDEncoderConfig
from pipeline.models.io import save_model
from pipeline.models.nslpg import NSLPG, GlossSeqVocab, NSLPGConfig
from pipeline.models.progressive import ProgressiveConfig, ProgressiveTransformer
from pipeline.models.vae import VAE, VAEConfig
from pipeline.stages.evaluate import FIG3, FIG3_GIF, FIG4, load_generators, main, render_figures

TEXTS = ["am montag regen .", "im norden sonne .", "morgen wird es kalt ."]
EVAL = {
    "splits": ["dev"],
    "systems": ["gt"],
    "margin": 25,
    "intervals": [[0, 50]],
    "prefixes": [20],
    "batch_size": 4,
}


def _store(lengths: Sequence[int], rng: np.random.Generator, joints: int = 4) -> SplitStore:
    """Smooth random motion in [0, 1], one sequence per length; texts cycle through :data:`TEXTS`."""
    seqs = []
    for n in lengths:
        t = np.arange(n)[:, None, None]
        freq, phase = rng.uniform(0.02, 0.2, (1, joints, 3)), rng.uniform(0, 6, (1, joints, 3))
        seqs.append((0.5 + 0.3 * np.sin(freq * t + phase)).astype(np.float32))
    return lifted_store(seqs, texts=[TEXTS[i % 3] for i in range(len(seqs))])


def _models(stride: int = 34) -> tuple[FGDEncoder, BackTranslator, Vocab]:
    """A random tiny FGD encoder (window 34, ``stride``) and back-translator for 4 joints."""
    torch.manual_seed(0)
    config = FGDEncoderConfig(n_features=12, stride=stride, d_model=16, heads=2, layers=1, ff=32, latent=4)
    encoder = FGDEncoder(config).eval()
    vocab = Vocab.build(TEXTS)
    bt = BackTranslator(
        BackTranslatorConfig(
            n_features=12, vocab_size=len(vocab), d_model=16, heads=2, enc_layers=1, dec_layers=1
        )
    )
    return encoder, bt.eval(), vocab


def save_baseline_models(root: Path, joints: int = 4) -> None:
    """Randomly initialised tiny PT (base, fpgn) and NSLP-G (base, gs, base_ft, gs_ft) directories
    under ``root/models`` as train_pt / train_nslpg write them (no training: shapes and keys only)."""
    torch.manual_seed(1)
    vocab, glosses = Vocab.build(TEXTS), GlossSeqVocab.build(["REGEN", "SONNE", "KALT"])
    meta = {"n_joints": joints, "fps": 25.0}
    sizes = {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "ffn": 32}
    pt = ProgressiveConfig(**sizes, vocab_size=len(vocab), max_frames=60, n_features=joints * 3)
    for variant in ("base", "fpgn"):
        model = ProgressiveTransformer(pt_variant(pt, variant, 3, 5.0))
        save_pt(root / "models/pt" / variant, model, vocab, {"variant": variant, **meta})
    sizes = {"d_model": 16, "heads": 2, "enc_layers": 1, "dec_layers": 1, "gloss_layers": 1, "ffn": 32}
    ns = NSLPGConfig(**sizes, vocab_size=len(vocab), max_frames=60, latent=3, n_features=joints * 3)
    for variant in ("base", "gs", "base_ft", "gs_ft"):
        vae = VAE(VAEConfig(n_features=joints * 3, hidden=[8, 6], latent=3))
        model = NSLPG(nslpg_variant(ns, variant, 0.1, len(glosses)), vae)
        save_nslpg(root / "models/nslpg" / variant, model, vocab, {"variant": variant, **meta}, glosses)


def test_baselines_mean_and_random() -> None:
    train = _store([10, 20, 31], np.random.default_rng(0))
    out = baselines(train, 4, np.random.default_rng(5))
    assert len(out["mean"]) == 4 and out["mean"][0].shape == (20, 4, 3)  # mean length 61/3 -> 20
    np.testing.assert_allclose(out["mean"][0][7], np.asarray(train.poses).mean(axis=0), rtol=1e-6)
    seqs = [s.tobytes() for s in train.sequences()]
    assert all(r.tobytes() in seqs for r in out["random_per_sentence"])
    assert len(out["random_single"]) == 4 and out["random_single"][0].tobytes() in seqs
    assert all(r is out["random_single"][0] for r in out["random_single"])  # one sequence for all
    again = baselines(train, 4, np.random.default_rng(5))
    for key in ("random_per_sentence", "random_single"):  # seeded
        assert [len(r) for r in again[key]] == [len(r) for r in out[key]]


def test_scorer_gt_is_perfect_and_baselines_are_not() -> None:
    rng = np.random.default_rng(1)
    train, dev = _store([40, 60, 90, 30, 70], rng), _store([20, 45, 60, 80, 120, 35], rng)
    encoder, bt, vocab = _models()
    scorer = Scorer(encoder, bt, vocab, intervals=[[0, 50], [50, 100], [150, 200]], prefixes=[20, 40])
    refs, texts = dev.sequences(), [e["text"] for e in dev.index]
    systems = {"gt": refs, **baselines(train, len(refs), np.random.default_rng(0))}
    assert len(systems) == 4
    out = scorer.score_split(refs, texts, systems, where="fake/dev")
    gt, mean = out["gt"], out["mean"]
    for reading in ("pooled", "paired"):
        assert gt[f"fgd_{reading}"] == pytest.approx(0.0, abs=1e-6)
        assert gt[f"fgd_{reading}_x10"] == pytest.approx(10 * gt[f"fgd_{reading}"])
        assert mean[f"fgd_{reading}"] > 1e-4
        for other in ("random_per_sentence", "random_single"):
            assert out[other][f"fgd_{reading}"] > 1e-4
    assert gt["dtw_mje"] == 0.0 and gt["duracc"] == 1.0 and gt["len_mae"] == 0.0
    assert mean["dtw_mje"] > 0.01
    assert mean["len_mae"] == pytest.approx(np.mean(np.abs(dev.lengths - 58)))  # mean train length 58
    # length groups with sentences are scored; 150-200 has none and is skipped (pooled and paired);
    # time segments: 150-200 has no frames (longest reference: 120) -> skipped too
    assert {"fgd_pooled_len_0_50", "fgd_paired_len_50_100", "fgd_pooled_seg_50_100"} <= set(gt)
    assert {"fgd_pooled_len_150_200", "fgd_paired_len_150_200", "fgd_paired_seg_150_200"}.isdisjoint(gt)
    assert gt["skipped"] == 4 and gt["fgd_pooled_first_20"] == pytest.approx(0.0, abs=1e-6)
    assert gt["fgd_paired_seg_0_50"] == pytest.approx(0.0, abs=1e-6)
    assert {"bleu1", "bleu4", "rouge"} <= set(gt) and "gloss_wer" not in gt  # this model has no gloss head


def test_window_features_pooled_follow_the_encoder_stride_and_paired_use_stride_1() -> None:
    """Pooled windows are cut with the encoder's own window and stride (saved in its config.json);
    paired ones with stride 1, a sequence shorter than window + 1 padded to two windows."""
    seq = _store([68], np.random.default_rng(6)).sequences()[0]
    wide, _, _ = _models(stride=34)
    dense, _, _ = _models(stride=17)
    assert WindowFeatures(wide, [seq]).pooled([0]).shape == (2, 4)  # starts 0, 34
    feats = WindowFeatures(dense, [seq, seq[:10]])
    pooled = feats.pooled([0, 1])
    assert pooled.shape == (3 + 1, 4) and pooled.dtype == np.float64  # starts 0, 17, 34 + one padded window
    x = torch.from_numpy(np.clip(seq[17:51], 0, 1).reshape(1, 34, 12))
    np.testing.assert_allclose(pooled[1], dense.embed(x)[0].double().numpy(), rtol=1e-5, atol=1e-6)
    assert feats.paired(0).shape == (68 - 34 + 1, 4)  # every start 0..34
    assert feats.paired(1).shape == (2, 4)  # 10 frames padded to 35
    assert feats.paired(0, 60, 100).shape == (2, 4) and feats.paired(0, 68, 100) is None  # empty span
    np.testing.assert_allclose(feats.paired(0)[17], pooled[1], rtol=1e-6)


def test_paired_fgd_is_zero_for_a_sequence_against_itself_and_reads_each_pair() -> None:
    """Paired FGD scores each sequence against its own reference: swapping two sentences' outputs
    keeps the pooled FGD (same windows overall) but not the paired one."""
    rng = np.random.default_rng(8)
    refs = _store([60, 80, 70], rng).sequences()
    encoder, bt, vocab = _models()
    scorer = Scorer(encoder, bt, vocab, intervals=[[0, 50]], prefixes=[20])
    swapped = [refs[1], refs[0], refs[2]]
    out = scorer.score_split(refs, TEXTS, {"gt": refs, "swapped": swapped}, where="x")
    assert out["gt"]["fgd_paired"] == pytest.approx(0.0, abs=1e-8)
    assert out["swapped"]["fgd_pooled"] == pytest.approx(0.0, abs=1e-6)
    assert out["swapped"]["fgd_paired"] > 100 * max(out["swapped"]["fgd_pooled"], 1e-9)


def test_scorer_rejects_wrong_system_output() -> None:
    rng = np.random.default_rng(2)
    dev = _store([30, 40], rng)
    encoder, bt, vocab = _models()
    refs = dev.sequences()
    with pytest.raises(MetricError, match="'student' has 1 sequences for 2"):
        Scorer(encoder, bt, vocab).score_split(refs, TEXTS[:2], {"student": refs[:1]}, where="x")
    with pytest.raises(MetricError, match=r"sentence 1: sequence of shape \(0, 4, 3\)"):
        Scorer(encoder, bt, vocab).score_split(
            refs, TEXTS[:2], {"student": [refs[0], refs[1][:0]]}, where="x"
        )


def test_evaluate_config_validation() -> None:
    cfg = parse_section({"evaluate": EVAL}, "evaluate", EvaluateConfig)
    assert (cfg.splits, cfg.systems, cfg.intervals, cfg.prefixes) == (["dev"], ["gt"], [[0, 50]], [20])
    assert cfg.margin == 25.0 and isinstance(cfg.margin, float) and cfg.batch_size == 4
    assert (cfg.figures, cfg.figure_frames, cfg.compare_student, cfg.cpu_threads) == (3, 6, None, 0)
    with pytest.raises(ParamsError, match=r"evaluate\.systems\[1\]='oracle' is invalid"):
        parse_section({"evaluate": {**EVAL, "systems": ["gt", "oracle"]}}, "evaluate", EvaluateConfig)
    names = ["gt", "pt_base", "pt_fpgn", "nslpg_gs_ft", "nslpg_base"]
    assert (
        parse_section({"evaluate": {**EVAL, "systems": names}}, "evaluate", EvaluateConfig).systems == names
    )
    for i, bad in ((1, "pt_"), (1, "PT_base"), (1, "nslpg"), (1, "vae_base")):
        with pytest.raises(ParamsError, match=rf"evaluate\.systems\[{i}\]='{bad}' is invalid.*pt_<variant>"):
            parse_section({"evaluate": {**EVAL, "systems": ["gt", bad]}}, "evaluate", EvaluateConfig)
    with pytest.raises(ParamsError, match=r"evaluate\.systems=.* names a system twice"):
        parse_section(
            {"evaluate": {**EVAL, "systems": ["gt", "pt_base", "pt_base"]}}, "evaluate", EvaluateConfig
        )
    with pytest.raises(ParamsError, match=r"evaluate\.figure_systems\[0\]='ours' is invalid"):
        parse_section({"evaluate": {**EVAL, "figure_systems": ["ours"]}}, "evaluate", EvaluateConfig)
    assert baseline_of("nslpg_gs_ft") == ("nslpg", "gs_ft") and baseline_of("student") is None
    with pytest.raises(ParamsError, match=r"evaluate\.splits is empty"):
        parse_section({"evaluate": {**EVAL, "splits": []}}, "evaluate", EvaluateConfig)
    with pytest.raises(ParamsError, match="evaluate.intervals entry"):
        parse_section({"evaluate": {**EVAL, "intervals": [[50, 0]]}}, "evaluate", EvaluateConfig)
    with pytest.raises(ParamsError, match="evaluate.prefixes entry 0"):
        parse_section({"evaluate": {**EVAL, "prefixes": [20, 0]}}, "evaluate", EvaluateConfig)
    with pytest.raises(ParamsError, match=r"evaluate\.margin=0 is invalid"):
        parse_section({"evaluate": {**EVAL, "margin": 0}}, "evaluate", EvaluateConfig)
    with pytest.raises(ParamsError, match="missing key evaluate.margin"):
        no_margin = {k: v for k, v in EVAL.items() if k != "margin"}
        parse_section({"evaluate": no_margin}, "evaluate", EvaluateConfig)
    with pytest.raises(ParamsError, match=r"unknown key\(s\) evaluate\.stride"):
        parse_section({"evaluate": {**EVAL, "stride": 34}}, "evaluate", EvaluateConfig)


def test_evaluate_splits_systems_and_references() -> None:
    rng = np.random.default_rng(7)
    stores = {"train": _store([40, 60, 50], rng), "dev": _store([30, 45, 70], rng)}
    cfg = EvaluateConfig(**{**EVAL, "systems": ["gt", "mean"]})
    encoder, bt, vocab = _models()
    kept: dict = {}
    result = evaluate(
        stores, Scorer(encoder, bt, vocab, intervals=[[0, 50]], prefixes=[20]), cfg, 3, keep=kept
    )
    assert set(result) == {"dev"} and result["dev"]["n"] == 3 and {"gt", "mean"} <= set(result["dev"])
    refs, texts, systems = kept["dev"]
    assert texts == TEXTS and [len(r) for r in refs] == [30, 45, 70] and systems["gt"] is refs
    assert [len(s) for s in systems["mean"]] == [50] * 3 and result["dev"]["mean"]["len_mae"] == (
        20 + 5 + 20
    ) / 3
    with pytest.raises(ValueError, match="no student generator"):
        evaluate(stores, Scorer(encoder, bt, vocab), EvaluateConfig(**{**EVAL, "systems": ["student"]}), 3)
    with pytest.raises(ValueError, match="no pt_fpgn generator"):
        evaluate(stores, Scorer(encoder, bt, vocab), EvaluateConfig(**{**EVAL, "systems": ["pt_fpgn"]}), 3)
    blank = lifted_store([np.full((5, 4, 3), 0.5)], texts=["  "])
    with pytest.raises(StoreError, match=r"lifted/dev: sequence 's0' \(row 0\) has no text"):
        references(blank, Path("lifted/dev"))


def test_generated_systems_and_the_oracle_length() -> None:
    """A plain callable gets the texts; an oracle-length system also the reference lengths, and its
    metrics say so (DurACC 1, length error 0 by construction)."""
    rng = np.random.default_rng(9)
    stores = {"train": _store([40, 60, 50], rng), "dev": _store([30, 45, 70], rng)}
    calls: list[tuple[list[str], list[int] | None]] = []

    def fixed(texts: list[str]) -> list[np.ndarray]:
        calls.append((texts, None))
        return [np.full((40, 4, 3), 0.5, np.float32) for _ in texts]

    def oracle(texts: list[str], lengths: list[int]) -> list[np.ndarray]:
        calls.append((texts, lengths))
        return [np.full((n, 4, 3), 0.4, np.float32) for n in lengths]

    cfg = EvaluateConfig(**{**EVAL, "systems": ["gt", "student", "nslpg_base"]})
    encoder, bt, vocab = _models()
    scorer = Scorer(encoder, bt, vocab, intervals=[[0, 50]], prefixes=[20])
    generators = {"student": fixed, "nslpg_base": GeneratedSystem(oracle, oracle_length=True)}
    result = evaluate(stores, scorer, cfg, 3, generators)["dev"]
    assert calls == [(TEXTS, None), (TEXTS, [30, 45, 70])]
    ns, student = result["nslpg_base"], result["student"]
    assert ns["oracle_length"] == 1 and ns["duracc"] == 1.0 and ns["len_mae"] == 0.0
    assert "oracle_length" not in student and student["len_mae"] == pytest.approx(15.0)
    assert ns["generate_seconds"] >= 0 and "generate_seconds" not in result["gt"]
    md = eval_table({"dev": result}, ["dev"], cfg.systems, [], 25.0)
    assert "| NSLP-G base [oracle T] |" in md and "| Ours (student) |" in md
    assert "[oracle T]: the system is given the reference length" in md.splitlines()[2]


def test_references_longer_than_a_systems_maximum_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 15: a reference a system cannot reach in length (its max_frames) is counted and logged."""
    rng = np.random.default_rng(9)
    stores = {"train": _store([40, 60, 50], rng), "dev": _store([30, 45, 70], rng)}

    def capped(texts: list[str]) -> list[np.ndarray]:
        return [np.full((40, 4, 3), 0.5, np.float32) for _ in texts]

    cfg = EvaluateConfig(**{**EVAL, "systems": ["gt", "student"]})
    encoder, bt, vocab = _models()
    scorer = Scorer(encoder, bt, vocab, intervals=[[0, 50]], prefixes=[20])
    with caplog.at_level("WARNING"):
        result = evaluate(stores, scorer, cfg, 3, {"student": GeneratedSystem(capped, max_frames=40)})["dev"]
    assert result["student"]["refs_over_max_frames"] == 2 and result["student"]["max_frames"] == 40
    assert "dev student: 2 of 3 references are longer than its maximum output (40 frames)" in caplog.text
    assert "refs_over_max_frames" not in result["gt"]


def test_system_labels() -> None:
    assert [system_label(s) for s in ("pt_fpgn", "nslpg_base_ft", "pt_gn", "nslpg_x_ft", "nslpg_y")] == [
        "PT FP&GN",
        "NSLP-G base (+ft)",
        "PT GN",
        "NSLP-G x (+ft)",
        "NSLP-G y",
    ]


def test_an_untrained_baseline_variant_is_a_params_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    save_baseline_models(tmp_path)
    cfg = EvaluateConfig(**{**EVAL, "systems": ["gt", "pt_fpgn", "nslpg_gs", "pt_gn"]})
    with pytest.raises(
        ParamsError, match=r"evaluate\.systems\[3\]='pt_gn': no model models/pt/gn.*\['base', 'fpgn'\]"
    ):
        load_generators(cfg)
    loaded = load_generators(cfg, skip=["pt_gn"])
    assert set(loaded) == {"pt_fpgn", "nslpg_gs"}
    assert loaded["nslpg_gs"].oracle_length and not loaded["pt_fpgn"].oracle_length
    poses = loaded["nslpg_gs"].generate(TEXTS, [5, 6, 7])
    assert [p.shape for p in poses] == [(5, 4, 3), (6, 4, 3), (7, 4, 3)]


def test_eval_table_markdown() -> None:
    gt = {"fgd_pooled_x10": 0.0, "fgd_paired_x10": 0.0, "bleu1": 50.0, "bleu2": 40.5, "bleu3": 30.25}
    gt |= {"bleu4": 20.125, "rouge": 45.0, "gloss_wer": 10.0, "dtw_mje": 0.0, "duracc": 1.0}
    gt |= {"fgd_pooled_len_0_50": 0.0, "fgd_paired_seg_0_50": 0.0, "fgd_pooled_first_20": 0.0}
    gt |= {"realism": {"left_hand": {"bone_ratio": 1.0, "motion_ratio": 1.0}}, "dtw_mje_left_hand": 0.0}
    mean = {"fgd_pooled_x10": 12.3456, "fgd_paired_x10": 20.0, "bleu1": 1.5, "bleu2": 0.75, "bleu3": 0.0}
    mean |= {"rouge": 3.0625, "dtw_mje": 0.12345, "duracc": 0.25, "fgd_pooled_first_20": 0.5}  # no bleu4
    mean |= {"fgd_paired_seg_0_50": 0.25, "realism": {"left_hand": {"bone_ratio": 0.5, "motion_ratio": 0.0}}}
    result = {"test": {"n": 4, "gt": gt, "mean": mean}}
    spans = ["fgd_pooled_len_0_50", "fgd_paired_len_0_50", "fgd_paired_seg_0_50", "fgd_pooled_first_20"]
    md = eval_table(result, ["test"], ["gt", "mean"], spans, 25.0)
    lines = md.splitlines()
    assert lines[0] == "# Evaluation (generated by `python -m pipeline.stages.evaluate`, stage `evaluate`)"
    assert "DurACC = share of sentences with |T_hat - T| < 25 frames." in lines[2]  # 25.0 from params
    start = lines.index("## TEST (4 sentences)")
    assert lines[start : start + 6] == [
        "## TEST (4 sentences)",
        "",
        "| System | FGD† pooled | FGD† paired | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | ROUGE | gloss WER "
        "| DTW-MJE | DurACC |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| GT | 0.000 | 0.000 | 50.00 | 40.50 | 30.25 | 20.12 | 45.00 | 10.00 | 0.0000 | 1.000 |",
        "| Mean | 12.346 | 20.000 | 1.50 | 0.75 | 0.00 | – | 3.06 | – | 0.1235 | 0.250 |",
    ]
    start = lines.index("## Table 2: FGD† by reference length (sentences grouped) (test)")
    assert lines[start + 2 : start + 6] == [
        "| System | len 0–50 pooled | len 0–50 paired |",
        "|---|---:|---:|",
        "| GT | 0.000 | – |",
        "| Mean | – | – |",
    ]
    start = lines.index("## Table 2: FGD† by time segment (frames lo–hi of every sequence) (test)")
    assert lines[start + 4 : start + 6] == ["| GT | 0.000 |", "| Mean | 2.500 |"]  # FGD x 10
    start = lines.index("## Table 2: FGD† over the first N frames (pooled) (test)")
    assert lines[start + 4 : start + 6] == ["| GT | 0.000 |", "| Mean | 5.000 |"]
    start = lines.index("## Realism per body part (test)")
    assert lines[start + 4] == "| System | left_hand bones | left_hand motion | left_hand DTW |"
    assert lines[start + 6 : start + 8] == ["| GT | 1.000 | 1.000 | 0.000 |", "| Mean | 0.500 | 0.000 | – |"]


@pytest.mark.slow
def test_stage_writes_metrics_plot_and_table(workspace: Callable[..., Path]) -> None:
    ws = workspace()
    rng = np.random.default_rng(3)
    train = _store([40, 60, 90, 30, 70, 55], rng)
    save_lifted(ws, {"train": train, **{s: _store([25, 45, 60, 110], rng) for s in ("dev", "test")}})
    encoder, bt, vocab = _models()
    save_model(encoder, ws / "models/fgd_encoder")
    save_backtranslator(bt, vocab, ws / "models/backtranslator")

    def fake_student(texts: list[str]) -> list[np.ndarray]:  # stands in for load_student(...).generate
        return [np.full((50, 4, 3), 0.5, np.float32) + 0.01 * i for i in range(len(texts))]

    save_baseline_models(ws)  # the default systems include the baselines' variants
    flat = main([], generators={"student": fake_student})
    saved = json.loads((ws / "metrics/eval.json").read_text())
    assert saved == flat
    for reading in ("pooled", "paired"):
        assert saved[f"test.gt.fgd_{reading}"] == pytest.approx(0.0, abs=1e-6)
        assert saved[f"dev.student.fgd_{reading}"] > 0
    assert saved["test.student.len_mae"] == pytest.approx(np.mean(np.abs(np.array([25, 45, 60, 110]) - 50)))
    assert {"dev.mean.bleu4", "test.random_single.rouge", "test.student.duracc", "dev.n"} <= set(saved)
    assert {"test.random_per_sentence.fgd_paired_seg_0_50", "dev.gt.fgd_pooled_len_0_50"} <= set(saved)
    for system in ("pt_base", "pt_fpgn", "nslpg_base", "nslpg_gs", "nslpg_base_ft", "nslpg_gs_ft"):
        for key in ("fgd_pooled_x10", "fgd_paired_x10", "bleu4", "rouge", "dtw_mje", "duracc", "len_mae"):
            assert f"test.{system}.{key}" in saved, (system, key)
        for split in ("dev", "test"):  # every metric the student gets (+ oracle_length for NSLP-G)
            ours, student = (
                {
                    k.split(".", 2)[2]
                    for k in saved
                    if k.startswith(f"{split}.{s}.") and not SPAN_RE.match(k.split(".")[-1])
                }
                for s in (system, "student")
            )  # (Table-2 spans are left out where a subset has too few windows: they depend on the lengths)
            lengths_keys = {"oracle_length", "max_frames", "refs_over_max_frames"}
            assert ours - lengths_keys == student - lengths_keys
            assert ("refs_over_max_frames" in ours) == system.startswith("pt_")  # NSLP-G: oracle T
        oracle = saved.get(f"test.{system}.oracle_length")
        assert oracle == (1 if system.startswith("nslpg") else None)
    assert saved["test.nslpg_gs.duracc"] == 1.0 and saved["test.nslpg_gs.len_mae"] == 0.0
    # the headline: the DVC metrics, one small file per split and system (issue 16: dvc metrics show)
    headline = sorted((ws / "metrics/headline").iterdir())
    systems = load_params()["evaluate"]["systems"]
    assert [h.name for h in headline] == sorted(f"{sp}_{sy}.json" for sp in ("dev", "test") for sy in systems)
    student = json.loads((ws / "metrics/headline/test_student.json").read_text())
    assert set(student) == {"fgd_pooled_x10", "fgd_paired_x10", "bleu4", "rouge", "dtw_mje", "duracc"}
    for key, value in student.items():
        assert value == pytest.approx(saved[f"test.student.{key}"], abs=1e-4)
    rows = list(csv.DictReader((ws / "metrics/fgd_intervals.csv").open()))
    assert [r["interval"] for r in rows] == ["0-50", "50-100", "100-150", "150-200"]
    assert [r["frames"] for r in rows] == ["50", "100", "150", "200"]
    assert set(rows[0]) >= {"gt", "student", "gt_seg", "random_single"}
    assert float(rows[0]["gt"]) == pytest.approx(0.0, abs=1e-5)
    md = (ws / "metrics/eval_table.md").read_text()
    assert "| GT |" in md and "## TEST (4 sentences)" in md and "first 20" in md
    assert "| PT FP&GN |" in md and "| NSLP-G GS (+ft) [oracle T] |" in md
    # figures: a legend band, 3 dev samples x (GT, PT FP&GN, NSLP-G base (+ft), student) rows of 6
    # skeletons of 320 px under a title band each; GIF of the 1st sample
    cell, title, gap = render.CELL, render.TITLE_HEIGHT, figures.GAP
    fig3 = iio.imread(ws / "plots/figure3_dev_samples.png")
    assert fig3.shape[:2] == (title + 3 * (title + 4 * cell) + 2 * gap, 6 * cell)
    gif = iio.imread(ws / "plots/figure3_dev_sample.gif", index=None)
    assert gif.shape[1:3] == (cell, 4 * cell) and len(gif) >= 50  # 4 panels; at least the student's 50 frames
    fig4 = iio.imread(ws / "plots/figure4_fgd_length.png")
    assert fig4.shape[:2] == (360, 1400) and (fig4[..., :3] < 250).any()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nar-slp-kd")
    run = client.search_runs([exp.experiment_id], "attributes.run_name = 'evaluate'")[0]
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "eval/plots")}
    assert logged == {f"eval/plots/{p.name}" for p in (FIG3, FIG3_GIF, FIG4)}


def test_figures_with_a_second_student(
    tiny_student: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """evaluate.compare_student adds a third row (e.g. the w/o-KD student) generated for the samples only."""
    monkeypatch.chdir(tmp_path)  # the figures go to the stage's fixed plots/ paths
    rng = np.random.default_rng(4)
    refs = [s.astype(np.float32) for s in _store([20, 35, 50], rng, joints=50).sequences()]
    kept = {"dev": (refs, TEXTS, {"gt": refs, "student": [r[:10] for r in refs]})}
    cfg = EvaluateConfig(
        **{**EVAL, "systems": ["gt", "student"]},
        figures=2,
        figure_frames=4,
        compare_student=str(tiny_student),
        compare_label="w/o KD",
    )
    result = {"dev": {s: {"fgd_pooled_len_0_50": 0.1, "fgd_pooled_first_20": 0.2} for s in ("gt", "student")}}
    files = render_figures(result, kept, cfg, None)
    assert files == [FIG4, FIG3, FIG3_GIF]
    assert Path("plots/figure3_dev_samples.png") == FIG3
    fig3 = iio.imread(tmp_path / FIG3)
    cell, title = render.CELL, render.TITLE_HEIGHT
    assert fig3.shape[:2] == (title + 2 * (title + 3 * cell) + figures.GAP, 4 * cell)  # 2 samples x 3 rows
    gif = iio.imread(tmp_path / FIG3_GIF, index=None)
    assert gif.shape[2] == 3 * cell and len(gif) >= 20  # 3 panels; at least the GT's 20 frames
