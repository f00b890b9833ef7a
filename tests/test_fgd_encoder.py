"""FGD encoder (TAE): shapes, BCE training, save/load, window cutting, and the stage on a tiny fake corpus."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import ParamsError
from pipeline.models.tae import TAE, TAEConfig, load_tae, save_tae
from pipeline.store import SplitStore, StoreError
from pipeline.train_fgd_encoder import main, split_windows

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # the CI box is small and shared: 2 threads can be 10x slower


def _store(n: int, rng: np.random.Generator, joints: int = 4) -> SplitStore:
    """Smooth random motion in [0, 1]: sums of a few random sinusoids per coordinate."""
    seqs = []
    for _ in range(n):
        t = np.arange(int(rng.integers(20, 90)))[:, None, None]
        freq, phase = rng.uniform(0.02, 0.2, (1, joints, 3)), rng.uniform(0, 6, (1, joints, 3))
        seqs.append((0.5 + 0.3 * np.sin(freq * t + phase)).astype(np.float32))
    index = [
        {"name": f"s{i}", "text": "am montag regen .", "gloss": "MONTAG REGEN", "signer": "a"}
        for i in range(n)
    ]
    return SplitStore.from_sequences(seqs, index, [f"j{k}" for k in range(joints)], ["x", "y", "z"])


def _tiny(n_features: int = 12) -> TAE:
    return TAE(TAEConfig(n_features=n_features, window=34, d_model=16, heads=2, layers=1, ff=32, latent=8))


def test_tae_shapes_and_embed() -> None:
    torch.manual_seed(0)
    tae = _tiny().eval()
    x = torch.rand(5, 34, 4, 3)
    assert tae.encode(x).shape == (5, 34, 8)
    assert tae(x).shape == (5, 34, 12)
    emb = tae.embed(x, batch_size=2)
    assert emb.shape == (5, 8)
    torch.testing.assert_close(emb, tae.encode(x).mean(dim=1))  # temporal mean of the encoder output
    with pytest.raises(ValueError, match=r"windows \[B, 34, 12\]"):
        tae.encode(torch.rand(2, 20, 12))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tae.loss(torch.full((1, 34, 12), 1.5))


def test_tae_bce_training_reduces_loss() -> None:
    torch.manual_seed(0)
    tae = _tiny()
    x = torch.from_numpy(split_windows(_store(6, np.random.default_rng(0)), "fake", 34, 8)[0])
    opt = torch.optim.AdamW(tae.parameters(), lr=3e-3)
    first = float(tae.loss(x))
    for _ in range(40):
        opt.zero_grad()
        loss = tae.loss(x)
        loss.backward()
        opt.step()
    assert float(loss) < first - 0.01


def test_tae_save_load_round_trip(tmp_path: Path) -> None:
    tae = _tiny().eval()
    save_tae(tae, tmp_path / "enc")
    back = load_tae(tmp_path / "enc")
    x = torch.rand(3, 34, 12)
    torch.testing.assert_close(back.embed(x), tae.embed(x))
    assert not any(p.requires_grad for p in back.parameters())
    with pytest.raises(FileNotFoundError, match="missing model.pt"):
        (tmp_path / "enc" / "model.pt").unlink()
        load_tae(tmp_path / "enc")


def test_tae_config_validation() -> None:
    with pytest.raises(ParamsError, match="divisible"):
        TAEConfig(d_model=10, heads=4)
    with pytest.raises(ParamsError, match="fgd.window"):
        TAEConfig(window=0)


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


def test_stage_writes_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    for split, n in (("train", 8), ("dev", 3)):
        _store(n, rng).save(tmp_path / "data/lifted" / split)
    text = (REPO / "params.yaml").read_text().replace("profile: default", "profile: tiny", 1)
    (tmp_path / "params.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    summary = main()
    tae = load_tae(tmp_path / "models/fgd_encoder")
    assert tae.config.window == 34 and tae.config.n_features == 12
    saved = json.loads((tmp_path / "models/fgd_encoder/summary.json").read_text())
    assert saved == summary and summary["dev"]["bce"] > 0 and summary["train_windows"] > 0
    assert not list((tmp_path / "models/fgd_encoder_ckpt").glob("*.ckpt"))  # cleared after success
