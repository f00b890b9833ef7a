"""FGD encoder: shapes, BCE training, save/load, config, window cutting, the stage on a tiny fake corpus."""

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import lifted_store, save_lifted

from pipeline.config import ParamsError, parse_section
from pipeline.data.store import SplitStore, StoreError
from pipeline.models.fgd_encoder import FGDEncoder, FGDEncoderConfig, load_fgd_encoder
from pipeline.models.io import save_model
from pipeline.stages.train_fgd_encoder import FGDEncoderSection, main, split_windows


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


def _tiny(n_features: int = 12) -> FGDEncoder:
    """A 1-layer, 16-wide encoder on 34-frame windows."""
    return FGDEncoder(
        FGDEncoderConfig(n_features=n_features, window=34, d_model=16, heads=2, layers=1, ff=32, latent=8)
    )


def test_encoder_shapes_and_embed() -> None:
    torch.manual_seed(0)
    enc = _tiny().eval()
    x = torch.rand(5, 34, 4, 3)
    assert enc.encode(x).shape == (5, 34, 8)
    assert enc(x).shape == (5, 34, 12)
    emb = enc.embed(x, batch_size=2)
    assert emb.shape == (5, 8)
    torch.testing.assert_close(emb, enc.encode(x).mean(dim=1))  # temporal mean of the encoder output
    with pytest.raises(ValueError, match=r"windows \[B, 34, 12\]"):
        enc.encode(torch.rand(2, 20, 12))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        enc.loss(torch.full((1, 34, 12), 1.5))


def test_encoder_bce_training_reduces_loss() -> None:
    torch.manual_seed(0)
    enc = _tiny()
    x = torch.from_numpy(split_windows(_store(6, np.random.default_rng(0)), "fake", 34, 8)[0])
    opt = torch.optim.AdamW(enc.parameters(), lr=3e-3)
    first = float(enc.loss(x).detach())
    for _ in range(40):
        opt.zero_grad()
        loss = enc.loss(x)
        loss.backward()
        opt.step()
    assert float(loss) < first - 0.01


def test_encoder_save_load_round_trip(tmp_path: Path) -> None:
    enc = _tiny().eval()
    save_model(enc, tmp_path / "enc")
    back = load_fgd_encoder(tmp_path / "enc")
    assert back.config == enc.config
    x = torch.rand(3, 34, 12)
    torch.testing.assert_close(back.embed(x), enc.embed(x))
    assert not any(p.requires_grad for p in back.parameters())
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


def test_section_parsing() -> None:
    """The ``fgd_encoder`` section: training keys plus the model's keys (window, stride) side by side."""
    raw = {"epochs": 2, "batch_size": 8, "lr": 1, "train_stride": 5, "window": 20, "stride": 10}
    sec = parse_section({"fgd_encoder": raw}, "fgd_encoder", FGDEncoderSection)
    assert (sec.fit.epochs, sec.train_stride, sec.fit.lr) == (2, 5, 1.0) and isinstance(sec.fit.lr, float)
    assert (sec.model.window, sec.model.stride, sec.model.d_model) == (20, 10, FGDEncoderConfig().d_model)
    with pytest.raises(ParamsError, match=r"unknown key\(s\) fgd_encoder\.n_features"):
        parse_section({"fgd_encoder": {**raw, "n_features": 12}}, "fgd_encoder", FGDEncoderSection)
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
    assert saved == summary and summary["dev"]["bce"] > 0 and summary["train_windows"] > 0
    assert summary["dev_windows"] == 9  # the dev check cuts windows with that stride (34 would give 6)
    assert not list((ws / "models/fgd_encoder_ckpt").glob("*.ckpt"))  # cleared after success
