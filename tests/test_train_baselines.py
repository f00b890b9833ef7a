"""Stages train_pt and train_nslpg on a tiny workspace (saved variants, GN, GS, +ft, MLflow), the
baselines' variant configs and their saved directories (save / load round trips)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import save_lifted

from pipeline.baselines import nslpg as nslpg_lib
from pipeline.baselines import pt as pt_lib
from pipeline.config import ParamsError, parse_section
from pipeline.data.store import SplitStore, StoreError
from pipeline.models.backtranslator import Vocab
from pipeline.models.io import save_model
from pipeline.models.nslpg import NSLPG, GlossSeqVocab, NSLPGConfig, encode_batch
from pipeline.models.progressive import ProgressiveConfig, ProgressiveTransformer
from pipeline.models.vae import VAE, VAEConfig
from pipeline.stages import train_nslpg, train_pt

WORDS = ["am", "morgen", "regen", "sonne", "wind", "nord", "sued", "tag", "nacht", "kalt", "warm", "wolken"]
N_JOINTS = 3
EXPERIMENT = "test-baselines"
TEXTS = ["am morgen regen", "wind im norden", "sonne sonne kalt nacht"]


def _split(rng: np.random.Generator, lengths: list[int], glosses: bool = True) -> SplitStore:
    """Smooth sequences of ``lengths`` frames in (0, 1) with 2-5 random words (and their upper-cased
    glosses unless ``glosses`` is false)."""
    seqs, index = [], []
    for i, n in enumerate(lengths):
        t = np.linspace(0, 1, n)[:, None, None]
        seqs.append((0.5 + 0.3 * np.sin(6 * t + rng.random((1, N_JOINTS, 3)) * 3)).astype(np.float32))
        words = list(rng.choice(WORDS, size=int(rng.integers(2, 6))))
        gloss = " ".join(w.upper() for w in words) if glosses else ""
        index.append({"name": f"s{i}", "text": " ".join(words), "gloss": gloss, "signer": "a"})
    joints = [f"j{k}" for k in range(N_JOINTS)]
    return SplitStore.from_sequences(seqs, index, joints, ["x", "y", "z"])


def write_data(root: Path, glosses: bool = True) -> Path:
    """data/lifted/{train,dev} and models/vae of a tiny run under ``root``."""
    rng = np.random.default_rng(7)
    train = _split(rng, [4, 7, 10, 5, 12, 8, 6, 9], glosses)
    dev = _split(rng, [5, 14, 8], glosses)  # 14 > longest train (12)
    save_lifted(root, {"train": train, "dev": dev})
    torch.manual_seed(3)
    save_model(VAE(VAEConfig(n_features=N_JOINTS * 3, hidden=[8, 6], latent=4)), root / "models/vae")
    return root


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the module (creating one costs seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture()
def run_stage(
    workspace: Callable[..., Path], tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict]:
    """``run_stage(module, section, glosses=True, **values)``: tiny data in the workspace, params.yaml
    (default profile; ``section`` tiny, updated by ``values``), then ``module.main([])``."""

    def run(module: Any, section: str, glosses: bool = True, **values: Any) -> dict:
        tiny = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "cpu_threads": 1}
        if section == "progressive":
            tiny |= {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "ffn": 32}
            tiny |= {"fp_frames": 3}
        else:
            tiny |= {
                "d_model": 16,
                "heads": 2,
                "enc_layers": 1,
                "dec_layers": 1,
                "gloss_layers": 1,
                "ffn": 32,
            }
        sections = {
            "seed": 5,
            section: {**tiny, **values},
            "train": {"progress_bar": False, "log_every_n_steps": 1},
            "tracking": {"experiment": EXPERIMENT},
        }
        root = workspace(profile="default", **sections)
        write_data(root, glosses)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        return module.main([])

    return run


def _run(uri: str, stage: str) -> Any:
    """The newest MLflow run of ``stage`` in the test experiment (and the client)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], f"attributes.run_name = '{stage}'")
    return client, runs[0]


def _state(path: str | Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


# -- stages ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_train_pt_writes_loadable_variants_with_gn(
    run_stage: Callable[..., dict], tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both variants are saved and load into generators that reproduce the trained model's output;
    GN's noise_std is set from the training errors (non-zero after 2 epochs) for fpgn only."""
    in_memory: dict[str, list[np.ndarray]] = {}
    real_save = train_pt.save_pt

    def spy(directory: Path, model: ProgressiveTransformer, vocab: Vocab, meta: dict) -> Path:
        generator = pt_lib.PTGenerator(model, vocab, meta["n_joints"])
        in_memory[meta["variant"]] = generator.generate(TEXTS, batch_size=2)
        return real_save(directory, model, vocab, meta)

    monkeypatch.setattr(train_pt, "save_pt", spy)
    metrics = run_stage(train_pt, "progressive")
    root = Path.cwd()
    assert json.loads((root / "metrics/train_pt.json").read_text()) == json.loads(json.dumps(metrics))
    assert metrics["max_frames"] == 12 and metrics["truncated"] == {"train": 0, "dev": 1}
    for variant, n in (("base", 1), ("fpgn", 3)):
        m = metrics[variant]
        assert (m["epochs"], m["future_frames"], m["resumed_from_epoch"]) == (2, n, 0)
        assert {"pose", "counter", "total", "dur_acc", "length_mae_frames"} <= set(m["dev"])
        gen = pt_lib.load_pt(root / "models/pt" / variant)
        assert gen.variant == variant and gen.model.config.future_frames == n and not gen.oracle_length
        poses = gen.generate(TEXTS)
        assert [p.shape[1:] for p in poses] == [(N_JOINTS, 3)] * 3
        assert all(1 <= len(p) <= 12 for p in poses)
        for a, b in zip(poses, in_memory[variant], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)
    assert not list((root / "models/pt_ckpt").rglob("*.ckpt"))  # cleared after success
    base = _state(root / "models/pt/base/model.pt")["noise_std"]
    fpgn = _state(root / "models/pt/fpgn/model.pt")["noise_std"]
    assert torch.count_nonzero(base) == 0 and bool((fpgn > 0).all())
    assert metrics["base"]["noise_std_mean"] == 0 and metrics["fpgn"]["noise_std_mean"] > 0
    client, run = _run(tracking_uri, "train_pt")  # one run, the variants' curves prefixed
    assert run.info.status == "FINISHED" and run.data.metrics["fpgn.dev.total"] > 0
    for variant in ("base", "fpgn"):
        history = client.get_metric_history(run.info.run_id, f"{variant}/val/total")
        assert len(history) == 2  # per epoch
    noise = client.get_metric_history(run.info.run_id, "fpgn/train/noise_std_mean")
    assert len(noise) == 2 and all(h.value > 0 for h in noise)
    assert "base/train/noise_std_mean" not in run.data.metrics


class KillError(Exception):
    """Simulated crash."""


@pytest.mark.slow
def test_train_pt_resume_keeps_gn_state_and_trained_variants(
    run_stage: Callable[..., dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints carry GN's state: the end-of-epoch one that epoch's noise_std (Lightning saves it
    before the epoch-end hook), a mid-epoch one the errors collected so far. A rerun after a kill
    resumes fpgn and does not train base, finished before the kill, again."""
    import lightning as L

    from pipeline.training import engine

    kill_at: dict[str, int] = {}

    class Crash(L.Callback):
        def on_train_batch_start(
            self, trainer: L.Trainer, module: L.LightningModule, batch: Any, i: int
        ) -> None:
            gn = module.model.config.noise_rate > 0
            if gn and (trainer.current_epoch, i) == (kill_at["epoch"], kill_at["batch"]):
                raise KillError("killed")

    real = engine.make_trainer

    def crashing(*args: Any, callbacks: list | None = None, **kwargs: Any) -> Any:
        return real(*args, callbacks=[*(callbacks or []), Crash()], **kwargs)

    monkeypatch.setattr(engine, "make_trainer", crashing)
    kill_at.update(epoch=2, batch=0)  # fpgn killed at the start of its 3rd epoch
    with pytest.raises(KillError):
        run_stage(train_pt, "progressive", epochs=3)
    ckpt = Path("models/pt_ckpt")
    assert (ckpt / "base/last.ckpt").is_file()  # base finished: kept until the stage finishes
    last = torch.load(ckpt / "fpgn/last.ckpt", weights_only=False)  # end of epoch 2, before its update
    killed = torch.load(ckpt / "fpgn/on_exception.ckpt", weights_only=False)  # after the update
    std = last["state_dict"]["model.noise_std"]
    assert bool((std > 0).all()) and torch.equal(std, killed["state_dict"]["model.noise_std"])
    assert train_pt.ERRORS_KEY not in last and train_pt.ERRORS_KEY not in killed
    monkeypatch.setattr(engine, "make_trainer", real)
    metrics = run_stage(train_pt, "progressive", epochs=3)
    assert (metrics["base"]["resumed_from_epoch"], metrics["base"]["train_samples_per_s"]) == (3, 0.0)
    assert metrics["fpgn"]["resumed_from_epoch"] == 2 and metrics["fpgn"]["epochs"] == 3
    assert not list(ckpt.rglob("*.ckpt"))
    monkeypatch.setattr(engine, "make_trainer", crashing)
    kill_at.update(epoch=1, batch=1)  # mid-epoch: the errors of batch 0 travel with the checkpoint
    with pytest.raises(KillError):
        run_stage(train_pt, "progressive", epochs=3)
    stats = torch.load(ckpt / "fpgn/on_exception.ckpt", weights_only=False)[train_pt.ERRORS_KEY]
    assert float(stats[0]) == pytest.approx(
        sum([4, 7, 10, 5, 12, 8, 6, 9]) / 2, abs=20
    )  # ~ 1 batch of frames
    module = train_pt.PTModule(ProgressiveTransformer(ProgressiveConfig(n_features=9, vocab_size=10)), 1e-3)
    module.on_load_checkpoint({train_pt.ERRORS_KEY: stats})
    assert module.model.error_stats is not None and torch.equal(module.model.error_stats[1], stats[1])


@pytest.mark.slow
def test_train_nslpg_variants_gs_and_ft(run_stage: Callable[..., dict], tracking_uri: str) -> None:
    """GS variants log a gloss loss and base ones do not; +ft changes the VAE decoder (not its
    encoder) and the others keep models/vae unchanged; the oracle length is recorded."""
    metrics = run_stage(train_nslpg, "nslpg")
    root = Path.cwd()
    assert json.loads((root / "metrics/train_nslpg.json").read_text()) == json.loads(json.dumps(metrics))
    assert "gloss" in metrics["gs"]["dev"] and "gloss" in metrics["gs_ft"]["dev"]
    assert "gloss" not in metrics["base"]["dev"] and "gloss" not in metrics["base_ft"]["dev"]
    assert metrics["base"]["dev"]["total"] == pytest.approx(metrics["base"]["dev"]["pose"])
    assert all(metrics[v]["dev"]["oracle_length"] == 1 for v in ("base", "gs", "base_ft", "gs_ft"))
    vae = _state(root / "models/vae/model.pt")
    for variant in ("base", "gs", "base_ft", "gs_ft"):
        copy = _state(root / "models/nslpg" / variant / "vae/model.pt")
        assert set(copy) == set(vae)
        same = {k for k in vae if torch.equal(copy[k], vae[k])}
        if variant.endswith("_ft"):
            assert not any(k.startswith("decoder.") for k in same) and all(
                k in same for k in vae if k.startswith("encoder.")
            )
        else:
            assert same == set(vae)
        gen = nslpg_lib.load_nslpg(root / "models/nslpg" / variant)
        assert gen.oracle_length and gen.model.config.finetune_vae == variant.endswith("_ft")
        poses = gen.generate(TEXTS, [5, 9, 3])
        assert [p.shape for p in poses] == [(5, N_JOINTS, 3), (9, N_JOINTS, 3), (3, N_JOINTS, 3)]
        assert (root / "models/nslpg" / variant / "gloss_vocab.json").is_file() == variant.startswith("gs")
    client, run = _run(tracking_uri, "train_nslpg")
    assert run.data.metrics["gs/val/gloss"] > 0 and "gs/train/gloss_epoch" in run.data.metrics
    assert not any(k.startswith("base/") and "gloss" in k for k in run.data.metrics)
    assert not list((root / "models/nslpg_ckpt").rglob("*.ckpt"))


@pytest.mark.slow
def test_train_nslpg_regulator_and_missing_glosses(run_stage: Callable[..., dict]) -> None:
    metrics = run_stage(train_nslpg, "nslpg", variants=["base"], length="regulator", length_hidden=[8])
    dev = metrics["base"]["dev"]
    assert {"length", "dur_acc", "length_mae_frames"} <= set(dev) and "oracle_length" not in dev
    assert metrics["truncated"]["dev"] == 1  # the regulator's T_max cuts the 14-frame dev sequence
    assert not nslpg_lib.load_nslpg("models/nslpg/base").oracle_length
    with pytest.raises(StoreError, match=r"sequence 's0' \(row 0\) has no gloss.*nslpg\.variants"):
        run_stage(train_nslpg, "nslpg", glosses=False, variants=["gs"])


# -- params ------------------------------------------------------------------------------------
PT_FIT = {"epochs": 1, "batch_size": 2, "lr": 1e-3}


def test_sections_validate_their_variants() -> None:
    sec = parse_section({"progressive": PT_FIT}, "progressive", train_pt.PTSection)
    assert sec.variants == ["base", "fpgn"] and (sec.fp_frames, sec.noise_rate) == (10, 5.0)
    nsec = parse_section({"nslpg": PT_FIT}, "nslpg", train_nslpg.NSLPGSection)
    assert nsec.variants == ["base", "gs", "base_ft", "gs_ft"] and nsec.gloss_weight == 0.1
    bad = [
        ("progressive", {"variants": ["base", "fpgm"]}, r"progressive\.variants\[1\]='fpgm' is invalid"),
        ("progressive", {"variants": []}, r"progressive\.variants is empty"),
        ("progressive", {"variants": ["fp", "fp"]}, r"progressive\.variants=.* lists a variant twice"),
        ("progressive", {"future_frames": 3}, r"unknown key\(s\) progressive\.future_frames"),
        ("progressive", {"noise_rate": 0}, r"progressive\.noise_rate=0 is invalid"),
        ("progressive", {"fp_frames": 1}, r"progressive\.fp_frames=1 is invalid"),
        ("nslpg", {"variants": ["ft"]}, r"nslpg\.variants\[0\]='ft' is invalid"),
        ("nslpg", {"finetune_vae": True}, r"unknown key\(s\) nslpg\.finetune_vae"),
        ("nslpg", {"gloss_weight": 0}, r"nslpg\.gloss_weight=0 is invalid"),
    ]
    for name, values, message in bad:
        cls = train_pt.PTSection if name == "progressive" else train_nslpg.NSLPGSection
        with pytest.raises(ParamsError, match=message):
            parse_section({name: {**PT_FIT, **values}}, name, cls)


def test_variant_configs() -> None:
    base = ProgressiveConfig(vocab_size=10, max_frames=20, n_features=9)
    got = {v: pt_lib.variant_config(base, v, 10, 5.0) for v in pt_lib.VARIANTS}
    assert {v: (c.future_frames, c.noise_rate) for v, c in got.items()} == {
        "base": (1, 0.0),
        "fp": (10, 0.0),
        "gn": (1, 5.0),
        "fpgn": (10, 5.0),
    }
    config = NSLPGConfig(vocab_size=10, latent=4, n_features=9)
    ns = {v: nslpg_lib.variant_config(config, v, 0.1, 12) for v in nslpg_lib.VARIANTS}
    assert {v: (c.gloss_weight, c.gloss_vocab_size, c.finetune_vae) for v, c in ns.items()} == {
        "base": (0.0, 0, False),
        "gs": (0.1, 12, False),
        "base_ft": (0.0, 0, True),
        "gs_ft": (0.1, 12, True),
    }
    with pytest.raises(ParamsError, match=r"nslpg\.variants\[0\]='gs_fp' is invalid"):
        nslpg_lib.variant_config(config, "gs_fp", 0.1, 12)


# -- saved directories -------------------------------------------------------------------------
def test_pt_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    vocab = Vocab.build(TEXTS)
    sizes = {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "ffn": 32}
    base = ProgressiveConfig(**sizes, vocab_size=len(vocab), max_frames=8, n_features=6)
    config = pt_lib.variant_config(base, "fpgn", 2, 5.0)
    model = ProgressiveTransformer(config).eval()
    model.noise_std.fill_(0.25)
    in_memory = pt_lib.PTGenerator(model, vocab, 2).generate(TEXTS)
    pt_lib.save_pt(tmp_path / "pt", model, vocab, {"variant": "fpgn", "n_joints": 2, "fps": 25.0})
    loaded = pt_lib.load_pt(tmp_path / "pt")
    assert loaded.variant == "fpgn" and torch.equal(loaded.model.noise_std, model.noise_std)
    assert all(not p.requires_grad for p in loaded.model.parameters())
    for a, b in zip(loaded.generate(TEXTS, batch_size=1), in_memory, strict=True):
        assert a.shape == b.shape and a.shape[1:] == (2, 3) and a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-5)  # batch composition: float rounding only
    with pytest.raises(TypeError, match="list of texts"):
        loaded.generate("am morgen")
    with pytest.raises(FileNotFoundError, match="train_pt"):
        pt_lib.load_pt(tmp_path / "nothing")
    (tmp_path / "pt/vocab.json").write_text(json.dumps(vocab.itos[:-1]))
    with pytest.raises(ValueError, match="vocab_size"):
        pt_lib.load_pt(tmp_path / "pt")


def test_nslpg_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    vocab, glosses = Vocab.build(TEXTS), GlossSeqVocab.build([t.upper() for t in TEXTS])
    vae = VAE(VAEConfig(n_features=6, hidden=[8, 5], latent=3))
    sizes = {"d_model": 16, "heads": 2, "enc_layers": 1, "dec_layers": 1, "gloss_layers": 1, "ffn": 32}
    base = NSLPGConfig(**sizes, vocab_size=len(vocab), max_frames=10, latent=3, n_features=6)
    config = nslpg_lib.variant_config(base, "gs_ft", 0.1, len(glosses))
    model = NSLPG(config, vae).eval()
    with torch.no_grad():
        model.vae.decoder[0].weight.add_(0.5)  # a "fine-tuned" decoder travels with the model
    lengths = [4, 7, 2]
    ids, mask = encode_batch(vocab, TEXTS)
    frames, _ = model.generate(ids, mask, torch.tensor(lengths))
    nslpg_lib.save_nslpg(tmp_path / "ns", model, vocab, {"variant": "gs_ft", "n_joints": 2}, glosses)
    assert not any(k.startswith("vae.") for k in _state(tmp_path / "ns/model.pt"))
    loaded = nslpg_lib.load_nslpg(tmp_path / "ns")
    assert loaded.oracle_length and loaded.variant == "gs_ft"
    assert all(not p.requires_grad for p in loaded.model.parameters())
    poses = loaded.generate(TEXTS, lengths, batch_size=2)
    for i, (p, n) in enumerate(zip(poses, lengths, strict=True)):
        assert p.shape == (n, 2, 3)
        np.testing.assert_allclose(p.reshape(n, 6), frames[i, :n].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="needs lengths"):
        loaded.generate(TEXTS)
    with pytest.raises(ValueError, match="2 lengths for 3 texts"):
        loaded.generate(TEXTS, [3, 4])
    with pytest.raises(ValueError, match="gloss vocabulary"):
        nslpg_lib.save_nslpg(tmp_path / "bad", model, vocab, {"n_joints": 2})
