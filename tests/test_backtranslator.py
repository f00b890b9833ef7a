"""Back-translator (poses -> text): vocabulary, model shapes, learning a toy corpus, save/load, the stage."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import ParamsError
from pipeline.models.slt import SLT, SLTConfig, Vocab, load_slt, save_slt
from pipeline.sequences import pad_sequences
from pipeline.store import SplitStore
from pipeline.train_backtranslator import main, score, translate

REPO = Path(__file__).resolve().parents[1]
SENTENCES = ["am montag regen .", "im norden sonne .", "morgen wird es kalt .", "im süden wind ."]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # the CI box is small and shared: 2 threads can be 10x slower


def _motion(k: int, n_frames: int, joints: int = 4) -> np.ndarray:
    """Sentence ``k``'s smooth motion: distinct frequencies per sentence, values in [0.2, 0.8]."""
    t = np.arange(n_frames)[:, None, None] / 25.0
    base = np.linspace(0.5, 2.0, joints * 3).reshape(1, joints, 3)
    return (0.5 + 0.3 * np.sin((k + 1) * base * t * 3 + k)).astype(np.float32)


def test_vocab_build_encode_decode() -> None:
    vocab = Vocab.build(["a b a .", "b c ."], min_count=2)
    assert vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert set(vocab.itos[4:]) == {"a", "b", "."}  # c seen once: <unk>
    ids = vocab.encode("A c .")
    assert ids[0] == 1 and ids[-1] == 2 and ids[2] == 3
    assert vocab.decode(ids[1:]) == "a <unk> ."
    assert vocab.decode([vocab.stoi["b"], 2, vocab.stoi["a"]]) == "b"  # stops at <eos>
    with pytest.raises(ValueError, match="must start with"):
        Vocab(["a", "b", "c", "d"])


def test_slt_shapes_and_padding_invariance() -> None:
    torch.manual_seed(0)
    slt = SLT(
        SLTConfig(n_features=12, vocab_size=10, d_model=16, heads=2, enc_layers=1, dec_layers=1, ff=32)
    ).eval()
    seqs = [np.random.default_rng(i).random((n, 12), dtype=np.float32) for i, n in enumerate((9, 20))]
    poses, lengths = pad_sequences(seqs)
    tokens = torch.tensor([[1, 4, 5, 2], [1, 6, 2, 0]])
    assert slt(poses, lengths, tokens).shape == (2, 4, 10)
    # the short sequence's output does not depend on the padding after it
    alone = slt(poses[:1, :9], lengths[:1], tokens[:1])
    torch.testing.assert_close(slt(poses, lengths, tokens)[:1], alone, atol=1e-5, rtol=1e-4)
    out = slt.greedy(poses, lengths, max_tokens=5)
    assert len(out) == 2 and all(len(o) <= 6 for o in out)
    with pytest.raises(ValueError, match=r"poses \[B, T, 12\]"):
        slt.encode(torch.rand(1, 5, 11), torch.tensor([5]))
    with pytest.raises(ParamsError, match="divisible"):
        SLTConfig(d_model=10, heads=4)


def test_slt_learns_toy_corpus() -> None:
    torch.manual_seed(0)
    vocab = Vocab.build(SENTENCES)
    frames = [_motion(k, 30 + 5 * k).reshape(30 + 5 * k, -1) for k in range(len(SENTENCES))]
    slt = SLT(
        SLTConfig(
            n_features=12, vocab_size=len(vocab), d_model=32, heads=2, enc_layers=1, dec_layers=1, ff=64
        )
    )
    poses, lengths = pad_sequences(frames)
    ids = [vocab.encode(s) for s in SENTENCES]
    tokens = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
    for i, row in enumerate(ids):
        tokens[i, : len(row)] = torch.tensor(row)
    opt = torch.optim.AdamW(slt.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        slt.loss(poses, lengths, tokens, label_smoothing=0.0).backward()
        opt.step()
    hyps = translate(slt, vocab, frames, batch_size=3)  # batches out of length order: order is restored
    assert hyps == SENTENCES
    assert score(hyps, SENTENCES)["bleu4"] == pytest.approx(100.0)


def test_slt_save_load_round_trip(tmp_path: Path) -> None:
    vocab = Vocab.build(SENTENCES)
    slt = SLT(
        SLTConfig(n_features=12, vocab_size=len(vocab), d_model=16, heads=2, enc_layers=1, dec_layers=1)
    )
    frames_all = torch.from_numpy(np.concatenate([_motion(k, 20).reshape(20, -1) for k in range(3)]))
    slt.set_normalisation(frames_all)
    torch.testing.assert_close(slt.feat_mean, frames_all.mean(0))
    assert float(slt.feat_std.min()) >= 1e-3
    save_slt(slt.eval(), vocab, tmp_path / "bt")
    back, back_vocab = load_slt(tmp_path / "bt")
    assert back_vocab.itos == vocab.itos
    torch.testing.assert_close(back.feat_std, slt.feat_std)  # the standardisation travels with the weights
    frames = [_motion(0, 25).reshape(25, -1)]
    assert translate(back, back_vocab, frames) == translate(slt, vocab, frames)
    (tmp_path / "bt" / "vocab.json").write_text(json.dumps(vocab.itos[:-1]))
    with pytest.raises(ValueError, match="vocab_size"):
        load_slt(tmp_path / "bt")


def _store(n: int, rng: np.random.Generator) -> SplitStore:
    ks = rng.integers(0, len(SENTENCES), size=n)
    seqs = [_motion(int(k), int(rng.integers(30, 60))) for k in ks]
    index = [{"name": f"s{i}", "text": SENTENCES[k], "gloss": "", "signer": "a"} for i, k in enumerate(ks)]
    return SplitStore.from_sequences(seqs, index, [f"j{j}" for j in range(4)], ["x", "y", "z"])


def test_stage_writes_model_and_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("dev", 4), ("test", 4)):
        _store(n, rng).save(tmp_path / "data/lifted" / split)
    text = (REPO / "params.yaml").read_text().replace("profile: default", "profile: tiny", 1)
    (tmp_path / "params.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    metrics = main()
    assert json.loads((tmp_path / "metrics/backtranslator.json").read_text()) == metrics
    assert metrics["best_epoch"] >= 1 and metrics["vocab_size"] == len(Vocab.build(SENTENCES))
    assert set(metrics["test"]) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge"}
    slt, vocab = load_slt(tmp_path / "models/backtranslator")
    assert slt.config.n_features == 12 and len(vocab) == metrics["vocab_size"]
