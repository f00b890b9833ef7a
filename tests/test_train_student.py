"""Stage train_student end to end on a tiny workspace: outputs, load_student, MLflow, seeds, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import save_tiny_bert

from pipeline import train_student, training
from pipeline.config import ParamsError
from pipeline.models.vae import VAE, VAEConfig, save_vae
from pipeline.store import SplitStore, StoreError

WORDS = ["am", "morgen", "regen", "sonne", "wind", "nord", "sued", "tag", "nacht", "kalt", "warm", "wolken"]
N_JOINTS = 3


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer, 32-wide random BERT with the MiniLM WordPiece tokenizer, saved as a local model dir."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), max_positions=64, seed=0)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _split(rng: np.random.Generator, lengths: list[int], prefix: str) -> SplitStore:
    seqs, index = [], []
    for i, n in enumerate(lengths):
        t = np.linspace(0, 1, n)[:, None, None]
        seqs.append((0.5 + 0.3 * np.sin(6 * t + rng.random((1, N_JOINTS, 3)) * 3)).astype(np.float32))
        words = rng.choice(WORDS, size=int(rng.integers(2, 6)))
        index.append({"name": f"{prefix}{i}", "text": " ".join(words)})
    return SplitStore.from_sequences(seqs, index, [f"j{k}" for k in range(N_JOINTS)], ["x", "y", "z"])


def make_workspace(root: Path, bert: Path, **student: object) -> Path:
    """data/lifted/{train,dev}, models/vae and params.yaml of a tiny run under ``root``."""
    rng = np.random.default_rng(7)
    _split(rng, [4, 7, 10, 5, 12, 8, 6, 9], "tr").save(root / "data/lifted/train")
    _split(rng, [5, 14, 8], "dv").save(root / "data/lifted/dev")  # 14 > longest train (12)
    torch.manual_seed(3)
    save_vae(VAE(VAEConfig(n_features=N_JOINTS * 3, hidden=[8, 6], latent=4)), root / "models/vae")
    params = {
        "profile": "default",
        "seed": 5,
        "student": {
            "text_encoder": "bert",
            "pretrained": str(bert),
            "decoder_dim": 16,
            "decoder_layers": 1,
            "decoder_heads": 2,
            "decoder_ffn": 32,
            "length_hidden": [16],
            "max_frames": None,
            "on_long": "truncate",
            "epochs": 2,
            "batch_size": 4,
            "lr": 1e-3,
            **student,
        },
        "loss": {"pose": 1.0, "distil": 1.0, "length": 1.0},
        "train": {"progress_bar": False, "log_every_n_steps": 1},
        "tracking": {"experiment": "test-student"},
        "profiles": {},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def run_stage(root: Path, uri: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    return train_student.main()


def _runs(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("test-student")
    return client, client.search_runs([exp.experiment_id], "attributes.run_name = 'train_student'")


def test_stage_end_to_end_outputs_and_mlflow(
    tmp_path: Path, tiny_bert: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_workspace(tmp_path, tiny_bert)
    metrics = run_stage(root, tracking_uri, monkeypatch)
    # outputs
    saved = json.loads((root / "metrics/train_student.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["max_frames"] == 12 and saved["truncated"] == {"train": 0, "dev": 1}
    assert saved["epochs"] == 2 and saved["train_sequences"] == 8 and saved["train_samples_per_s"] > 0
    dev = saved["dev"]
    assert set(dev) >= {"pose", "distil", "length", "total", "dur_acc", "length_mae_frames"}
    assert dev["total"] == pytest.approx(dev["pose"] + dev["distil"] + dev["length"])
    assert 0 <= dev["dur_acc"] <= 1 and dev["sequences"] == 3
    config = json.loads((root / "models/student/config.json").read_text())
    assert config["student"]["max_frames"] == 12 and config["n_joints"] == N_JOINTS
    assert not list((root / "models/student_ckpt").glob("*.ckpt"))  # cleared after success
    # load_student: generate / predict_lengths
    gen = train_student.load_student(root / "models/student")
    texts = ["am morgen regen", "wind", "sonne sonne kalt nacht"]
    poses = gen.generate(texts, batch_size=2)
    lengths = gen.predict_lengths(texts)
    assert [p.shape for p in poses] == [(int(t), N_JOINTS, 3) for t in lengths]
    assert all(1 <= t <= 12 for t in lengths)
    assert all(p.dtype == np.float32 and p.min() >= 0 and p.max() <= 1 for p in poses)
    again = train_student.load_student(root / "models/student").generate(texts[:1])[0]
    np.testing.assert_allclose(again, poses[0], atol=1e-5)  # batch composition: float rounding only
    with pytest.raises(TypeError, match="list of texts"):
        gen.generate("am morgen")
    # MLflow child run with params, per-step/epoch losses and final metrics
    client, runs = _runs(tracking_uri)
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["student.decoder_layers"] == "1" and run.data.params["loss.distil"] == "1.0"
    expected = ("train/total_step", "train/pose_epoch", "val/dur_acc", "val/distil", "dev.dur_acc")
    for key in expected:
        assert key in run.data.metrics, key
    assert len(client.get_metric_history(run.info.run_id, "train/total_step")) == 4  # 2 epochs x 2 batches
    assert run.data.tags["mlflow.parentRunId"]
    assert any(a.path == "model" for a in client.list_artifacts(run.info.run_id))


def test_same_seed_same_metrics_and_distil_zero(
    tmp_path: Path, tiny_bert: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = run_stage(make_workspace(tmp_path / "a", tiny_bert), tracking_uri, monkeypatch)
    b = run_stage(make_workspace(tmp_path / "b", tiny_bert), tracking_uri, monkeypatch)
    assert a["dev"] == b["dev"]
    wa = torch.load(tmp_path / "a/models/student/model.pt")
    wb = torch.load(tmp_path / "b/models/student/model.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    root = make_workspace(tmp_path / "c", tiny_bert)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["loss"]["distil"] = 0.0
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    c = run_stage(root, tracking_uri, monkeypatch)
    assert "distil" not in c["dev"] and c["dev"]["pose"] != a["dev"]["pose"]
    assert c["dev"]["total"] == pytest.approx(c["dev"]["pose"] + c["dev"]["length"])


def test_student_seed_overrides_the_global_seed(
    tmp_path: Path, tiny_bert: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.train_student import training_seed

    assert training_seed({"seed": 5, "student": {"seed": None}}) == 5
    assert training_seed({"seed": 5, "student": {"seed": 0}}) == 0
    for bad in ("1", -1, 1.5, True):
        with pytest.raises(ParamsError, match="student.seed"):
            training_seed({"seed": 5, "student": {"seed": bad}})

    def trained(name: str, global_seed: int, student_seed: int | None) -> dict[str, torch.Tensor]:
        root = make_workspace(tmp_path / name, tiny_bert)
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["seed"], params["student"]["seed"] = global_seed, student_seed
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        run_stage(root, tracking_uri, monkeypatch)
        return torch.load(root / "models/student/model.pt")

    base = trained("a", 3, None)
    same = trained("b", 99, 3)  # student.seed 3 = global seed 3 for this stage
    other = trained("c", 3, 4)
    trainable = [k for k in base if not k.startswith("encoder.")]
    assert all(torch.equal(base[k], same[k]) for k in base)
    assert any(not torch.equal(base[k], other[k]) for k in trainable)


class KillError(Exception):
    """Simulated crash."""


def test_resume_after_simulated_kill(
    tmp_path: Path, tiny_bert: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightning as L

    root = make_workspace(tmp_path, tiny_bert, epochs=3)
    real = training.make_trainer

    class Crash(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if trainer.current_epoch == 2:
                raise KillError("killed")

    def crashing(*args, callbacks=None, **kwargs):
        return real(*args, callbacks=[*(callbacks or []), Crash()], **kwargs)

    monkeypatch.setattr(training, "make_trainer", crashing)
    with pytest.raises(KillError):
        run_stage(root, tracking_uri, monkeypatch)
    ckpt = root / "models/student_ckpt"
    assert (ckpt / "last.ckpt").is_file() and not (root / "models/student").exists()
    (ckpt / "on_exception.ckpt").unlink(missing_ok=True)  # a SIGKILL leaves only the periodic one
    monkeypatch.setattr(training, "make_trainer", real)
    metrics = run_stage(root, tracking_uri, monkeypatch)
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs"] == 3
    statuses = sorted(r.info.status for r in _runs(tracking_uri)[1])
    assert "FAILED" in statuses


def test_too_long_sequence_raises_naming_it(
    tmp_path: Path, tiny_bert: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_workspace(tmp_path, tiny_bert, on_long="raise")
    msg = r"dev: sequence 'dv1' \(row 1\) has 14 frames > student.max_frames=12"
    with pytest.raises(StoreError, match=msg):
        run_stage(root, tracking_uri, monkeypatch)


def test_frozen_encoder_cache_gives_the_same_training(
    tmp_path: Path, tiny_bert: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = run_stage(make_workspace(tmp_path / "a", tiny_bert, freeze_bert=True), tracking_uri, monkeypatch)
    plain = run_stage(
        make_workspace(tmp_path / "b", tiny_bert, freeze_bert=True, cache_encoder=False),
        tracking_uri,
        monkeypatch,
    )
    for key in ("pose", "distil", "length", "total"):
        assert cached["dev"][key] == pytest.approx(plain["dev"][key], rel=1e-4), key
    wa = torch.load(tmp_path / "a/models/student/model.pt")
    wb = torch.load(tmp_path / "b/models/student/model.pt")
    encoder = [k for k in wa if k.startswith("encoder.")]
    assert encoder and all(torch.equal(wa[k], wb[k]) for k in encoder)  # frozen: untouched
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-5)
    generated = train_student.load_student(tmp_path / "a/models/student").generate(["am tag regen"])
    assert generated[0].shape[1:] == (N_JOINTS, 3)
