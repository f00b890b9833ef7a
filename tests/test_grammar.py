"""Tests of the text side of the synthetic corpus (pipeline/synth/grammar.py, vocabulary.py)."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict

import numpy as np
import pytest

from pipeline.config import ParamsError, parse_section
from pipeline.synth.corpus import SynthConfig
from pipeline.synth.grammar import TextConfig, sample_corpus
from pipeline.synth.vocabulary import gloss_of, number, town_names

PAPER = {"train": 7096, "dev": 519, "test": 642}


@pytest.fixture(scope="module")
def paper() -> dict[str, list[tuple[str, str]]]:
    """The sentences of ``profile=paper`` sizes, as the synthesize stage draws them."""
    return sample_corpus(np.random.default_rng([1234, 7]), PAPER)


def test_same_seed_same_sentences_other_seed_differs():
    sizes = {"train": 300, "dev": 30, "test": 30}
    a = sample_corpus(np.random.default_rng([5, 7]), sizes)
    b = sample_corpus(np.random.default_rng([5, 7]), sizes)
    c = sample_corpus(np.random.default_rng([6, 7]), sizes)
    assert a == b and a["train"] != c["train"]


def test_text_params_change_the_corpus_and_are_validated():
    sizes = {"train": 200}
    base = sample_corpus(np.random.default_rng(0), sizes)
    no_ix = sample_corpus(np.random.default_rng(0), sizes, text=TextConfig(ix_p=0.0))
    n_ix = [sum(g.split().count("IX") for _, g in c["train"]) for c in (base, no_ix)]
    assert n_ix[0] > 3 * n_ix[1] + 20  # IX after places gone; IX of fixed phrases stays
    with pytest.raises(ParamsError, match=re.escape("synthetic.text.ix_p")):
        parse_section({"synthetic": {"text": {"ix_p": 1.5}}}, "synthetic", SynthConfig)
    assert (
        parse_section({"synthetic": {"text": {"zipf_s": 1.2}}}, "synthetic", SynthConfig).text.zipf_s == 1.2
    )


def test_gloss_strings_are_lexicon_keys(paper):
    glosses = {g for rows in paper.values() for _, gl in rows for g in gl.split()}
    bad = {g for g in glosses if not re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)*", g)}
    assert not bad
    assert gloss_of("münchen") == "MUENCHEN" and gloss_of("gießen") == "GIESSEN"
    assert number(34) == (["vierunddreißig"], ["DREISSIG", "VIER"])
    assert len(town_names()) > 3000 and len(set(town_names())) == len(town_names())


def test_many_to_many(paper):
    pairs = [p for rows in paper.values() for p in rows]
    by_gloss = defaultdict(set)
    for text, gloss in pairs:
        by_gloss[gloss].add(text)
    # one gloss sequence, several German sentences (paraphrases, synonyms, word order)
    assert sum(len(t) >= 2 for g, t in by_gloss.items() if len(g.split()) >= 3) >= 10
    # German words that are never signed: articles, prepositions, copulas
    gloss_vocab = {g for _, gl in pairs for g in gl.split()}
    words = Counter(w for text, _ in pairs for w in text.split()[:-1])
    for w in ("der", "die", "im", "es", "gibt", "ist", "mit"):
        assert words[w] > 100 and w.upper() not in gloss_vocab
    # glosses the signer adds without a German word
    added = Counter(g for _, gl in pairs for g in gl.split() if g == "IX" or g.startswith("CL-"))
    assert added["IX"] > 500 and sum(v for g, v in added.items() if g.startswith("CL-")) > 200
    # a gloss with several German forms: the inflected adjective KRAEFTIG, the town KIEL
    kraeftig = {w for text, gl in pairs if "KRAEFTIG" in gl.split() for w in text.split() if "kräftig" in w}
    assert len(kraeftig) >= 3
    kiel = {" ".join(t.split()[max(0, t.split().index("kiel") - 2) : t.split().index("kiel")])
            for t, gl in pairs if "KIEL" in gl.split() and "kiel" in t.split()}  # fmt: skip
    assert len(kiel) >= 2


def test_gloss_order_differs_from_german(paper):
    """Verbs last in the glosses (DGS), in second position in German main clauses."""
    moved = 0
    for text, gloss in paper["train"]:
        words, glosses = text.split(), gloss.split()
        if "ziehen" in words and "auf" in words and glosses[-1] == "KOMMEN":
            moved += words.index("ziehen") < len(words) - 3
    assert moved > 20


def test_zipf_tail_and_oov_at_paper_sizes(paper):
    for idx, drop in ((0, 1), (1, 0)):  # German (without the final "."), glosses
        train = Counter(t for s in paper["train"] for t in s[idx].split()[: -drop or None])
        singletons = sum(v == 1 for v in train.values())
        assert singletons > 0.2 * len(train)
        dev = [t for s in paper["dev"] for t in s[idx].split()[: -drop or None]]
        oov = sum(t not in train for t in dev)
        assert 0 < oov < 0.03 * len(dev)
    words = {t for s in paper["train"] for t in s[0].split()}
    glosses = {t for s in paper["train"] for t in s[1].split()}
    assert 2000 < len(words) < 4000 and 700 < len(glosses) < 1500  # PHOENIX: 2,887 / 1,066
    assert len(words) > 2 * len(glosses)


def test_sentence_lengths_at_paper_sizes(paper):
    words = np.array([len(t.split()) - 1 for t, _ in paper["train"]])
    glosses = np.array([len(g.split()) for _, g in paper["train"]])
    assert abs(words.mean() - 14.0) < 0.15 * 14.0 and abs(glosses.mean() - 9.5) < 0.15 * 9.5
    assert glosses.min() == 1 and glosses.max() == 20 and np.mean(glosses >= 15) > 0.05
    assert words.max() > 30


def test_default_size_is_the_same_generator_smaller():
    small = sample_corpus(np.random.default_rng([1234, 7]), {"train": 600, "dev": 60, "test": 60})
    big = sample_corpus(np.random.default_rng([1234, 7]), {"train": 6000})
    assert small["train"] == big["train"][:600]  # same stream: the default corpus is a prefix
    v_small = len({w for t, _ in small["train"] for w in t.split()})
    v_big = len({w for t, _ in big["train"] for w in t.split()})
    assert 1.8 * v_small < v_big < 10 * v_small  # Heaps: sublinear growth


def test_sampling_is_fast():
    t0 = time.perf_counter()
    sample_corpus(np.random.default_rng(1), PAPER)
    assert time.perf_counter() - t0 < 5.0
