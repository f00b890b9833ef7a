"""Back-translator (poses -> text, SLT with a CTC gloss head): vocabularies, model shapes, beam search and
the length penalty, CTC decoding and gloss WER, learning toy corpora, save/load, the stage."""

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import lifted_store, save_lifted

from pipeline.config import ParamsError, parse_section
from pipeline.data.sequences import load_pairs, pad_sequences
from pipeline.data.store import SplitStore, StoreError
from pipeline.evaluation.backtranslation import recognise, score, translate
from pipeline.evaluation.text_metrics import MetricError, word_error_rate
from pipeline.models.backtranslator import (
    BLANK_ID,
    BackTranslator,
    BackTranslatorConfig,
    GlossVocab,
    Vocab,
    beam_search,
    ctc_collapse,
    length_penalty_factor,
    load_backtranslator,
    save_backtranslator,
)
from pipeline.stages.train_backtranslator import (
    BackTranslatorSection,
    TextCollate,
    check_glosses,
    gloss_oov_rate,
    main,
    oov_rate,
)

SENTENCES = ["am montag regen .", "im norden sonne .", "morgen wird es kalt .", "im süden wind ."]
GLOSSES = ["MONTAG REGEN", "NORD SONNE", "MORGEN KALT", "SUED WIND"]


@torch.no_grad()
def _model_greedy(slt: BackTranslator, poses, lengths, max_tokens: int | None = None) -> list[list[int]]:
    """Independent reference: the plain greedy loop over the network (ids after ``<bos>``, 0-padded)."""
    max_tokens = max_tokens or slt.config.max_tokens
    memory, pad = slt.encode(poses, lengths)
    tokens = torch.full((poses.shape[0], 1), 1, dtype=torch.long)
    done = torch.zeros(poses.shape[0], dtype=torch.bool)
    for _ in range(max_tokens + 1):
        nxt = slt.decode(tokens, memory, pad)[:, -1].argmax(-1)
        nxt = torch.where(done, torch.zeros_like(nxt), nxt)
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        done |= nxt == 2
        if bool(done.all()):
            break
    return [row[1:].tolist() for row in tokens]


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
    out = _model_greedy(slt, poses, lengths, max_tokens=5)
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
    back, back_vocab, back_glosses = load_backtranslator(tmp_path / "bt")
    assert back_vocab.itos == vocab.itos and back_glosses is None and back.gloss_head is None
    assert not (tmp_path / "bt" / "gloss_vocab.json").exists()
    torch.testing.assert_close(back.feat_std, slt.feat_std)  # the standardisation travels with the weights
    frames = [_motion(0, 25).reshape(25, -1)]
    assert translate(back, back_vocab, frames) == translate(slt, vocab, frames)
    (tmp_path / "bt" / "vocab.json").write_text(json.dumps(vocab.itos[:-1]))
    with pytest.raises(ValueError, match="vocab_size"):
        load_backtranslator(tmp_path / "bt")


def _store(n: int, rng: np.random.Generator, glosses: bool = True) -> SplitStore:
    """``n`` random sentences of :data:`SENTENCES`, each signed by its motion for 30..59 frames (with
    its :data:`GLOSSES` annotation unless ``glosses`` is false)."""
    ks = rng.integers(0, len(SENTENCES), size=n)
    seqs = [_motion(int(k), int(rng.integers(30, 60))) for k in ks]
    store = lifted_store(seqs, texts=[SENTENCES[k] for k in ks])
    for entry, k in zip(store.index, ks, strict=True):
        entry["gloss"] = GLOSSES[k] if glosses else ""
    return store


def test_section_text_collate_and_oov() -> None:
    """The ``backtranslator`` section (training keys beside the model's), batches of text, OOV rate."""
    raw = {"epochs": 2, "batch_size": 4, "lr": 1, "val_every": 1, "min_count": 1, "d_model": 32, "heads": 2}
    sec = parse_section({"backtranslator": raw}, "backtranslator", BackTranslatorSection)
    assert sec.fit.lr == 1.0 and sec.label_smoothing == 0.1 and sec.gloss_weight == 1.0
    assert sec.length_penalties == (0.0, 0.5, 1.0, 1.5, 2.0) and sec.model.beam_size == 4
    with pytest.raises(ParamsError, match=r"backtranslator\.length_penalties: -1\.0 is invalid"):
        parse_section(
            {"backtranslator": {**raw, "length_penalties": [0, -1]}}, "backtranslator", BackTranslatorSection
        )
    with pytest.raises(ParamsError, match=r"backtranslator\.beam_size=0 is invalid"):
        parse_section({"backtranslator": {**raw, "beam_size": 0}}, "backtranslator", BackTranslatorSection)
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
    glosses = GlossVocab.build(GLOSSES)
    batch = TextCollate(vocab, 5, glosses)(
        [(SENTENCES[0], np.zeros((3, 12)), GLOSSES[0]), (SENTENCES[2], np.zeros((5, 12)), "MORGEN X KALT")]
    )
    g = glosses.stoi
    assert batch["glosses"].tolist() == [[g["MONTAG"], g["REGEN"], 0], [g["MORGEN"], 1, g["KALT"]]]
    assert batch["gloss_lengths"].tolist() == [2, 3]
    assert gloss_oov_rate(["MONTAG X", "KALT"], glosses) == pytest.approx(1 / 3)


# -- beam search and the length penalty (independent of the network) ------------------------------

PAD, BOS, EOS, A, B = 0, 1, 2, 3, 4  # a 5-word toy vocabulary


def _table_step(table: dict[tuple[int, ...], dict[int, float]], V: int = 5) -> Callable:
    """``step(tokens)``: the log-probabilities of ``table[prefix after <bos>]`` (unlisted tokens
    probability 0; an unlisted prefix ends: ``<eos>`` with probability 1)."""

    def step(tokens: torch.Tensor) -> torch.Tensor:
        out = torch.full((len(tokens), V), -math.inf)
        for r, row in enumerate(tokens.tolist()):
            for tok, p in table.get(tuple(row[1:]), {EOS: 1.0}).items():
                out[r, tok] = math.log(p)
        return out

    return step


def _reference_greedy(step: Callable, max_len: int) -> list[int]:
    """Plain greedy decoding of one sentence: argmax until <eos> or max_len + 1 tokens."""
    ids = [BOS]
    while len(ids) <= max_len + 1 and ids[-1] != EOS:
        ids.append(int(step(torch.tensor([ids]))[0].argmax()))
    return ids[1:]


# greedy takes "a" (0.6) then "a" (0.4): P(a a <eos>) = 0.24 < P(b <eos>) = 0.4 * 0.9 = 0.36
TABLE = {(): {A: 0.6, B: 0.4}, (A,): {A: 0.4, B: 0.3, EOS: 0.3}, (B,): {EOS: 0.9, A: 0.1}}
TABLE2_STEP = _table_step({(): {B: 0.7, A: 0.3}, (B,): {B: 0.8, EOS: 0.2}, (B, B): {A: 0.6, EOS: 0.4}})


def test_beam_search_beats_greedy_on_a_hand_built_distribution() -> None:
    step = _table_step(TABLE)
    assert beam_search(step, 1, 1, max_len=5) == [[A, A, EOS]]  # greedy: P = 0.24
    assert beam_search(step, 1, 2, max_len=5) == [[B, EOS]]  # beam 2 finds P = 0.36
    assert beam_search(step, 1, 3, max_len=5) == [[B, EOS]]


def test_beam_size_one_is_greedy() -> None:
    # two sentences with different tables in one batch: rows are decoded independently
    def step(tokens: torch.Tensor) -> torch.Tensor:
        return torch.cat([_table_step(TABLE)(tokens[:1]), TABLE2_STEP(tokens[1:])])

    expected = [_reference_greedy(_table_step(TABLE), 5), _reference_greedy(TABLE2_STEP, 5)]
    assert beam_search(step, 2, 1, max_len=5) == expected
    assert beam_search(step, 2, 1, max_len=5) == [[A, A, EOS], [B, B, A, EOS]]
    # no <eos> within max_len + 1 tokens: greedy stops there, as the model's greedy()
    loop = _table_step({(A,) * k: {A: 1.0} for k in range(10)})
    assert beam_search(loop, 1, 1, max_len=3) == [[A] * 4]
    assert beam_search(loop, 1, 3, max_len=3) == [[A] * 4]
    # the network: beam 1 = the plain greedy loop (_model_greedy) token by token (up to <eos>)
    torch.manual_seed(1)
    slt = BackTranslator(
        BackTranslatorConfig(n_features=12, vocab_size=9, d_model=16, heads=2, enc_layers=1, dec_layers=1)
    ).eval()
    with torch.no_grad():
        slt.head.bias[2] += 0.45  # two of the four sequences end early
    sizes = (9, 20, 14, 5)
    seqs = [(i + 1) * np.random.default_rng(i).random((n, 12), dtype=np.float32) for i, n in enumerate(sizes)]
    poses, lengths = pad_sequences(seqs)
    greedy = [row[: row.index(2) + 1] if 2 in row else row for row in _model_greedy(slt, poses, lengths, 6)]
    assert [len(g) for g in greedy] == [7, 7, 5, 5]
    assert slt.generate(poses, lengths, beam_size=1, max_tokens=6) == greedy
    vocab = Vocab([*Vocab.build([]).itos, *"abcde"])
    clipped, clipped_lengths = pad_sequences([np.clip(x, 0, 1) for x in seqs])  # translate clips to [0, 1]
    expected = [vocab.decode(g) for g in _model_greedy(slt, clipped, clipped_lengths)]
    assert translate(slt, vocab, seqs, batch_size=3, beam_size=1) == expected


def test_length_penalty_chooses_as_the_formula_says() -> None:
    # short "a <eos>" (|Y| = 2, P = 0.55) against long "b b b <eos>" (|Y| = 4, P = 0.45)
    table = {
        (): {A: 0.55, B: 0.45},
        (A,): {EOS: 1.0},
        (B,): {B: 1.0},
        (B, B): {B: 1.0},
        (B, B, B): {EOS: 1.0},
    }
    chosen = {}
    for alpha in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        short = math.log(0.55) / ((5 + 2) / 6) ** alpha
        long = math.log(0.45) / ((5 + 4) / 6) ** alpha
        assert length_penalty_factor(4, alpha) == pytest.approx(((5 + 4) / 6) ** alpha)
        got = beam_search(_table_step(table), 1, 2, max_len=8, length_penalty=alpha)
        assert got == ([[A, EOS]] if short >= long else [[B, B, B, EOS]])
        chosen[alpha] = len(got[0])
    assert chosen[0.0] == 2 and chosen[3.0] == 4  # the penalty flips the choice
    with pytest.raises(ValueError, match="beam_size=0"):
        beam_search(_table_step(table), 1, 0, max_len=3)


def test_beam_search_batches_sentences_and_the_model_uses_the_saved_setting() -> None:
    # a batch of 2 sentences x beam 2 = 4 rows: sentence 0 gets TABLE, sentence 1 the long/short table
    other = _table_step({(): {A: 0.55, B: 0.45}, (A,): {EOS: 1.0}, (B,): {B: 1.0}, (B, B): {EOS: 1.0}})

    def step(tokens: torch.Tensor) -> torch.Tensor:
        assert len(tokens) == 4
        return torch.cat([_table_step(TABLE)(tokens[:2]), other(tokens[2:])])

    assert beam_search(step, 2, 2, max_len=5) == [[B, EOS], [A, EOS]]
    # alpha = 3: log(0.24) / (8/6)^3 = -0.60 > log(0.36) / (7/6)^3 = -0.64, so "a a <eos>" wins now
    assert beam_search(step, 2, 2, max_len=5, length_penalty=3.0) == [[A, A, EOS], [B, B, EOS]]
    torch.manual_seed(1)
    config = BackTranslatorConfig(
        n_features=12, vocab_size=9, d_model=16, heads=2, enc_layers=1, dec_layers=1
    )
    slt = BackTranslator(config).eval()
    seqs = [np.random.default_rng(i).random((n, 12), dtype=np.float32) for i, n in enumerate((9, 20, 14))]
    poses, lengths = pad_sequences(seqs)
    assert (config.beam_size, config.length_penalty) == (4, 1.0)
    assert slt.generate(poses, lengths) == slt.generate(poses, lengths, beam_size=4, length_penalty=1.0)
    vocab = Vocab([*Vocab.build([]).itos, *"abcde"])
    by_beam = translate(slt, vocab, seqs, batch_size=2, beam_size=3, length_penalty=0.5)
    alone = [translate(slt, vocab, [s], beam_size=3, length_penalty=0.5)[0] for s in seqs]
    assert by_beam == alone  # batching (and the B * beam expansion) does not change a sentence's result


# -- CTC, recognition and WER ------------------------------------------------------------------------


def test_ctc_collapse_and_gloss_vocab() -> None:
    assert BLANK_ID == 0
    assert ctc_collapse([0, 3, 3, 0, 0, 4, 4, 4, 0, 4, 5, 5, 0]) == [3, 4, 4, 5]  # blank separates 4 4
    assert ctc_collapse([3, 3, 4, 3]) == [3, 4, 3] and ctc_collapse([0, 0]) == [] and ctc_collapse([]) == []
    glosses = GlossVocab.build(["REGEN SONNE REGEN", "WIND"])
    assert glosses.itos == ["<blank>", "<unk>", "REGEN", "SONNE", "WIND"]
    assert glosses.encode("regen  REGEN WIND") == [1, 2, 4]  # case kept: "regen" is unknown
    assert glosses.decode([0, 2, 0, 4]) == "REGEN WIND"
    with pytest.raises(ValueError, match="must start with"):
        GlossVocab(["<unk>", "<blank>", "A"])


def test_word_error_rate_values_and_errors() -> None:
    assert word_error_rate(["A B C"], ["A B C"]) == 0.0
    # 1 substitution + 1 deletion over 5 reference words
    assert word_error_rate(["A X C", "D"], ["A B C", "D E"]) == pytest.approx(40.0)
    assert word_error_rate(["A B C D"], ["A B"]) == pytest.approx(100.0)  # 2 insertions / 2 words
    assert word_error_rate(["", "  C  "], ["A B", "C"]) == pytest.approx(200 / 3)  # white space ignored
    with pytest.raises(MetricError, match="2 hypotheses but 1 references"):
        word_error_rate(["A", "B"], ["A"])
    with pytest.raises(MetricError, match="not one str"):
        word_error_rate("A B", "A B")  # type: ignore[arg-type]
    with pytest.raises(MetricError, match="no sentences"):
        word_error_rate([], [])
    with pytest.raises(MetricError, match="no words"):
        word_error_rate(["A"], [" "])
    with pytest.raises(MetricError, match="must be strings"):
        word_error_rate([None], ["A"])  # type: ignore[list-item]


def _gloss_corpus() -> tuple[list[np.ndarray], list[str]]:
    """Sequences of 2-4 signs; each gloss a distinct 8-frame motion segment."""
    signs = {
        g: np.stack([_motion(k, 8)[:, :, c] for c in range(3)], -1).reshape(8, -1)
        for k, g in enumerate(["REGEN", "SONNE", "WIND", "KALT"])
    }
    orders = [
        "REGEN SONNE",
        "WIND KALT REGEN",
        "SONNE WIND",
        "KALT SONNE REGEN WIND",
        "REGEN WIND",
        "SONNE KALT WIND",
        "WIND REGEN SONNE KALT",
        "KALT REGEN",
    ]
    frames = [np.concatenate([signs[g] for g in o.split()]).astype(np.float32) for o in orders]
    return frames, orders


def test_ctc_head_learns_a_toy_gloss_task() -> None:
    """A tiny SLT trained on the joint loss (mostly CTC) recognises every gloss sequence (WER 0)."""
    torch.manual_seed(0)
    frames, orders = _gloss_corpus()
    glosses = GlossVocab.build(orders)
    vocab = Vocab.build([o.lower() for o in orders])
    config = BackTranslatorConfig(
        n_features=12,
        vocab_size=len(vocab),
        d_model=32,
        heads=2,
        enc_layers=1,
        dec_layers=1,
        ff=64,
        dropout=0.0,
        subsample=2,
        gloss_vocab_size=len(glosses),
    )
    slt = BackTranslator(config)
    slt.set_normalisation(torch.from_numpy(np.concatenate(frames)))
    batch = TextCollate(vocab, 10, glosses)([(o.lower(), f, o) for o, f in zip(orders, frames, strict=True)])
    opt = torch.optim.AdamW(slt.parameters(), lr=3e-3)
    for _ in range(200):
        opt.zero_grad()
        losses = slt.losses(
            batch["poses"],
            batch["lengths"],
            batch["tokens"],
            batch["glosses"],
            batch["gloss_lengths"],
            0.0,
            1.0,
        )
        losses["total"].backward()
        opt.step()
    assert losses["total"].item() == pytest.approx(losses["ce"].item() + losses["ctc"].item(), rel=1e-5)
    hyps = recognise(slt, glosses, frames, batch_size=3)
    assert hyps == orders
    assert word_error_rate(hyps, orders) == 0.0


def test_joint_loss_is_weighted_ctc_plus_ce() -> None:
    torch.manual_seed(0)
    frames, orders = _gloss_corpus()
    glosses = GlossVocab.build(orders)
    vocab = Vocab.build([o.lower() for o in orders])
    slt = BackTranslator(
        BackTranslatorConfig(
            n_features=12,
            vocab_size=len(vocab),
            d_model=16,
            heads=2,
            enc_layers=1,
            dec_layers=1,
            dropout=0.0,
            gloss_vocab_size=len(glosses),
        )
    )
    b = TextCollate(vocab, 10, glosses)([(o.lower(), f, o) for o, f in zip(orders, frames, strict=True)])
    args = (b["poses"], b["lengths"], b["tokens"], b["glosses"], b["gloss_lengths"], 0.1)
    out = slt.losses(*args, gloss_weight=0.5)
    memory, pad = slt.encode(b["poses"], b["lengths"])
    logp = torch.log_softmax(slt.gloss_head(memory), -1).transpose(0, 1)
    ctc = torch.nn.functional.ctc_loss(logp, b["glosses"], (~pad).sum(1), b["gloss_lengths"], blank=0)
    torch.testing.assert_close(out["ctc"], ctc)
    torch.testing.assert_close(out["ce"], slt.loss(b["poses"], b["lengths"], b["tokens"], 0.1))
    torch.testing.assert_close(out["total"], out["ce"] + 0.5 * ctc)
    assert set(slt.losses(*args, gloss_weight=0.0)) == {"ce", "total"}
    with pytest.raises(ValueError, match="needs glosses"):
        slt.losses(b["poses"], b["lengths"], b["tokens"], gloss_weight=1.0)


def test_save_load_with_and_without_gloss_head(tmp_path: Path) -> None:
    vocab, glosses = Vocab.build(SENTENCES), GlossVocab.build(GLOSSES)
    base = {"n_features": 12, "vocab_size": len(vocab), "d_model": 16, "heads": 2, "enc_layers": 1}
    frames = [_motion(k, 24).reshape(24, -1) for k in range(3)]
    torch.manual_seed(0)
    with_head = BackTranslator(
        BackTranslatorConfig(**base, dec_layers=1, gloss_vocab_size=len(glosses), length_penalty=0.5)
    ).eval()
    save_backtranslator(with_head, vocab, tmp_path / "g", glosses)
    model, back_vocab, back_glosses = load_backtranslator(tmp_path / "g")
    assert back_glosses is not None and back_glosses.itos == glosses.itos and back_vocab.itos == vocab.itos
    assert model.config.length_penalty == 0.5 and model.config.gloss_vocab_size == len(glosses)
    assert recognise(model, back_glosses, frames) == recognise(with_head, glosses, frames)
    assert translate(model, back_vocab, frames) == translate(with_head, vocab, frames)
    # without: no gloss_vocab.json (an old one is removed), recognition is a clear error
    without = BackTranslator(BackTranslatorConfig(**base, dec_layers=1)).eval()
    save_backtranslator(without, vocab, tmp_path / "g")
    model, _, none = load_backtranslator(tmp_path / "g")
    assert none is None and model.gloss_head is None and not (tmp_path / "g" / "gloss_vocab.json").exists()
    with pytest.raises(ValueError, match=r"gloss_weight: 0"):
        recognise(model, glosses, frames)
    with pytest.raises(ValueError, match="gloss recognition is unavailable"):
        recognise(with_head, None, frames)
    with pytest.raises(ValueError, match="gloss head of 0 classes"):
        save_backtranslator(without, vocab, tmp_path / "x", glosses)
    with pytest.raises(ValueError, match="gloss head of 10 classes but no gloss vocabulary"):
        save_backtranslator(with_head, vocab, tmp_path / "x")
    # a model with a head whose gloss vocabulary is missing or does not match
    save_backtranslator(with_head, vocab, tmp_path / "g", glosses)
    (tmp_path / "g" / "gloss_vocab.json").write_text(json.dumps(glosses.itos[:-1]))
    with pytest.raises(ValueError, match="gloss_vocab_size"):
        load_backtranslator(tmp_path / "g")
    (tmp_path / "g" / "gloss_vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing gloss_vocab.json"):
        load_backtranslator(tmp_path / "g")


def test_load_pairs_glosses_and_the_missing_gloss_error(workspace: Callable[..., Path]) -> None:
    rng = np.random.default_rng(0)
    store = _store(3, rng)
    store.index[1]["gloss"] = "  NORD   SONNE "
    del store.index[2]["gloss"]
    pairs = load_pairs(store, "mem")
    assert pairs.glosses[1] == "NORD SONNE" and pairs.glosses[2] == "" and len(pairs.glosses) == 3
    with pytest.raises(StoreError, match=r"mem: sequence 's2' \(row 2\) has no gloss.*gloss_weight: 0"):
        check_glosses(pairs, "mem")
    # the stage stops before training, naming the file
    ws = workspace()
    save_lifted(ws, {"train": _store(6, rng), "dev": _store(2, rng, glosses=False), "test": _store(2, rng)})
    with pytest.raises(
        StoreError, match=r"data/lifted/dev/index.jsonl: sequence 's0' \(row 0\) has no gloss"
    ):
        main([])


@pytest.mark.slow
def test_stage_writes_model_and_metrics(workspace: Callable[..., Path]) -> None:
    ws = workspace()
    rng = np.random.default_rng(0)
    save_lifted(ws, {split: _store(n, rng) for split, n in (("train", 12), ("dev", 4), ("test", 4))})
    metrics = main([])
    assert json.loads((ws / "metrics/backtranslator.json").read_text()) == metrics
    assert metrics["best_epoch"] >= 1 and metrics["vocab_size"] == len(Vocab.build(SENTENCES))
    assert set(metrics["test"]) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge", "gloss_wer"}
    assert metrics["test"]["gloss_wer"] >= 0
    assert metrics["gloss_vocab_size"] == len(GlossVocab.build(GLOSSES))
    # tiny profile: beam 2, alphas [0, 1] tried on dev, the best saved
    assert metrics["beam_size"] == 2 and [a for a, _ in metrics["length_penalty_dev_bleu4"]] == [0.0, 1.0]
    best = max(metrics["length_penalty_dev_bleu4"], key=lambda r: r[1])
    assert metrics["length_penalty"] == best[0]
    slt, vocab, glosses = load_backtranslator(ws / "models/backtranslator")
    assert slt.config.n_features == 12 and len(vocab) == metrics["vocab_size"]
    assert slt.config.length_penalty == metrics["length_penalty"] and slt.config.beam_size == 2
    assert glosses is not None and set(glosses.itos[2:]) == {g for s in GLOSSES for g in s.split()}


@pytest.mark.slow
def test_stage_without_gloss_supervision(workspace: Callable[..., Path]) -> None:
    ws = workspace(
        backtranslator={"gloss_weight": 0}, profiles={"tiny": {"backtranslator": {"beam_size": 1}}}
    )
    rng = np.random.default_rng(1)
    save_lifted(ws, {s: _store(n, rng, glosses=False) for s, n in (("train", 8), ("dev", 3), ("test", 3))})
    metrics = main([])
    assert (
        set(metrics["dev"]) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge"}
        and "gloss_vocab_size" not in metrics
    )
    assert metrics["length_penalty_dev_bleu4"] == [] and metrics["beam_size"] == 1  # no grid for greedy
    slt, _, glosses = load_backtranslator(ws / "models/backtranslator")
    assert glosses is None and slt.gloss_head is None
    assert not (ws / "models/backtranslator/gloss_vocab.json").exists()
