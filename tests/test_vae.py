"""Frame VAE (Eq. 1-2, 7): shapes, Sigmoid range, loss terms vs hand-computed values, save/load."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.config import ParamsError, parse_section
from pipeline.data.skeleton import MANUAL
from pipeline.models.io import save_model
from pipeline.models.vae import VAE, FeatureMap, VAEConfig, load_vae, local_anchors, vae_loss
from pipeline.training.sections import VAESection


def _model(**kw: object) -> VAE:
    """A seeded 150-feature VAE with hidden [32, 16] and latent 4."""
    torch.manual_seed(0)
    return VAE(VAEConfig(n_features=150, hidden=[32, 16], latent=4, **kw))


def test_shapes_and_sigmoid_range() -> None:
    m = _model()
    y = torch.rand(5, 50, 3)
    mu, logvar = m.encode(y)
    assert mu.shape == logvar.shape == (5, 4)
    y_hat, mu2, _ = m(y.reshape(5, 150))
    assert y_hat.shape == (5, 150) and torch.equal(mu, mu2)
    out = m.decode(torch.randn(2, 7, 4) * 50)  # extreme latents still map into [0, 1]
    assert out.shape == (2, 7, 150) and out.min() >= 0 and out.max() <= 1
    assert m.encode(torch.rand(2, 3, 150))[0].shape == (2, 3, 4)
    with pytest.raises(ValueError, match=r"150 features, got shape \(2, 7\)"):
        m.encode(torch.rand(2, 7))


def test_three_linear_layers_each_and_xavier_init() -> None:
    m = _model()
    enc = [x for x in m.encoder if isinstance(x, torch.nn.Linear)] + [m.mu]
    dec = [x for x in m.decoder if isinstance(x, torch.nn.Linear)]
    assert len(enc) == 3 and len(dec) == 3
    assert [type(x).__name__ for x in m.decoder].count("ReLU") == 2
    bound = math.sqrt(6 / (150 + 32))  # Xavier uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out))
    w = float(m.encoder[0].weight.detach().abs().max())
    assert 0.9 * bound < w <= bound
    assert all(float(x.bias.detach().abs().max()) == 0 for x in enc + dec)


def test_eval_mode_uses_mean_training_mode_samples() -> None:
    m = _model()
    y = torch.rand(3, 150)
    mu, _ = m.encode(y)
    m.eval()
    torch.testing.assert_close(m(y)[0], m.decode(mu))
    m.train()
    assert not torch.allclose(m(y)[0], m.decode(mu))


def test_loss_terms_match_hand_computation() -> None:
    logits = torch.tensor([[0.5, -1.0, 2.0], [0.0, 3.0, -0.5]])
    target = torch.tensor([[0.2, 0.0, 1.0], [0.5, 0.9, 0.3]])
    mu = torch.tensor([[0.1, -0.2], [0.3, 0.0]])
    logvar = torch.tensor([[0.0, -1.0], [0.5, 0.2]])
    p = torch.sigmoid(logits)
    bce = float(-(target * p.log() + (1 - target) * (1 - p).log()).mean())  # Eq. 7
    kl = float(np.mean([-0.5 * sum(1 + lv - m_**2 - math.exp(lv) for m_, lv in zip(r, s, strict=True))
                        for r, s in zip(mu.tolist(), logvar.tolist(), strict=True)]))  # fmt: skip
    out = vae_loss(logits, target, mu, logvar, "bce", 0.5)
    assert float(out["recon"]) == pytest.approx(bce, rel=1e-5)
    assert float(out["recon"]) == pytest.approx(float(F.binary_cross_entropy(p, target)), rel=1e-5)
    assert float(out["kl"]) == pytest.approx(kl, rel=1e-5)
    assert float(out["total"]) == pytest.approx(bce + 0.5 * kl, rel=1e-5)
    mse = vae_loss(logits, target, mu, logvar, "mse", 1e-4)
    assert float(mse["recon"]) == pytest.approx(float(((p - target) ** 2).mean()), rel=1e-5)
    assert float(mse["total"]) == pytest.approx(float(((p - target) ** 2).mean()) + 1e-4 * kl, rel=1e-5)
    assert float(vae_loss(logits, target, mu, logvar, "bce", 0.0)["total"]) == pytest.approx(bce, rel=1e-5)


def test_model_loss_uses_config_weight_and_checks_range() -> None:
    m = _model(kl_weight=0.25).eval()  # eval: z = mu, deterministic
    y = torch.rand(4, 150)
    out = m.loss(y)
    torch.testing.assert_close(out["total"], out["recon"] + 0.25 * out["kl"])
    y[1, 3] = -0.25
    with pytest.raises(ValueError, match=r"targets in \[0, 1\], got values in \[-0.25, "):
        m.loss(y)
    assert float(_model(loss="mse").eval().loss(y)["recon"].detach()) > 0  # MSE has no range condition


def test_config_validation() -> None:
    with pytest.raises(ParamsError, match=r"vae.loss='l1' is invalid"):
        VAEConfig(loss="l1")
    with pytest.raises(ParamsError, match=r"vae.hidden=\[64\] is invalid"):
        VAEConfig(hidden=[64])
    # the params section: the model's keys sit beside the training keys; n_features comes from the data
    raw = {"latent": 7, "lr": 1e-3, "epochs": 3, "batch_size": 8, "hidden": [9, 8]}
    sec = parse_section({"vae": raw}, "vae", VAESection)
    cfg = dataclasses.replace(sec.model, n_features=360)
    assert (cfg.latent, cfg.hidden, cfg.n_features) == (7, [9, 8], 360)
    assert (sec.fit.epochs, sec.fit.batch_size, sec.fit.lr) == (3, 8, 1e-3)
    with pytest.raises(ParamsError, match=r"vae.loss='l1' is invalid; expected one of 'bce', 'mse'"):
        parse_section({"vae": {**raw, "loss": "l1"}}, "vae", VAESection)
    with pytest.raises(ParamsError, match=r"unknown key\(s\) vae.n_features"):
        parse_section({"vae": {**raw, "n_features": 360}}, "vae", VAESection)


def test_save_load_round_trip(tmp_path: Path) -> None:
    m = _model(loss="mse").eval()
    save_model(m, tmp_path / "vae")
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["loss"] == "mse"
    back = load_vae(tmp_path / "vae")
    y, z = torch.rand(6, 150), torch.randn(6, 4)
    assert torch.equal(back(y)[0], m(y)[0]) and torch.equal(back.decode(z), m.decode(z))
    assert not back.training and not any(p.requires_grad for p in back.parameters())
    assert back.config == m.config


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"not a saved VAE, missing config.json"):
        load_vae(tmp_path)
    save_model(_model(), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(cfg | {"latent": 5}))
    with pytest.raises(ValueError, match=r"model.pt: weights do not match .*config.json"):
        load_vae(tmp_path)


def _local(**kw: object) -> VAE:
    """A seeded 120-joint (360-feature) VAE with ``features: local``, fitted on random frames."""
    torch.manual_seed(0)
    m = VAE(VAEConfig(n_features=360, hidden=[32, 16], latent=4, features="local", **kw))
    m.fit_features(0.2 + 0.6 * torch.rand(64, 360))
    return m


def test_local_anchors_follow_the_layout() -> None:
    a = local_anchors(120)
    assert all(a[j] == -1 for j in range(MANUAL["body_l_wrist"] + 1))  # the 8 body joints: absolute
    assert a[MANUAL["lhand_wrist"]] == MANUAL["body_l_wrist"]
    assert a[MANUAL["rhand_wrist"]] == MANUAL["body_r_wrist"]
    assert a[MANUAL["rhand_pinky4"]] == MANUAL["rhand_wrist"]
    assert a[MANUAL["lhand_thumb1"]] == MANUAL["lhand_wrist"]
    assert set(a[MANUAL["face_face0"] :]) == {MANUAL["body_nose"]}
    assert local_anchors(50) == a[:50]
    with pytest.raises(ParamsError, match=r"vae.features='local' needs the 50- or 120-joint"):
        VAEConfig(n_features=33, features="local")
    with pytest.raises(ParamsError, match=r"vae.features='x' is invalid"):
        VAEConfig(features="x")


@pytest.mark.parametrize("n_joints", [50, 120])
def test_feature_map_is_an_exact_inverse(n_joints: int) -> None:
    fm = FeatureMap(3 * n_joints)
    torch.manual_seed(1)
    train = 0.1 + 0.8 * torch.rand(200, 3 * n_joints, dtype=torch.float64).float()
    fm.fit(train)
    f = fm(train)
    assert float(f.min()) >= 0.0 and float(f.max()) <= 1.0
    assert float(f.min()) > 0.03 and float(f.max()) < 0.97  # the train range sits inside the margin
    torch.testing.assert_close(fm.inverse(f), train, atol=1e-6, rtol=0)  # absolute -> features -> absolute
    g = torch.rand(7, 3 * n_joints)
    torch.testing.assert_close(fm(fm.inverse(g), clip=False), g, atol=1e-5, rtol=0)  # and the other way
    # hand joints: wrist-relative; the local coordinate of a finger is (finger - hand wrist)
    y3 = train.reshape(200, n_joints, 3)
    loc = fm.local(train).reshape(200, n_joints, 3)
    j, w = MANUAL["rhand_index4"], MANUAL["rhand_wrist"]
    torch.testing.assert_close(loc[:, j], y3[:, j] - y3[:, w])


def test_local_vae_decodes_absolute_poses_and_bce_targets_stay_in_unit_range() -> None:
    m = _local().eval()
    y = 0.2 + 0.6 * torch.rand(5, 120, 3)
    mu, _ = m.encode(y)
    fm = m.feature_map
    assert fm is not None
    torch.testing.assert_close(m.decode(mu), fm.inverse(torch.sigmoid(m.decode_logits(mu))))
    assert m.decode(torch.randn(2, 6, 4)).shape == (2, 6, 360)
    out = y.reshape(5, 360).clone()
    out[0, :30], out[1, 200:] = -0.5, 1.7  # far outside the train range (and [0, 1])
    target = m.features(out)
    assert float(target.min()) >= 0.0 and float(target.max()) <= 1.0  # clipped: BCE stays defined
    loss = m.loss(out)
    assert torch.isfinite(loss["total"]) and float(loss["recon"]) > 0
    h = m.encoder(target)  # the BCE is computed on the features, not on the absolute frames
    expect = F.binary_cross_entropy_with_logits(m.decode_logits(m.mu(h)), target)
    torch.testing.assert_close(loss["recon"], expect)


def test_local_feature_ranges_are_saved_and_loaded(tmp_path: Path) -> None:
    m = _local().eval()
    save_model(m, tmp_path / "vae")
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["features"] == "local"
    state = torch.load(tmp_path / "vae" / "model.pt", weights_only=True)
    assert {"feature_map.offset", "feature_map.scale"} <= set(state)
    back = load_vae(tmp_path / "vae")
    assert back.feature_map is not None and m.feature_map is not None
    assert torch.equal(back.feature_map.offset, m.feature_map.offset)
    assert torch.equal(back.feature_map.scale, m.feature_map.scale)
    assert not torch.equal(m.feature_map.scale, torch.ones(360))  # fitted, not the initial values
    y, z = 0.2 + 0.6 * torch.rand(6, 360), torch.randn(6, 4)
    assert torch.equal(back(y)[0], m(y)[0]) and torch.equal(back.decode(z), m.decode(z))


def test_absolute_features_are_the_previous_vae(tmp_path: Path) -> None:
    assert VAEConfig().features == "absolute"  # an old config.json (no key) loads as the paper's VAE
    m = _model().eval()
    layers = ("encoder.0", "encoder.2", "decoder.0", "decoder.2", "decoder.4", "mu", "logvar")
    assert m.feature_map is None  # no extra state: old model.pt files load unchanged
    assert set(m.state_dict()) == {f"{name}.{w}" for name in layers for w in ("weight", "bias")}
    y = torch.rand(4, 150)
    assert torch.equal(m.features(y), y)
    mu, logvar = m.encode(y)
    torch.testing.assert_close(m.decode(mu), torch.sigmoid(m.decode_logits(mu)))
    expect = vae_loss(m.decode_logits(mu), y, mu, logvar, "bce", 1e-4)["total"]
    torch.testing.assert_close(m.loss(y)["total"], expect)
    m.fit_features(y)  # a no-op
    save_model(m, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    del cfg["features"]  # a model directory written before the option
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    back = load_vae(tmp_path)
    assert back.config.features == "absolute" and torch.equal(back(y)[0], m(y)[0])
