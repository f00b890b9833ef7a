"""Stage train_student end to end on a tiny workspace: outputs, load_student, MLflow, seeds, resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import lifted_store, save_lifted, save_tiny_bert

from pipeline.config import ParamsError
from pipeline.data.store import SplitStore, StoreError
from pipeline.inference import load_student, model_digest
from pipeline.models.io import save_model
from pipeline.models.vae import VAE, VAEConfig
from pipeline.stages import train_student
from pipeline.tools import serve
from pipeline.training import engine

WORDS = ["am", "morgen", "regen", "sonne", "wind", "nord", "sued", "tag", "nacht", "kalt", "warm", "wolken"]
N_JOINTS = 3
EXPERIMENT = "test-student"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer, 32-wide random BERT with the MiniLM WordPiece tokenizer, saved as a local model dir."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), max_positions=64, seed=0)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the module (creating one costs seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _split(rng: np.random.Generator, lengths: list[int]) -> SplitStore:
    """Smooth sequences of ``lengths`` frames (``N_JOINTS`` joints, in (0, 1)) with 2-5 random words each."""
    seqs, texts = [], []
    for n in lengths:
        t = np.linspace(0, 1, n)[:, None, None]
        seqs.append((0.5 + 0.3 * np.sin(6 * t + rng.random((1, N_JOINTS, 3)) * 3)).astype(np.float32))
        texts.append(" ".join(rng.choice(WORDS, size=int(rng.integers(2, 6)))))
    return lifted_store(seqs, texts)


def write_data(root: Path) -> Path:
    """data/lifted/{train,dev} (+ transform.json) and models/vae of a tiny run under ``root``."""
    rng = np.random.default_rng(7)
    train = _split(rng, [4, 7, 10, 5, 12, 8, 6, 9])
    dev = _split(rng, [5, 14, 8])  # 14 > longest train (12)
    save_lifted(root, {"train": train, "dev": dev})
    torch.manual_seed(3)
    save_model(VAE(VAEConfig(n_features=N_JOINTS * 3, hidden=[8, 6], latent=4)), root / "models/vae")
    return root


@pytest.fixture()
def stage(
    workspace: Callable[..., Path],
    tmp_path: Path,
    tiny_bert: Path,
    tracking_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., dict]:
    """Write the data (:func:`write_data`) into the workspace; return ``stage(global_seed=5, loss=None,
    **student)``, which writes params.yaml (the repo's, default profile, a tiny student on
    ``tiny_bert`` updated by ``student``) and runs ``train_student.main([])`` there."""
    write_data(tmp_path)

    def run(global_seed: int = 5, loss: dict | None = None, **student: object) -> dict:
        sections = {
            "seed": global_seed,
            "student": {
                "text_encoder": "bert",
                "pretrained": str(tiny_bert),
                "freeze_bert": False,  # fine-tuned unless a test freezes it
                "dropout": 0.1,
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
            "loss": {"pose": 1.0, "distil": 1.0, "length": 1.0, **(loss or {})},
            "train": {"progress_bar": False, "log_every_n_steps": 1},
            "tracking": {"experiment": EXPERIMENT},
        }
        workspace(profile="default", **sections)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # the module's store
        return train_student.main([])

    return run


def _runs(uri: str) -> tuple:
    """The MLflow client and the ``train_student`` runs of the test experiment (newest first)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    return client, client.search_runs([exp.experiment_id], "attributes.run_name = 'train_student'")


def _weights() -> dict[str, torch.Tensor]:
    """The saved student's state dict (models/student/model.pt of the cwd)."""
    return torch.load("models/student/model.pt")


@pytest.mark.slow
def test_stage_end_to_end_outputs_and_mlflow(stage: Callable[..., dict], tracking_uri: str) -> None:
    metrics = stage()
    root = Path.cwd()
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
    assert config["joints"] == [f"j{k}" for k in range(N_JOINTS)] and not config["student"]["freeze_bert"]
    lift_tf = (root / "models/student/lift_transform.json").read_text()
    assert lift_tf == (root / "data/lifted/transform.json").read_text()  # the model is self-contained
    assert not list((root / "models/student_ckpt").glob("*.ckpt"))  # cleared after success
    # load_student: generate / predict_lengths
    gen = load_student(root / "models/student")
    texts = ["am morgen regen", "wind", "sonne sonne kalt nacht"]
    poses = gen.generate(texts, batch_size=2)
    lengths = gen.predict_lengths(texts)
    assert [p.shape for p in poses] == [(int(t), N_JOINTS, 3) for t in lengths]
    assert all(1 <= t <= 12 for t in lengths)
    assert all(p.dtype == np.float32 and p.min() >= 0 and p.max() <= 1 for p in poses)
    again = load_student(root / "models/student").generate(texts[:1])[0]
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
    # the student as the run's pyfunc model (not also as plain artifacts), registered with its lineage
    assert not any(a.path == "model" for a in client.list_artifacts(run.info.run_id))
    (output,) = run.outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    assert logged.tags["nar.model_digest"] == model_digest(root / "models/student")
    import mlflow

    assert mlflow.models.get_model_info(f"models:/{output.model_id}").signature.inputs.input_names() == [
        "text"
    ]
    version = serve.register(root / "models/student", "student-e2e", EXPERIMENT, tracking_uri)
    assert client.get_model_version("student-e2e", version).run_id == run.info.run_id


@pytest.mark.slow
def test_same_seed_same_metrics_and_distil_zero(stage: Callable[..., dict]) -> None:
    a = stage()
    wa = _weights()
    b = stage()  # the same params again: a fresh run (the first one's checkpoints were cleared)
    wb = _weights()
    assert b["resumed_from_epoch"] == 0
    assert a["dev"] == b["dev"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = stage(loss={"distil": 0.0})
    assert "distil" not in c["dev"] and c["dev"]["pose"] != a["dev"]["pose"]
    assert c["dev"]["total"] == pytest.approx(c["dev"]["pose"] + c["dev"]["length"])


def test_training_seed_rules() -> None:
    assert train_student.training_seed({"seed": 5, "student": {"seed": None}}) == 5
    assert train_student.training_seed({"seed": 5, "student": {"seed": 0}}) == 0
    for bad in ("1", -1, 1.5, True):
        with pytest.raises(ParamsError, match="student.seed"):
            train_student.training_seed({"seed": 5, "student": {"seed": bad}})


@pytest.mark.slow
def test_student_seed_overrides_the_global_seed(stage: Callable[..., dict]) -> None:
    def trained(global_seed: int, student_seed: int | None) -> dict[str, torch.Tensor]:
        stage(global_seed=global_seed, seed=student_seed)
        return _weights()

    base = trained(3, None)
    same = trained(99, 3)  # student.seed 3 = global seed 3 for this stage
    other = trained(3, 4)
    trainable = [k for k in base if not k.startswith("encoder.")]
    assert all(torch.equal(base[k], same[k]) for k in base)
    assert any(not torch.equal(base[k], other[k]) for k in trainable)


class KillError(Exception):
    """Simulated crash."""


@pytest.mark.slow
def test_resume_after_simulated_kill(
    stage: Callable[..., dict], tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightning as L

    real = engine.make_trainer

    class Crash(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if trainer.current_epoch == 2:
                raise KillError("killed")

    def crashing(*args: object, callbacks: list | None = None, **kwargs: object) -> tuple:
        return real(*args, callbacks=[*(callbacks or []), Crash()], **kwargs)

    monkeypatch.setattr(engine, "make_trainer", crashing)
    with pytest.raises(KillError):
        stage(epochs=3)
    root = Path.cwd()
    ckpt = root / "models/student_ckpt"
    assert (ckpt / "last.ckpt").is_file() and not (root / "models/student").exists()
    (ckpt / "on_exception.ckpt").unlink(missing_ok=True)  # a SIGKILL leaves only the periodic one
    monkeypatch.setattr(engine, "make_trainer", real)
    metrics = stage(epochs=3)
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs"] == 3
    statuses = sorted(r.info.status for r in _runs(tracking_uri)[1])
    assert "FAILED" in statuses


def test_too_long_sequence_raises_naming_it(stage: Callable[..., dict]) -> None:
    # raised while reading the data, before any training
    msg = r"data/lifted/dev: sequence 's1' \(row 1\) has 14 frames > student.max_frames=12"
    with pytest.raises(StoreError, match=msg):
        stage(on_long="raise")


@pytest.mark.slow
def test_frozen_encoder_cache_gives_the_same_training(stage: Callable[..., dict]) -> None:
    cached = stage(freeze_bert=True)
    wa = _weights()
    ref_a = json.loads(Path("models/student/config.json").read_text())["encoder_reference"]
    generated = load_student("models/student").generate(["am tag regen"])
    assert generated[0].shape[1:] == (N_JOINTS, 3)
    plain = stage(freeze_bert=True, cache_encoder=False)
    wb = _weights()
    ref_b = json.loads(Path("models/student/config.json").read_text())["encoder_reference"]
    for key in ("pose", "distil", "length", "total"):
        assert cached["dev"][key] == pytest.approx(plain["dev"][key], rel=1e-4), key
    # frozen: untouched, so none of it is stored (it comes from the pretrained reference: the same)
    assert not any(k.startswith("encoder.") for k in [*wa, *wb]) and set(wa) == set(wb)
    assert ref_a == ref_b and ref_a["omitted"] > 0
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-5)
