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
from pipeline.models.io import save_model
from pipeline.models.vae import VAE, VAEConfig, load_vae, vae_loss
from pipeline.stages.pretrain_vae import VAESection


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
