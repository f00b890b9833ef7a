"""Back-translator (poses -> text): vocabulary, model shapes, learning a toy corpus, save/load, the stage."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import lifted_store, save_lifted

from pipeline.config import ParamsError, parse_section
from pipeline.data.sequences import pad_sequences
from pipeline.data.store import SplitStore
from pipeline.evaluation.backtranslation import score, translate
from pipeline.models.backtranslator import (
    BackTranslator,
    BackTranslatorConfig,
    Vocab,
    load_backtranslator,
    save_backtranslator,
)
from pipeline.stages.train_backtranslator import BackTranslatorSection, TextCollate, main, oov_rate

SENTENCES = ["am montag regen .", "im norden sonne .", "morgen wird es kalt .", "im süden wind ."]


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
    slt = BackTranslator(
        BackTranslatorConfig(
            n_features=12, vocab_size=10, d_model=16, heads=2, enc_layers=1, dec_layers=1, ff=32
        )
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
        BackTranslatorConfig(d_model=10, heads=4)


def test_slt_learns_toy_corpus() -> None:
    torch.manual_seed(0)
    vocab = Vocab.build(SENTENCES)
    frames = [_motion(k, 30 + 5 * k).reshape(30 + 5 * k, -1) for k in range(len(SENTENCES))]
    slt = BackTranslator(
        BackTranslatorConfig(
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
    slt = BackTranslator(
        BackTranslatorConfig(
            n_features=12, vocab_size=len(vocab), d_model=16, heads=2, enc_layers=1, dec_layers=1
        )
    )
    frames_all = torch.from_numpy(np.concatenate([_motion(k, 20).reshape(20, -1) for k in range(3)]))
    slt.set_normalisation(frames_all)
    torch.testing.assert_close(slt.feat_mean, frames_all.mean(0))
    assert float(slt.feat_std.min()) >= 1e-3
    save_backtranslator(slt.eval(), vocab, tmp_path / "bt")
    back, back_vocab = load_backtranslator(tmp_path / "bt")
    assert back_vocab.itos == vocab.itos
    torch.testing.assert_close(back.feat_std, slt.feat_std)  # the standardisation travels with the weights
    frames = [_motion(0, 25).reshape(25, -1)]
    assert translate(back, back_vocab, frames) == translate(slt, vocab, frames)
    (tmp_path / "bt" / "vocab.json").write_text(json.dumps(vocab.itos[:-1]))
    with pytest.raises(ValueError, match="vocab_size"):
        load_backtranslator(tmp_path / "bt")


def _store(n: int, rng: np.random.Generator) -> SplitStore:
    """``n`` random sentences of :data:`SENTENCES`, each signed by its motion for 30..59 frames."""
    ks = rng.integers(0, len(SENTENCES), size=n)
    seqs = [_motion(int(k), int(rng.integers(30, 60))) for k in ks]
    return lifted_store(seqs, texts=[SENTENCES[k] for k in ks])


def test_section_text_collate_and_oov() -> None:
    """The ``backtranslator`` section (training keys beside the model's), batches of text, OOV rate."""
    raw = {"epochs": 2, "batch_size": 4, "lr": 1, "val_every": 1, "min_count": 1, "d_model": 32, "heads": 2}
    sec = parse_section({"backtranslator": raw}, "backtranslator", BackTranslatorSection)
    assert sec.fit.lr == 1.0 and sec.label_smoothing == 0.1
    assert (sec.model.d_model, sec.model.heads) == (32, 2)
    with pytest.raises(ParamsError, match=r"backtranslator\.label_smoothing=1\.0 is invalid"):
        parse_section(
            {"backtranslator": {**raw, "label_smoothing": 1.0}}, "backtranslator", BackTranslatorSection
        )
    with pytest.raises(ParamsError, match=r"unknown key\(s\) backtranslator\.vocab_size"):
        parse_section({"backtranslator": {**raw, "vocab_size": 9}}, "backtranslator", BackTranslatorSection)
    vocab = Vocab.build(SENTENCES)
    batch = TextCollate(vocab, max_tokens=3)(
        [(SENTENCES[2], _motion(2, 7).reshape(7, -1)), ("x", np.zeros((4, 12)))]
    )
    assert batch["poses"].shape == (2, 7, 12) and batch["lengths"].tolist() == [7, 4]
    assert batch["tokens"].tolist() == [vocab.encode(SENTENCES[2], 3), [1, 3, 2, 0, 0]]  # cut to 3 words
    assert oov_rate(["am montag schnee .", "im norden"], vocab) == pytest.approx(1 / 6)


@pytest.mark.slow
def test_stage_writes_model_and_metrics(workspace: Callable[..., Path]) -> None:
    ws = workspace()
    rng = np.random.default_rng(0)
    save_lifted(ws, {split: _store(n, rng) for split, n in (("train", 12), ("dev", 4), ("test", 4))})
    metrics = main([])
    assert json.loads((ws / "metrics/backtranslator.json").read_text()) == metrics
    assert metrics["best_epoch"] >= 1 and metrics["vocab_size"] == len(Vocab.build(SENTENCES))
    assert set(metrics["test"]) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge"}
    slt, vocab = load_backtranslator(ws / "models/backtranslator")
    assert slt.config.n_features == 12 and len(vocab) == metrics["vocab_size"]
