"""Tests of the synthetic corpus (pipeline/stages/synthesize.py, pipeline/synth/)."""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

import numpy as np
import orjson
import pytest

from pipeline.config import ParamsError, parse_section
from pipeline.data.corpus_csv import HEADER as CSV_HEADER
from pipeline.data.skeleton import MANUAL_BONES, RAW_JOINTS, RAW_TO_MANUAL
from pipeline.data.store import SPLITS, SplitStore
from pipeline.stages.synthesize import run
from pipeline.synth.body import Camera, make_signers
from pipeline.synth.corpus import SynthConfig, generate_corpus
from pipeline.synth.grammar import sample_corpus
from pipeline.synth.lexicon import HANDSHAPES, sign_for
from pipeline.synth.motion import build_controls

PERSON_KEYS = [
    "person_id", "pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
    "hand_right_keypoints_2d", "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d",
    "hand_right_keypoints_3d",
]  # fmt: skip
LENGTHS = {"pose_keypoints_2d": 75, "face_keypoints_2d": 210, "hand_left_keypoints_2d": 63,
           "hand_right_keypoints_2d": 63}  # fmt: skip
SMALL = SynthConfig(n_train=24, n_dev=6, n_test=6, n_signers=6)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small corpus (24/6/6 sequences, 6 signers) generated once for the module."""
    out = tmp_path_factory.mktemp("synth") / "synthetic"
    generate_corpus(SMALL, 1234, out)
    return out


def _frame_files(corpus: Path, split: str, name: str) -> list[Path]:
    """The frame files of one sequence, in name order."""
    return sorted((corpus / "openpose" / split / name).glob("*_keypoints.json"))


def _people(path: Path) -> list[np.ndarray]:
    """The people of a frame file as ``[137, 3]`` arrays (2D keypoints only)."""
    doc = orjson.loads(path.read_bytes())
    return [
        np.concatenate([np.asarray(p[k], dtype=np.float64).reshape(-1, 3) for k in LENGTHS])
        for p in doc["people"]
    ]


def _main_person(people: list[np.ndarray]) -> np.ndarray:
    """The person with the highest summed confidence."""
    return max(people, key=lambda p: p[:, 2].sum())


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    cfg = SynthConfig(n_train=3, n_dev=2, n_test=2, n_signers=2)
    generate_corpus(cfg, 7, tmp_path / "a")
    generate_corpus(cfg, 7, tmp_path / "b")
    generate_corpus(cfg, 8, tmp_path / "c")
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert len(a) > 100 and a == b
    assert a["gt3d/train/poses.npy"] != c["gt3d/train/poses.npy"]
    assert (
        a["annotations/PHOENIX-2014-T.train.corpus.csv"] != c["annotations/PHOENIX-2014-T.train.corpus.csv"]
    )


def test_openpose_json_schema(corpus):
    files = sorted((corpus / "openpose").rglob("*_keypoints.json"))
    assert files
    for f in files[::7]:
        doc = orjson.loads(f.read_bytes())
        assert list(doc) == ["version", "people"] and doc["version"] == 1.3
        for person in doc["people"]:
            assert list(person) == PERSON_KEYS
            assert person["person_id"] == [-1]
            for key in PERSON_KEYS[5:]:
                assert person[key] == []
            for key, n in LENGTHS.items():
                values = person[key]
                assert len(values) == n, (f, key)
                assert all(type(v) in (int, float) for v in values)
                assert np.all(np.isfinite(values))


def test_frame_files_match_csv_and_gt3d(corpus):
    for split, n in SMALL.sizes.items():
        with (corpus / "annotations" / f"PHOENIX-2014-T.{split}.corpus.csv").open(encoding="utf-8") as fh:
            assert fh.readline().rstrip("\n") == "|".join(CSV_HEADER)
            fh.seek(0)
            rows = list(csv.DictReader(fh, delimiter="|"))
        store = SplitStore.load(corpus / "gt3d" / split)
        assert len(rows) == len(store) == n
        assert store.joints == RAW_JOINTS and store.poses.shape[1:] == (137, 3)
        assert {"fx", "fy", "cx", "cy", "width", "height"} <= set(store.extra["camera"])
        for i, row in enumerate(rows):
            entry = store.index[i]
            assert row["name"] == entry["name"] == f"synth_{split}_{i:05d}"
            assert row["video"] == entry["video"] == f"{row['name']}/1/*.png"
            assert (row["start"], row["end"]) == ("-1", "-1")
            assert re.fullmatch(r"Signer0[1-6]", row["speaker"]) and row["speaker"] == entry["signer"]
            assert row["orth"] == entry["gloss"] and row["translation"] == entry["text"]
            files = _frame_files(corpus, split, row["name"])
            frames = [int(f.name.split("_")[-2]) for f in files]
            assert frames == list(range(store.lengths[i]))
            assert all(f.name.startswith(row["name"] + "_") for f in files)


def test_vocabulary_and_gloss_order_at_default_size():
    cfg = SynthConfig()
    corpus = sample_corpus(np.random.default_rng([1234, 7]), cfg.sizes)
    pairs = [p for rows in corpus.values() for p in rows]
    words = {w for text, _ in pairs for w in text.split()}
    glosses = {g for _, gl in pairs for g in gl.split()}
    assert len(glosses) >= 150 and len(words) >= 300
    for text, gloss in pairs:
        assert text == text.lower() and text.endswith(" .")
        assert gloss == gloss.upper() and cfg.min_glosses <= len(gloss.split()) <= cfg.max_glosses
    assert any("-" in g for g in glosses)  # compound glosses
    assert {"es", "gibt", "im", "am", "der"} <= words and not {"ES", "GIBT", "IM", "AM", "DER"} & glosses

    def fold(s: str) -> str:
        s = s.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
        return unicodedata.normalize("NFKD", s)

    # align each gloss to the first German word starting with it; count non-monotone alignments
    reordered = 0
    for text, gloss in pairs:
        toks = [fold(w) for w in text.split()]
        pos = [next((i for i, w in enumerate(toks) if w.startswith(g.lower())), None) for g in gloss.split()]
        pos = [p for p in pos if p is not None]
        reordered += any(b < a for a, b in zip(pos, pos[1:], strict=False))
    assert reordered > 0.3 * len(pairs)


def test_dev_test_avoid_train_duplicates():
    corpus = sample_corpus(np.random.default_rng(3), {"train": 200, "dev": 40, "test": 40})
    train = {t for t, _ in corpus["train"]}
    held = [t for split in ("dev", "test") for t, _ in corpus[split]]
    assert sum(t in train for t in held) <= 2


def test_lexicon_is_parametric_and_fixed():
    assert len(HANDSHAPES) >= 12
    a, b = sign_for("REGEN"), sign_for("SONNE")
    assert a is sign_for("REGEN")  # same gloss, same sign
    assert not np.allclose(a.start, b.start) or a.shape_start != b.shape_start
    signs = [
        sign_for(g) for g in ("REGEN", "SONNE", "WIND", "NORD", "MONTAG", "GRAD", "KALT", "HEUTE", "BIS")
    ]
    assert {s.path for s in signs} > {"straight"} and {s.hands for s in signs} > {"one"}


def test_2d_is_projection_of_gt3d_and_undetected_are_zero(corpus):
    store = SplitStore.load(corpus / "gt3d" / "train")
    cam = Camera(**store.extra["camera"])
    errors, n_zero, n_frames = [], 0, 0
    for i in range(len(store)):
        uv = cam.project(store.sequence(i).astype(np.float64))
        for t, f in enumerate(_frame_files(corpus, "train", store.index[i]["name"])):
            people = _people(f)
            for p in people:
                assert np.all((p[:, 2] >= 0) & (p[:, 2] <= 1))
                assert np.all((p[:, 2] > 0) | np.all(p == 0, axis=1))  # c = 0 <=> 0, 0, 0
            if len(people) != 1:
                continue
            p = people[0]
            det = p[:, 2] > 0
            n_zero += int((~det).sum())
            n_frames += 1
            errors.append(np.linalg.norm(p[det, :2] - uv[t, det], axis=1))
    err = np.concatenate(errors)
    assert np.median(err) < 1.5 and np.quantile(err, 0.99) < 8.0
    assert n_zero > 0 and n_frames > 1000


def test_detector_realism(corpus):
    counts = {0: 0, 1: 0, 2: 0}
    miss = {"body": [], "hands": []}
    for f in sorted((corpus / "openpose").rglob("*_keypoints.json")):
        people = _people(f)
        counts[min(len(people), 2)] += 1
        if people:
            c = _main_person(people)[:, 2]
            miss["body"].append(np.mean(c[:8] == 0))
            miss["hands"].append(np.mean(c[95:] == 0))
    assert counts[0] > 0 and counts[2] > 0 and counts[1] > 0.95 * sum(counts.values())
    assert np.mean(miss["hands"]) > 2 * np.mean(miss["body"]) > 0


def test_bone_lengths_constant_and_body_realistic(corpus):
    store = SplitStore.load(corpus / "gt3d" / "dev")
    cam = Camera(**store.extra["camera"])
    bones = [(RAW_TO_MANUAL[p], RAW_TO_MANUAL[c]) for p, c in MANUAL_BONES]
    for i in range(len(store)):
        x = store.sequence(i).astype(np.float64)
        lengths = np.stack([np.linalg.norm(x[:, a] - x[:, b], axis=1) for a, b in bones], 1)
        assert np.all(lengths.std(0) < 1e-4 * lengths.mean(0) + 1e-6)
        shoulders = lengths[0, [1, 4]].sum()  # neck-R shoulder + neck-L shoulder
        assert 0.35 < shoulders < 0.46
        uv = cam.project(x)
        assert np.all(uv[:, 0, 1] < 0.3 * cam.height)  # head near the top
        wrists = uv[:, [4, 7]]
        assert (
            np.mean((wrists[..., 0] > 0) & (wrists[..., 0] < cam.width) & (wrists[..., 1] < cam.height))
            > 0.99
        )
        assert len(x) <= SMALL.max_frames


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"n_train": 0}, "synthetic.n_train"),
        ({"n_dev": -3}, "synthetic.n_dev"),
        ({"n_test": 2.5}, "synthetic.n_test"),
        ({"n_signers": "six"}, "synthetic.n_signers"),
        ({"image_size": [210]}, "synthetic.image_size"),
        ({"fps": 0}, "synthetic.fps"),
        ({"min_glosses": 5, "max_glosses": 4}, "synthetic.max_glosses"),
        ({"text": {"extra_clause_p": 1.0}}, "synthetic.text.extra_clause_p"),
        ({"detector": {"p_empty": 1.5}}, "synthetic.detector.p_empty"),
        ({"n_trian": 5}, "synthetic.n_trian"),
    ],
)
def test_invalid_params_name_the_key(section, key):
    with pytest.raises(ParamsError, match=re.escape(key)):
        parse_section({"synthetic": section}, "synthetic", SynthConfig)


def test_run_skips_when_source_is_not_synthetic(tmp_path):
    params = {"seed": 1, "data": {"source": "openpose"}, "synthetic": {"n_train": 2}}
    out = tmp_path / "synthetic"
    assert run(params, out) == {"skipped": True, "source": "openpose", "kept": False}
    assert [p.name for p in out.iterdir()] == ["README.txt"]
    with pytest.raises(ParamsError, match="seed"):
        run({"seed": -1, "data": {"source": "synthetic"}, "synthetic": {}}, out)


def test_another_source_keeps_the_generated_corpus(tmp_path):
    """Issue 15: choosing another source does not touch a corpus generated before (dvc.yaml: persist)."""
    out = tmp_path / "synthetic"
    synth = {"seed": 5, "data": {"source": "synthetic"}, "synthetic": {"n_train": 2, "n_dev": 1, "n_test": 1}}
    run(synth, out)
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert run({**synth, "data": {"source": "pt_skels"}}, out)["kept"]
    after = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == before
    (out / "stale.txt").write_text("x")  # regenerating starts from an empty directory
    run(synth, out)
    assert not (out / "stale.txt").exists()


def test_synthetic_out_is_persistent_in_dvc_yaml():
    import yaml

    stage = yaml.safe_load((Path(__file__).parents[1] / "dvc.yaml").read_text())["stages"]["synthesize"]
    (out,) = stage["outs"]
    assert out == {"data/synthetic": {"cache": False, "persist": True}}


def test_run_writes_all_splits(tmp_path):
    params = {
        "seed": 5,
        "data": {"source": "synthetic"},
        "synthetic": {"n_train": 2, "n_dev": 1, "n_test": 1},
    }
    stats = run(params, tmp_path / "synthetic")
    assert stats["frames"] > 0 and stats["frames_per_s"] > 0
    for split in SPLITS:
        assert (
            len(SplitStore.load(tmp_path / "synthetic" / "gt3d" / split)) == params["synthetic"][f"n_{split}"]
        )


def test_long_sentences_are_retimed_to_max_frames():
    signer = make_signers(1, np.random.default_rng(0))[0]
    glosses = ["REGEN", "SONNE", "WIND", "NORD", "MONTAG", "GRAD", "KALT", "ES-BEDEUTET"]
    free = build_controls(glosses, signer, np.random.default_rng(1), max_frames=1000)
    capped = build_controls(glosses, signer, np.random.default_rng(1), max_frames=80)
    assert len(free.palm_r) > 80 >= len(capped.palm_r) > 40


def test_fast_hands_are_missed_more_often(corpus):
    store = SplitStore.load(corpus / "gt3d" / "train")
    cam = Camera(**store.extra["camera"])
    speed, missed = [], []
    for i in range(len(store)):
        uv = cam.project(store.sequence(i).astype(np.float64))
        v = np.linalg.norm(np.diff(uv[:, [95, 116]], axis=0), axis=-1)  # left/right hand wrist, px/frame
        for t, f in enumerate(_frame_files(corpus, "train", store.index[i]["name"])[1:], start=1):
            people = _people(f)
            if len(people) == 1:
                speed.append(v[t - 1])
                missed.append([np.all(people[0][sl, 2] == 0) for sl in (slice(95, 116), slice(116, 137))])
    speed, missed = np.concatenate(speed), np.concatenate(missed)
    slow, fast = speed < np.quantile(speed, 0.5), speed > np.quantile(speed, 0.9)
    assert missed[fast].mean() > 1.5 * missed[slow].mean() > 0
