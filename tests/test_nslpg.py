"""NSLP-G baseline: shapes through the VAE decoder, masked pose loss, GS (causal gloss decoder),
frozen vs fine-tuned VAE, oracle vs regulator length, the NAR decoder, config validation."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
from torch import nn

from pipeline.config import ParamsError
from pipeline.data.sequences import length_mask
from pipeline.models.backtranslator import Vocab
from pipeline.models.nslpg import (
    BOS_ID,
    EOS_ID,
    NSLPG,
    PAD_ID,
    GlossSeqVocab,
    NSLPGConfig,
    causal_mask,
    encode_batch,
)
from pipeline.models.student import predict_frames
from pipeline.models.vae import VAE, VAEConfig

F_DIM, LATENT = 6, 3  # 2 joints x 3 channels
TEXTS = ["regen im norden", "morgen sonne", "viel regen und wind im norden"]
GLOSSES = ["REGEN NORD", "MORGEN SONNE", "REGEN WIND NORD"]
TINY: dict[str, Any] = {
    "d_model": 16,
    "heads": 2,
    "enc_layers": 1,
    "dec_layers": 2,
    "gloss_layers": 1,
    "ffn": 32,
    "length_hidden": [8],
    "max_frames": 10,
    "latent": LATENT,
    "n_features": F_DIM,
}


class LinearStandIn(nn.Module):
    """VAE-like stand-in with a closed form: ``decode(z) = z @ W`` (no Sigmoid); has encoder/decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(F_DIM, LATENT)
        self.decoder = nn.Linear(LATENT, F_DIM, bias=False)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


def _vocabs() -> tuple[Vocab, GlossSeqVocab]:
    return Vocab.build(TEXTS), GlossSeqVocab.build(GLOSSES)


def _model(vae: nn.Module | None = None, **overrides: Any) -> NSLPG:
    torch.manual_seed(0)
    vocab, gvocab = _vocabs()
    kw = {**TINY, "vocab_size": len(vocab), "gloss_vocab_size": len(gvocab), **overrides}
    if vae is None:
        vae = VAE(VAEConfig(n_features=F_DIM, hidden=[8, 8], latent=LATENT))
    return NSLPG(NSLPGConfig(**kw), vae)


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    vocab, gvocab = _vocabs()
    ids, mask = encode_batch(vocab, TEXTS)
    gloss_ids, _ = encode_batch(gvocab, GLOSSES)
    lengths = torch.tensor([4, 2, 5])
    g = torch.Generator().manual_seed(1)
    poses = torch.rand(3, 6, F_DIM, generator=g) * length_mask(lengths, 6)[..., None]  # T = 6 > max length
    return ids, mask, poses, lengths, gloss_ids


# -- vocabularies -----------------------------------------------------------------------------------


def test_gloss_vocab_keeps_case_and_vocab_specials() -> None:
    gvocab = GlossSeqVocab.build(GLOSSES)
    assert gvocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and gvocab.itos[4] in ("NORD", "REGEN")
    ids = gvocab.encode("REGEN WIND XYZ")
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID and ids[-2] == 3  # unknown -> <unk>
    assert gvocab.decode(ids[1:]) == "REGEN WIND <unk>"
    batch, mask = encode_batch(gvocab, ["SONNE", "REGEN WIND NORD"])
    assert batch.shape == (2, 5) and batch[0, 3:].tolist() == [PAD_ID, PAD_ID]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1] * 5]


# -- 1. shapes -----------------------------------------------------------------------------------


def test_latent_per_frame_decodes_to_frames_in_unit_range() -> None:
    model = _model().eval()
    ids, mask, _, lengths, _ = _batch()
    with torch.no_grad():
        out = model(ids, mask, lengths, n_frames=6)
        frames = model.decode_frames(out.z, lengths)
    assert out.z.shape == (3, 6, LATENT) and out.ratio_logit is None and out.gloss_logits is None
    assert frames.shape == (3, 6, F_DIM)
    real = length_mask(lengths, 6)
    assert ((frames[real] > 0) & (frames[real] < 1)).all()  # our VAE's Sigmoid decoder
    assert (frames[~real] == 0).all()
    torch.testing.assert_close(frames[real], model.vae.decode(out.z[real]))  # the VAE decoder itself
    assert out.z.std() > 0  # a deterministic latent per frame, not constant


# -- 2. pose loss masking -------------------------------------------------------------------------


def test_pose_loss_is_the_masked_mse_and_ignores_padded_frames() -> None:
    model = _model().eval()
    ids, mask, poses, lengths, _ = _batch()
    losses = model.losses(ids, mask, poses, lengths)
    assert set(losses) == {"pose", "total"}  # base: no gloss, no length term
    with torch.no_grad():
        frames = model.decode_frames(model(ids, mask, lengths, n_frames=6).z, lengths)
    real = length_mask(lengths, 6)
    manual = ((frames - poses) ** 2).sum() / (real.sum() * F_DIM)  # pads are 0 in both
    assert losses["pose"].item() == pytest.approx(manual.item(), rel=1e-5)
    assert losses["total"].item() == pytest.approx(losses["pose"].item())
    noisy = poses.clone()
    noisy[~real] = 0.9  # garbage in the padded frames ...
    wider = torch.cat([noisy, torch.full((3, 4, F_DIM), 0.7)], dim=1)  # ... and more padding
    for other in (noisy, wider):
        assert model.losses(ids, mask, other, lengths)["pose"].item() == pytest.approx(
            losses["pose"].item(), rel=1e-5
        )
    changed = poses.clone()
    changed[1, 1, 0] += 0.3  # a real frame does change it
    assert model.losses(ids, mask, changed, lengths)["pose"].item() != pytest.approx(losses["pose"].item())


# -- 3. GS ----------------------------------------------------------------------------------------


def test_gloss_loss_only_with_gloss_weight_and_reaches_the_text_encoder() -> None:
    ids, mask, poses, lengths, gloss_ids = _batch()
    base = _model()
    assert base.gloss_decoder is None  # base builds no gloss decoder
    assert "gloss" not in base.losses(ids, mask, poses, lengths, gloss_ids)
    gs = _model(gloss_weight=0.5)
    with pytest.raises(ValueError, match="gloss_ids"):
        gs.losses(ids, mask, poses, lengths)
    losses = gs.losses(ids, mask, poses, lengths, gloss_ids)
    assert set(losses) == {"pose", "gloss", "total"}
    v = len(GlossSeqVocab.build(GLOSSES))
    assert 0 < losses["gloss"].item() < 2 * math.log(v)  # near log V at initialisation
    assert losses["total"].item() == pytest.approx(losses["pose"].item() + 0.5 * losses["gloss"].item())
    # label-smoothed CE of the targets gloss_ids[:, 1:], <pad> ignored
    out = gs(ids, mask, lengths, gloss_ids=gloss_ids)
    assert out.gloss_logits is not None and out.gloss_logits.shape == (3, gloss_ids.shape[1] - 1, v)
    keep = gloss_ids[:, 1:] != PAD_ID
    manual = nn.functional.cross_entropy(out.gloss_logits[keep], gloss_ids[:, 1:][keep], label_smoothing=0.1)
    assert losses["gloss"].item() == pytest.approx(manual.item(), rel=1e-5)
    gs.zero_grad()
    losses["gloss"].backward()
    grads = [p.grad for p in gs.encoder.parameters()] + [gs.embed.weight.grad]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in gs.decoder.parameters())  # the gloss term skips the pose decoder


def test_gloss_decoder_is_causal() -> None:
    gs = _model(gloss_weight=0.1).eval()
    ids, mask, _, _, gloss_ids = _batch()
    gloss_in = gloss_ids[:, :-1].clone()
    with torch.no_grad():
        states = gs.encode(ids, mask)
        logits = gs.decode_glosses(states, mask, gloss_in)
        later = gloss_in.clone()
        later[:, 2:] = torch.tensor([5, 6, 4])[: later.shape[1] - 2]  # change every input after i = 1
        changed = gs.decode_glosses(states, mask, later)
    torch.testing.assert_close(changed[:, :2], logits[:, :2])  # positions 0..1 see only inputs 0..1
    assert not torch.allclose(changed[:, 2:], logits[:, 2:])  # later positions do see them
    assert causal_mask(3).tolist() == [[False, True, True], [False, False, True], [False, False, False]]


# -- 4. +ft -----------------------------------------------------------------------------------------


def test_frozen_vae_gets_no_gradient_and_stays_in_eval_mode() -> None:
    model = _model()
    ids, mask, poses, lengths, _ = _batch()
    model.train()
    assert model.training and model.decoder.training and not model.vae.training
    assert not any(p.requires_grad for p in model.vae.parameters())
    trainable = {id(p) for p in model.trainable_parameters()}
    assert not trainable & {id(p) for p in model.vae.parameters()}
    assert id(model.to_latent.weight) in trainable
    before = {k: v.clone() for k, v in model.vae.state_dict().items()}
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.1)
    model.losses(ids, mask, poses, lengths)["total"].backward()
    opt.step()
    assert all(p.grad is None for p in model.vae.parameters())
    assert model.to_latent.weight.grad is not None and float(model.to_latent.weight.grad.abs().sum()) > 0
    for k, v in model.vae.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_finetune_trains_only_the_vae_decoder() -> None:
    model = _model(finetune_vae=True)
    ids, mask, poses, lengths, _ = _batch()
    model.train()
    assert model.vae.training  # +ft: the VAE follows the model's mode
    vae = model.vae
    assert isinstance(vae, VAE)
    encoder_side = [*vae.encoder.parameters(), *vae.mu.parameters(), *vae.logvar.parameters()]
    assert all(p.requires_grad for p in vae.decoder.parameters())
    assert not any(p.requires_grad for p in encoder_side)
    trainable = {id(p) for p in model.trainable_parameters()}
    assert {id(p) for p in vae.decoder.parameters()} <= trainable
    assert not trainable & {id(p) for p in encoder_side}
    model.losses(ids, mask, poses, lengths)["total"].backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in vae.decoder.parameters())
    assert all(p.grad is None for p in encoder_side)


def test_finetune_needs_a_vae_decoder_module() -> None:
    class DecodeOnly(nn.Module):
        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return z

    with pytest.raises(ValueError, match="decoder"):
        _model(DecodeOnly(), finetune_vae=True)


# -- 5. length --------------------------------------------------------------------------------------


def test_oracle_generation_uses_the_given_lengths() -> None:
    model = _model()
    model.train()
    ids, mask, _, _, _ = _batch()
    frames, lengths = model.generate(ids, mask, torch.tensor([3, 1, 4]))
    assert lengths.tolist() == [3, 1, 4] and frames.shape == (3, 4, F_DIM)
    assert (frames[0, 3:] == 0).all() and (frames[1, 1:] == 0).all() and (frames[2] > 0).all()
    assert model.training and not frames.requires_grad  # mode restored, no graph
    with pytest.raises(ValueError, match="oracle.*needs lengths"):
        model.generate(ids, mask)
    with pytest.raises(ValueError, match="lengths must be in 1..4"):
        model.generate(ids, mask, torch.tensor([3, 0, 4]))


def test_regulator_predicts_lengths_and_is_trained_with_bce() -> None:
    model = _model(LinearStandIn(), length="regulator", length_weight=2.0)
    ids, mask, poses, lengths, _ = _batch()
    losses = model.losses(ids, mask, poses, lengths)
    assert set(losses) == {"pose", "length", "total"}
    with torch.no_grad():
        states = model.encode(ids, mask)
        assert model.length is not None
        logit = model.length(states[:, 0])
    ratio = torch.sigmoid(logit)
    target = lengths.float() / 10  # T / max_frames
    bce = -(target * ratio.log() + (1 - target) * (1 - ratio).log()).mean()
    assert losses["length"].item() == pytest.approx(bce.item(), rel=1e-5)
    assert losses["total"].item() == pytest.approx(losses["pose"].item() + 2.0 * bce.item(), rel=1e-5)
    frames, predicted = model.generate(ids, mask)
    assert predicted.tolist() == predict_frames(ratio, 10).tolist()
    assert frames.shape == (3, int(predicted.max()), F_DIM)
    _, given = model.generate(ids, mask, torch.tensor([2, 2, 3]))  # given lengths override
    assert given.tolist() == [2, 2, 3]
    with pytest.raises(ValueError, match="max_frames=10"):
        model.losses(ids, mask, torch.zeros(3, 11, F_DIM), torch.tensor([11, 2, 3]))


# -- 6. the non-autoregressive decoder ----------------------------------------------------------


def test_nar_decoder_frames_attend_to_all_real_frames_and_ignore_padding() -> None:
    model = _model().eval()
    ids, mask, _, _, _ = _batch()
    lengths = torch.tensor([3, 2, 4])
    with torch.no_grad():
        states = model.encode(ids, mask)
        z = model.decode_latents(states, mask, lengths, 4)
        padded = model.decode_latents(states, mask, lengths, 9)  # 5 more padded queries
        longer = model.decode_latents(states, mask, lengths + 1, 5)
    real = length_mask(lengths, 4)
    torch.testing.assert_close(padded[:, :4][real], z[real])  # padding is masked as keys
    # one more real frame changes frame 0: no causal mask (frame 0 sees later frames)
    assert not torch.allclose(longer[:, 0], z[:, 0])
    # the queries are the same for every sentence: what differs comes from the text
    assert not torch.allclose(z[0, 0], z[1, 0])


def test_text_padding_is_ignored() -> None:
    model = _model().eval()
    vocab, _ = _vocabs()
    ids, mask = encode_batch(vocab, TEXTS[:1])
    wide_ids = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    wide_mask = torch.cat([mask, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    lengths = torch.tensor([4])
    a, _ = model.generate(ids, mask, lengths)
    b, _ = model.generate(wide_ids, wide_mask, lengths)
    torch.testing.assert_close(a, b)


# -- 7. config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"length": "predict"}, "nslpg.length='predict'"),
        ({"d_model": 15}, "nslpg.d_model=15"),
        ({"heads": 0}, "nslpg.heads=0"),
        ({"dropout": 1.0}, "nslpg.dropout=1.0"),
        ({"gloss_weight": -0.1}, "nslpg.gloss_weight=-0.1"),
        ({"label_smoothing": 1.0}, "nslpg.label_smoothing=1.0"),
        ({"finetune_vae": "yes"}, "nslpg.finetune_vae='yes'"),
        ({"length_hidden": [8, 0]}, r"nslpg.length_hidden=\[8, 0\]"),
        ({"gloss_weight": 0.1, "gloss_vocab_size": 4}, "nslpg.gloss_vocab_size=4"),
        ({"max_frames": 0}, "nslpg.max_frames=0"),
    ],
)
def test_config_validation_names_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ParamsError, match=key):
        NSLPGConfig(**{**TINY, **overrides})


def test_config_must_match_the_vae() -> None:
    with pytest.raises(ParamsError, match="nslpg.latent=4"):
        _model(latent=4)
    config = NSLPGConfig(**TINY)
    assert config.length == "oracle" and config.gloss_weight == 0 and not config.finetune_vae
    assert NSLPGConfig(**config.to_dict()) == config
    assert dataclasses.fields(NSLPGConfig)  # a plain dataclass: parse_section can build it
