"""FGD encoder (NSLP-G's TAE): the one-vector bottleneck, shapes, BCE training, save/load, config,
window cutting, the dev reconstruction report, the stage on a tiny fake corpus."""

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import lifted_store, save_lifted

from pipeline.config import ParamsError, parse_section
from pipeline.data.store import SplitStore, StoreError
from pipeline.models.fgd_encoder import MIN_STD, FGDEncoder, FGDEncoderConfig, load_fgd_encoder
from pipeline.models.io import save_model
from pipeline.stages.train_fgd_encoder import main, reconstruction, split_windows
from pipeline.training.sections import FGDEncoderSection


def _motion(lengths: Sequence[int], rng: np.random.Generator, joints: int = 4) -> SplitStore:
    """Smooth random motion in [0, 1]: a random sinusoid per coordinate, one sequence per length."""
    seqs = []
    for n in lengths:
        t = np.arange(n)[:, None, None]
        freq, phase = rng.uniform(0.02, 0.2, (1, joints, 3)), rng.uniform(0, 6, (1, joints, 3))
        seqs.append((0.5 + 0.3 * np.sin(freq * t + phase)).astype(np.float32))
    return lifted_store(seqs, texts=["am montag regen ."] * len(seqs))


def _store(n: int, rng: np.random.Generator, joints: int = 4) -> SplitStore:
    """``n`` sequences of 20..89 random frames."""
    return _motion([int(rng.integers(20, 90)) for _ in range(n)], rng, joints)


def _tiny(n_features: int = 12, dropout: float = 0.1) -> FGDEncoder:
    """A 1-layer, 16-wide encoder on 34-frame windows with an 8-wide z."""
    config = FGDEncoderConfig(
        n_features=n_features, window=34, d_model=16, heads=2, layers=1, ff=32, latent=8, dropout=dropout
    )
    return FGDEncoder(config)


def test_encoder_shapes_and_embed() -> None:
    torch.manual_seed(0)
    enc = _tiny().eval()
    x = torch.rand(5, 34, 4, 3)
    assert enc.encode_frames(x).shape == (5, 34, 16)
    assert enc.encode(x).shape == (5, 8)
    assert enc(x).shape == (5, 34, 12)
    emb = enc.embed(x, batch_size=2)
    assert emb.shape == (5, 8) and not emb.requires_grad
    torch.testing.assert_close(emb, enc.encode(x))  # z, batched
    assert torch.equal(enc.embed(x), enc.embed(x))  # deterministic in eval mode
    assert enc.embed(torch.zeros(0, 34, 12)).shape == (0, 8)
    with pytest.raises(ValueError, match=r"windows \[B, 34, 12\]"):
        enc.encode(torch.rand(2, 20, 12))
    with pytest.raises(ValueError, match=r"z \[B, 8\]"):
        enc.decode_logits(torch.rand(2, 34, 8))


def test_forward_is_decode_of_embed() -> None:
    """The reconstruction is a function of the FGD feature: ``forward(x) == decode_logits(embed(x))``."""
    torch.manual_seed(1)
    enc = _tiny().eval()
    x = torch.rand(6, 34, 12)
    with torch.no_grad():
        logits = enc(x)
        assert torch.equal(logits, enc.decode_logits(enc.embed(x)))
        assert torch.equal(logits, enc.decode_logits(enc.pool(enc.encode_frames(x))))
        assert torch.equal(enc.encode(x), enc.pool(enc.encode_frames(x)))


def test_decoder_sees_only_the_pooled_vector() -> None:
    torch.manual_seed(2)
    enc = _tiny().eval()
    x1, x2 = torch.rand(3, 34, 12), torch.rand(3, 34, 12)
    with torch.no_grad():
        z1 = enc.encode(x1)
        # a hook replaces the decoder's only input, z: x2's reconstruction becomes x1's exactly
        handle = enc.to_latent.register_forward_hook(lambda mod, inp, out: z1)
        try:
            swapped = enc(x2)
        finally:
            handle.remove()
        assert torch.equal(swapped, enc(x1)) and not torch.allclose(enc(x2), enc(x1))
        # per-frame encoder outputs with the same temporal mean decode identically
        h1 = enc.encode_frames(x1)
        noise = torch.randn_like(h1)
        h2 = h1.flip(1) + noise - noise.mean(dim=1, keepdim=True)
        torch.testing.assert_close(enc.decode_logits(enc.pool(h2)), enc.decode_logits(enc.pool(h1)))
        # and each window's reconstruction depends on its own z only
        torch.testing.assert_close(enc.decode_logits(z1)[1:2], enc.decode_logits(z1[1:2]))


def test_gradient_reaches_every_frame_through_the_mean() -> None:
    """d(reconstruction)/d(per-frame encoder output) is the same for every frame: 1/W of d/d(mean)."""
    torch.manual_seed(3)
    enc = _tiny().eval()
    h = enc.encode_frames(torch.rand(2, 34, 12)).detach().requires_grad_()
    weights = torch.randn(2, 34, 12)
    (enc.decode_logits(enc.pool(h)) * weights).sum().backward()
    mean = h.detach().mean(dim=1).requires_grad_()
    (enc.decode_logits(enc.to_latent(mean)) * weights).sum().backward()
    assert h.grad is not None and mean.grad is not None and mean.grad.abs().max() > 0
    torch.testing.assert_close(h.grad, (mean.grad / 34)[:, None].expand_as(h.grad))


def test_bce_loss_rejects_targets_outside_unit_range() -> None:
    enc = _tiny()
    assert float(enc.loss(torch.full((1, 34, 12), 0.5)).detach()) > 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        enc.loss(torch.full((1, 34, 12), 1.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        enc.loss(torch.full((1, 34, 12), -0.1))


def test_input_stats() -> None:
    """``fit_input_stats``: per-feature mean and floored std of the frames; output bias at logit(mean)."""
    rng = np.random.default_rng(6)
    frames = rng.uniform(0.2, 0.8, (50, 12)).astype(np.float32)
    frames[:, 0] = 0.3  # a joint fixed by the normalisation: std 0 -> the floor
    enc = _tiny()
    enc.fit_input_stats(torch.from_numpy(frames).reshape(5, 10, 12))
    np.testing.assert_allclose(enc.x_mean.numpy(), frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(enc.x_std.numpy()[1:], frames.std(0, ddof=1)[1:], rtol=1e-4)
    assert float(enc.x_std[0]) == pytest.approx(MIN_STD)
    np.testing.assert_allclose(torch.sigmoid(enc.out.bias).detach().numpy(), frames.mean(0), rtol=1e-5)
    assert {"x_mean", "x_std"} <= set(enc.state_dict())  # saved with the weights


def test_encoder_bce_training_reduces_loss() -> None:
    """100 full-batch AdamW steps on 21 toy windows (~1 s), as the stage trains (input stats first):
    the BCE above its floor and the MSE fall under 20 % of the start (the train mean frame, from the
    output bias), and the MSE under 30 % of the static pose's."""
    torch.manual_seed(0)
    enc = _tiny(dropout=0.0)
    windows_np = split_windows(_store(6, np.random.default_rng(0)), "fake", 34, 8)[0]
    x = torch.from_numpy(windows_np)
    enc.fit_input_stats(x)
    before = reconstruction(enc, windows_np)
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-2)
    for _ in range(100):
        enc.train()
        opt.zero_grad()
        enc.loss(x).backward()
        opt.step()
    after = reconstruction(enc, windows_np)
    assert after["bce"] - after["bce_floor"] < 0.2 * (before["bce"] - before["bce_floor"])
    assert after["mse"] < 0.2 * before["mse"]
    assert after["ratio_static"] < 0.3  # z carries the motion, not only the window's mean pose


def test_reconstruction_report_against_trivial_ones() -> None:
    """Stub encoders that output the trivial reconstructions reproduce the baselines' MSE."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0.05, 0.95, (3, 34, 50 * 3)).astype(np.float32)
    mean_frame = rng.uniform(0.2, 0.8, 150).astype(np.float32)

    class Static(torch.nn.Module):
        def forward(self, b: torch.Tensor) -> torch.Tensor:
            return torch.logit(b.mean(dim=1, keepdim=True).expand_as(b))

    class TrainMean(torch.nn.Module):
        def forward(self, b: torch.Tensor) -> torch.Tensor:
            return torch.logit(torch.from_numpy(mean_frame).expand_as(b))

    static = reconstruction(Static(), x, batch_size=2, mean_frame=mean_frame)  # type: ignore[arg-type]
    assert static["ratio_static"] == pytest.approx(1.0, rel=1e-4)
    assert static["mse_static"] == pytest.approx(
        float(((x - x.mean(1, keepdims=True)) ** 2).mean()), rel=1e-5
    )
    assert static["bce"] > static["bce_floor"] > 0
    assert set(static["parts"]) == {"body", "left_hand", "right_hand"}
    for part in static["parts"].values():
        assert part["mse"] == pytest.approx(part["static"], rel=1e-4)
    trivial = reconstruction(TrainMean(), x, mean_frame=mean_frame)  # type: ignore[arg-type]
    assert trivial["ratio_train_mean"] == pytest.approx(1.0, rel=1e-4)
    assert trivial["mse_train_mean"] == pytest.approx(float(((x - mean_frame) ** 2).mean()), rel=1e-5)
    assert "mse_train_mean" not in reconstruction(TrainMean(), x)  # type: ignore[arg-type]


def test_encoder_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(5)
    enc = _tiny().eval()
    enc.fit_input_stats(torch.rand(40, 12) * 0.5 + 0.2)
    save_model(enc, tmp_path / "enc")
    back = load_fgd_encoder(tmp_path / "enc")
    assert back.config == enc.config
    x = torch.rand(3, 34, 12)
    assert torch.equal(back.embed(x), enc.embed(x))
    with torch.no_grad():
        assert torch.equal(back(x), enc(x))
    assert not any(p.requires_grad for p in back.parameters())
    torch.testing.assert_close(back.x_std, enc.x_std)
    assert "pos" not in torch.load(tmp_path / "enc" / "model.pt")  # positional encodings are rebuilt
    with pytest.raises(FileNotFoundError, match="missing model.pt"):
        (tmp_path / "enc" / "model.pt").unlink()
        load_fgd_encoder(tmp_path / "enc")


def test_encoder_config_validation() -> None:
    with pytest.raises(ParamsError, match="divisible"):
        FGDEncoderConfig(d_model=10, heads=4)
    with pytest.raises(ParamsError, match=r"fgd_encoder\.window=0 is invalid"):
        FGDEncoderConfig(window=0)
    with pytest.raises(ParamsError, match=r"fgd_encoder\.stride=0 is invalid"):
        FGDEncoderConfig(stride=0)
    with pytest.raises(ParamsError, match=r"fgd_encoder\.latent=0 is invalid"):
        FGDEncoderConfig(latent=0)


def test_section_parsing() -> None:
    """The ``fgd_encoder`` section: training keys plus the model's keys (window, stride) side by side."""
    raw = {"epochs": 2, "batch_size": 8, "lr": 1, "train_stride": 5, "window": 20, "stride": 10}
    sec = parse_section({"fgd_encoder": raw}, "fgd_encoder", FGDEncoderSection)
    assert (sec.fit.epochs, sec.train_stride, sec.fit.lr) == (2, 5, 1.0) and isinstance(sec.fit.lr, float)
    assert (sec.model.window, sec.model.stride, sec.model.d_model) == (20, 10, FGDEncoderConfig().d_model)
    assert sec.warmup == FGDEncoderSection.__dataclass_fields__["warmup"].default
    with pytest.raises(ParamsError, match=r"unknown key\(s\) fgd_encoder\.n_features"):
        parse_section({"fgd_encoder": {**raw, "n_features": 12}}, "fgd_encoder", FGDEncoderSection)
    with pytest.raises(ParamsError, match=r"fgd_encoder\.warmup=1"):
        parse_section({"fgd_encoder": {**raw, "warmup": 1}}, "fgd_encoder", FGDEncoderSection)
    with pytest.raises(ParamsError, match=r"missing key fgd_encoder\.train_stride"):
        parse_section(
            {"fgd_encoder": {k: v for k, v in raw.items() if k != "train_stride"}},
            "fgd_encoder",
            FGDEncoderSection,
        )


def test_split_windows_counts_and_errors() -> None:
    store = _store(3, np.random.default_rng(1))
    w, clipped = split_windows(store, "fake", 34, 34)
    expected = sum(1 if n < 34 else int(np.ceil((n - 34) / 34)) + 1 for n in store.lengths)
    assert w.shape == (expected, 34, 12) and clipped == 0
    bad = SplitStore.from_sequences(
        [np.full((5, 4, 3), np.nan, np.float32)], [{"name": "x"}], list("abcd"), list("xyz")
    )
    with pytest.raises(StoreError, match="'x' .*non-finite"):
        split_windows(bad, "fake/dev", 34, 34)


@pytest.mark.slow
def test_stage_writes_encoder(workspace: Callable[..., Path]) -> None:
    ws = workspace(fgd_encoder={"stride": 17})
    rng = np.random.default_rng(2)
    # dev windows of 34 frames at stride 17: 20 -> 1, 60 -> starts 0, 17, 26 -> 3, 90 -> 0..51, 56 -> 5
    save_lifted(ws, {"train": _store(8, rng), "dev": _motion([20, 60, 90], rng)})
    summary = main([])
    enc = load_fgd_encoder(ws / "models/fgd_encoder")
    assert enc.config.window == 34 and enc.config.n_features == 12
    config = json.loads((ws / "models/fgd_encoder/config.json").read_text())
    assert config["stride"] == enc.config.stride == 17  # the params' evaluation stride travels with it
    assert config["d_model"] == 16 and config["latent"] == 8  # the tiny profile
    saved = json.loads((ws / "models/fgd_encoder/summary.json").read_text())
    assert saved == summary and summary["train_windows"] > 0
    assert summary["dev_windows"] == 9  # the dev check cuts windows with that stride (34 would give 6)
    dev = summary["dev"]
    assert dev["bce"] > dev["bce_floor"] > 0 and dev["mse_static"] > 0 and dev["mse_train_mean"] > 0
    assert dev["ratio_static"] == pytest.approx(dev["mse"] / dev["mse_static"])
    assert summary["weights_kb"] > 0 and summary["parameters"] == sum(p.numel() for p in enc.parameters())
    assert not list((ws / "models/fgd_encoder_ckpt").glob("*.ckpt"))  # cleared after success
