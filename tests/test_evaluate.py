"""Evaluation stage: baselines, per-system scoring (GT is perfect), flat metrics, plot/table files, params."""

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from pipeline.config import ParamsError
from pipeline.evaluate import FIG3, FIG3_GIF, FIG4, Scorer, baselines, eval_params, main
from pipeline.metrics import MetricError
from pipeline.models.slt import SLT, SLTConfig, Vocab, save_slt
from pipeline.models.tae import TAE, TAEConfig, save_tae
from pipeline.store import SplitStore

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["am montag regen .", "im norden sonne .", "morgen wird es kalt ."]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # the CI box is small and shared: 2 threads can be 10x slower


def _store(lengths: list[int], rng: np.random.Generator, joints: int = 4) -> SplitStore:
    seqs = []
    for n in lengths:
        t = np.arange(n)[:, None, None]
        freq, phase = rng.uniform(0.02, 0.2, (1, joints, 3)), rng.uniform(0, 6, (1, joints, 3))
        seqs.append((0.5 + 0.3 * np.sin(freq * t + phase)).astype(np.float32))
    index = [{"name": f"s{i}", "text": TEXTS[i % 3], "gloss": "", "signer": "a"} for i in range(len(lengths))]
    return SplitStore.from_sequences(seqs, index, [f"j{k}" for k in range(joints)], ["x", "y", "z"])


def _models() -> tuple[TAE, SLT, Vocab]:
    torch.manual_seed(0)
    tae = TAE(TAEConfig(n_features=12, d_model=16, heads=2, layers=1, ff=32, latent=4)).eval()
    vocab = Vocab.build(TEXTS)
    slt = SLT(
        SLTConfig(n_features=12, vocab_size=len(vocab), d_model=16, heads=2, enc_layers=1, dec_layers=1)
    )
    return tae, slt.eval(), vocab


def test_baselines_mean_and_random() -> None:
    train = _store([10, 20, 31], np.random.default_rng(0))
    out = baselines(train, 4, np.random.default_rng(5))
    assert len(out["mean"]) == 4 and out["mean"][0].shape == (20, 4, 3)  # mean length 61/3 -> 20
    np.testing.assert_allclose(out["mean"][0][7], np.asarray(train.poses).mean(axis=0), rtol=1e-6)
    seqs = [s.tobytes() for s in train.sequences()]
    assert all(r.tobytes() in seqs for r in out["random"])
    again = baselines(train, 4, np.random.default_rng(5))["random"]
    assert [len(r) for r in again] == [len(r) for r in out["random"]]  # seeded


def test_scorer_gt_is_perfect_and_baselines_are_not() -> None:
    rng = np.random.default_rng(1)
    train, dev = _store([40, 60, 90, 30, 70], rng), _store([20, 45, 60, 80, 120, 35], rng)
    tae, slt, vocab = _models()
    scorer = Scorer(tae, slt, vocab, intervals=[[0, 50], [50, 100], [150, 200]], prefixes=[20, 40])
    refs, texts = dev.sequences(), [e["text"] for e in dev.index]
    systems = {"gt": refs, **baselines(train, len(refs), np.random.default_rng(0))}
    out = scorer.score_split(refs, texts, systems, where="fake/dev")
    gt, mean = out["gt"], out["mean"]
    assert gt["fgd"] == pytest.approx(0.0, abs=1e-6) and gt["fgd_x10"] == pytest.approx(10 * gt["fgd"])
    assert gt["dtw_mje"] == 0.0 and gt["duracc"] == 1.0 and gt["len_mae"] == 0.0
    assert mean["fgd"] > 1e-4 and mean["dtw_mje"] > 0.01
    assert mean["len_mae"] == pytest.approx(np.mean(np.abs(dev.lengths - 58)))  # mean train length 58
    # intervals with sentences are scored; 150-200 has none and is skipped
    assert "fgd_len_0_50" in gt and "fgd_len_50_100" in gt and "fgd_len_150_200" not in gt
    assert gt["skipped"] == 1 and gt["fgd_first_20"] == pytest.approx(0.0, abs=1e-6)
    assert {"bleu1", "bleu4", "rouge"} <= set(gt)


def test_scorer_rejects_wrong_system_output() -> None:
    rng = np.random.default_rng(2)
    dev = _store([30, 40], rng)
    tae, slt, vocab = _models()
    refs = dev.sequences()
    with pytest.raises(MetricError, match="'student' has 1 sequences for 2"):
        Scorer(tae, slt, vocab).score_split(refs, TEXTS[:2], {"student": refs[:1]}, where="x")
    with pytest.raises(MetricError, match=r"sentence 1: sequence of shape \(0, 4, 3\)"):
        Scorer(tae, slt, vocab).score_split(refs, TEXTS[:2], {"student": [refs[0], refs[1][:0]]}, where="x")


def test_eval_params_validation() -> None:
    p = {
        "splits": ["dev"],
        "systems": ["gt"],
        "margin": 25,
        "intervals": [[0, 50]],
        "prefixes": [20],
        "batch_size": 4,
    }
    assert eval_params({"evaluate": p}) == p
    with pytest.raises(ParamsError, match="evaluate.systems"):
        eval_params({"evaluate": {**p, "systems": ["gt", "oracle"]}})
    with pytest.raises(ParamsError, match="evaluate.intervals entry"):
        eval_params({"evaluate": {**p, "intervals": [[50, 0]]}})
    with pytest.raises(ParamsError, match="missing evaluate.margin"):
        eval_params({"evaluate": {k: v for k, v in p.items() if k != "margin"}})


def test_stage_writes_metrics_plot_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    _store([40, 60, 90, 30, 70, 55], rng).save(tmp_path / "data/lifted/train")
    for split in ("dev", "test"):
        _store([25, 45, 60, 110], rng).save(tmp_path / "data/lifted" / split)
    tae, slt, vocab = _models()
    save_tae(tae, tmp_path / "models/fgd_encoder")
    save_slt(slt, vocab, tmp_path / "models/backtranslator")
    text = (REPO / "params.yaml").read_text().replace("profile: default", "profile: tiny", 1)
    (tmp_path / "params.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")

    def fake_student(texts: list[str]) -> list[np.ndarray]:  # stands in for load_student(...).generate
        return [np.full((50, 4, 3), 0.5, np.float32) + 0.01 * i for i in range(len(texts))]

    flat = main(generator=fake_student)
    saved = json.loads((tmp_path / "metrics/eval.json").read_text())
    assert saved == flat
    assert saved["test.gt.fgd"] == pytest.approx(0.0, abs=1e-6) and saved["dev.student.fgd"] > 0
    assert saved["test.student.len_mae"] == pytest.approx(np.mean(np.abs(np.array([25, 45, 60, 110]) - 50)))
    assert {"dev.mean.bleu4", "test.random.rouge", "test.student.duracc", "dev.n"} <= set(saved)
    rows = list(csv.DictReader((tmp_path / "metrics/fgd_intervals.csv").open()))
    assert [r["interval"] for r in rows] == ["0-50", "50-100", "100-150", "150-200"]
    assert [r["frames"] for r in rows] == ["50", "100", "150", "200"] and set(rows[0]) >= {"gt", "student"}
    assert float(rows[0]["gt"]) == pytest.approx(0.0, abs=1e-5)
    md = (tmp_path / "metrics/eval_table.md").read_text()
    assert "| GT |" in md and "## TEST (4 sentences)" in md and "first 20" in md
    # figures: 3 dev samples x (GT, student) rows of 6 skeletons of 160 px + a 16 px title; GIF of the 1st
    fig3 = iio.imread(tmp_path / "plots/figure3_dev_samples.png")
    assert fig3.shape[:2] == (3 * (16 + 2 * 160) + 2 * 6, 6 * 160)
    gif = iio.imread(tmp_path / "plots/figure3_dev_sample.gif", index=None)
    assert gif.shape[:3] == (50, 160, 2 * 160)  # max(shortest dev GT 25, student 50) frames, 2 panels
    fig4 = iio.imread(tmp_path / "plots/figure4_fgd_length.png")
    assert fig4.shape[:2] == (340, 1050) and (fig4[..., :3] < 250).any()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nar-slp-kd")
    run = client.search_runs([exp.experiment_id], "attributes.run_name = 'evaluate'")[0]
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "eval/plots")}
    assert logged == {f"eval/plots/{n}" for n in (FIG3, FIG3_GIF, FIG4)}


def test_figures_with_a_second_student(tiny_student: Path, tmp_path: Path) -> None:
    """evaluate.compare_student adds a third row (e.g. the w/o-KD student) generated for the samples only."""
    from pipeline.evaluate import render_figures

    rng = np.random.default_rng(4)
    refs = [s.astype(np.float32) for s in _store([20, 35, 50], rng, joints=50).sequences()]
    kept = {"dev": (refs, TEXTS, {"gt": refs, "student": [r[:10] for r in refs]})}
    p = {"figures": 2, "figure_frames": 4, "compare_student": str(tiny_student), "compare_label": "w/o KD"}
    p |= {"splits": ["dev"], "systems": ["gt", "student"], "intervals": [[0, 50]], "prefixes": [20]}
    result = {"dev": {s: {"fgd_len_0_50": 0.1, "fgd_first_20": 0.2} for s in ("gt", "student")}}
    files = render_figures(result, kept, p, tmp_path / "plots", None)
    assert [f.name for f in files] == [FIG4, FIG3, FIG3_GIF]
    fig3 = iio.imread(tmp_path / "plots" / FIG3)
    assert fig3.shape[:2] == (2 * (16 + 3 * 160) + 6, 4 * 160)  # 2 samples x 3 rows
    gif = iio.imread(tmp_path / "plots" / FIG3_GIF, index=None)
    assert gif.shape[2] == 3 * 160 and len(gif) >= 20  # 3 panels; at least the GT's 20 frames
