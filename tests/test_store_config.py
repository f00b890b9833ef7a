"""Array store round trip, params loading (profiles, errors), section dataclasses and stage params."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from conftest import ROOT

from pipeline.config import Params, ParamsError, check_choice, deep_merge, load_params, param, parse_section
from pipeline.data.skeleton import MANUAL_BONES, MANUAL_PARENTS, MIRROR_JOINT, RAW_JOINTS, RAW_TO_MANUAL
from pipeline.data.store import SplitStore, StoreError


def _store(rng: np.random.Generator) -> SplitStore:
    """Three sequences (5, 0 and 7 frames) of 4 joints with a frame-aligned ``gt3d`` array."""
    seqs = [rng.random((n, 4, 3), dtype=np.float32) for n in (5, 0, 7)]
    index = [{"name": f"s{i}", "text": "am montag regen .", "gloss": "MONTAG REGEN"} for i in range(3)]
    gt = [rng.random((len(s), 4, 3)) for s in seqs]
    return SplitStore.from_sequences(seqs, index, list("abcd"), ["x", "y", "c"], arrays={"gt3d": gt})


def test_store_round_trip(tmp_path: Path) -> None:
    store = _store(np.random.default_rng(0))
    store.save(tmp_path / "train")
    back = SplitStore.load(tmp_path / "train", mmap=True)
    assert back.lengths.tolist() == [5, 0, 7]
    np.testing.assert_array_equal(back.sequence(2), store.sequence(2))
    np.testing.assert_array_equal(back.sequence(0, "gt3d"), store.sequence(0, "gt3d"))
    assert back.index[1]["name"] == "s1" and back.joints == list("abcd")


def test_store_rejects_inconsistent_offsets() -> None:
    with pytest.raises(StoreError, match="offsets end at 3 but poses has 4 frames"):
        SplitStore(np.zeros((4, 2, 3), np.float32), np.array([0, 3]), [{}], ["a", "b"], ["x", "y", "z"])


def test_store_load_names_missing_file(tmp_path: Path) -> None:
    _store(np.random.default_rng(1)).save(tmp_path / "dev")
    (tmp_path / "dev" / "poses.npy").unlink()
    with pytest.raises(StoreError, match=r"dev: incomplete array store, missing poses.npy"):
        SplitStore.load(tmp_path / "dev")


def test_profile_overlay_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("profile: tiny\nvae: {latent: 64, epochs: 10}\nprofiles:\n  tiny: {vae: {epochs: 1}}\n")
    params = load_params(p)
    assert params["vae"] == {"latent": 64, "epochs": 1} and "profiles" not in params
    p.write_text("profile: huge\nprofiles: {tiny: {}}\n")
    with pytest.raises(ParamsError, match="profile='huge' is not defined"):
        load_params(p)
    with pytest.raises(ParamsError, match=r"vae.loss='l1' is invalid"):
        check_choice("l1", ("bce", "mse"), "vae.loss")
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


@pytest.mark.parametrize(
    ("overlay", "key"), [("{seed: 3}", "seed"), ("{vae: 3}", "vae"), ("{lift: {}}", "lift")]
)
def test_profile_overlay_of_a_non_section_raises(tmp_path: Path, overlay: str, key: str) -> None:
    p = tmp_path / "params.yaml"
    p.write_text(f"profile: tiny\nseed: 1\nvae: {{epochs: 10}}\nprofiles:\n  tiny: {overlay}\n")
    with pytest.raises(
        ParamsError, match=rf"profiles\.tiny\.{key} must overlay a params section with a mapping"
    ):
        load_params(p)


def test_default_profile(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text(
        "vae: {latent: 64, epochs: 10}\nprofiles:\n  default: {vae: {epochs: 2}}\n  tiny: {vae: {}}\n"
    )
    assert load_params(p) == {"vae": {"latent": 64, "epochs": 2}}  # no profile key: the default profile
    p.write_text("profile: default\nvae: {latent: 64, epochs: 10}\nprofiles:\n  tiny: {vae: {epochs: 1}}\n")
    assert load_params(p) == {"profile": "default", "vae": {"latent": 64, "epochs": 10}}  # none: no overlay


def test_repo_params_load_for_every_profile(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text()
    for name in ("default", "tiny", "paper"):
        p = tmp_path / "params.yaml"
        p.write_text(text.replace("profile: default", f"profile: {name}", 1))
        params = load_params(p)
        assert params["profile"] == name and params["loss"]["distil"] == 1.0


def test_manual_skeleton_is_a_symmetric_tree() -> None:
    assert len(RAW_JOINTS) == 137 and RAW_TO_MANUAL.tolist()[:8] == list(range(8))
    assert RAW_JOINTS[RAW_TO_MANUAL[8]] == "lhand_wrist" and RAW_JOINTS[RAW_TO_MANUAL[29]] == "rhand_wrist"
    assert (MANUAL_PARENTS == -1).sum() == 1 and len(MANUAL_BONES) == 49
    for child, parent in enumerate(MANUAL_PARENTS):
        mirrored = MANUAL_PARENTS[MIRROR_JOINT[child]]
        assert mirrored == (MIRROR_JOINT[parent] if parent >= 0 else -1)


def test_unit_range_inverse_and_train_range(tmp_path: Path) -> None:
    from pipeline.data.transform import UnitRange

    rng = np.random.default_rng(3)
    u = rng.normal(size=(100, 50, 3)) * [1.0, 2.0, 0.5] + [0.0, 3.0, -1.0]
    t = UnitRange.fit(u, margin=0.05)
    v = t.forward(u)
    assert v.min() > 0 and v.max() < 1
    np.testing.assert_allclose(t.inverse(v), u, rtol=0, atol=1e-12)
    t.save(tmp_path / "t.json")
    np.testing.assert_allclose(UnitRange.load(tmp_path / "t.json").forward(u), v)
    with pytest.raises(ValueError, match="high <= low"):
        UnitRange([0.0], [0.0])


# -- params sections as dataclasses ---------------------------------------------------------
@dataclass(frozen=True)
class _Inner:
    """A nested mapping (``section.inner``)."""

    a: int = param(1, ge=0)
    b: float = 0.5


@dataclass(frozen=True)
class _Model:
    """A flattened model config: its keys sit in the section itself."""

    width: int = param(8, gt=0)
    n_in: int = param(0, derived=True)


@dataclass(frozen=True)
class _Section:
    """A params section with every kind of field."""

    count: int
    mode: Literal["fast", "slow"] = "fast"
    rate: float = param(0.1, gt=0, le=1)
    sizes: list[int] = param([4, 2])
    inner: _Inner = field(default_factory=_Inner)
    model: _Model = param(factory=_Model, flatten=True)
    n_out: int = param(0, derived=True)


def _parse(**keys: object) -> _Section:
    """``parse_section`` of the section ``s`` holding ``keys``."""
    return parse_section({"s": keys}, "s", _Section)


def test_parse_section_reads_every_kind_of_field() -> None:
    cfg = _parse(count=3, mode="slow", rate=1, sizes=[1], inner={"a": 2}, width=4)
    assert cfg == _Section(3, "slow", 1.0, [1], _Inner(2, 0.5), _Model(4, 0), 0)
    assert type(cfg.rate) is float  # an integer is accepted for a float key and converted
    assert _parse(count=1) == _Section(1)
    assert _Section(1).sizes is not _Section(1).sizes  # mutable defaults are copied


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"count": 1, "rat": 0.2},
            "unknown key(s) s.rat (known: ['count', 'inner', 'mode', 'rate', 'sizes', 'width'])",
        ),
        ({"count": 1, "n_out": 2}, "unknown key(s) s.n_out"),  # a derived field is not read
        ({"count": 1, "n_in": 2}, "unknown key(s) s.n_in"),  # ... nor one of a flattened config
        ({"count": 1, "model": {"width": 2}}, "unknown key(s) s.model"),  # flattened: no own mapping
        ({}, "missing key s.count"),
        ({"count": "3"}, "s.count='3' is invalid; expected an integer"),
        ({"count": True}, "s.count=True is invalid; expected an integer"),
        ({"count": 2.0}, "s.count=2.0 is invalid; expected an integer"),
        ({"count": 1, "rate": 0}, "s.rate=0 is invalid; expected a number > 0 and <= 1"),
        ({"count": 1, "rate": 1.5}, "s.rate=1.5 is invalid; expected a number > 0 and <= 1"),
        ({"count": 1, "mode": "medium"}, "s.mode='medium' is invalid; expected one of 'fast', 'slow'"),
        ({"count": 1, "sizes": [1, "x"]}, "s.sizes[1]='x' is invalid; expected an integer"),
        ({"count": 1, "inner": {"a": -1}}, "s.inner.a=-1 is invalid; expected an integer >= 0"),
        ({"count": 1, "inner": {"c": 1}}, "unknown key(s) s.inner.c"),
        ({"count": 1, "inner": 3}, "s.inner must be a mapping, got 3"),
        ({"count": 1, "width": 0}, "s.width=0 is invalid; expected an integer > 0"),
    ],
)
def test_parse_section_errors_name_the_key(keys: dict, message: str) -> None:
    with pytest.raises(ParamsError, match="^" + re.escape(f"params.yaml: {message}")):
        _parse(**keys)


def test_parse_section_missing_section() -> None:
    with pytest.raises(ParamsError, match="missing section 's'"):
        parse_section({"t": {}}, "s", _Section)


def test_params_expose_only_the_declared_sections() -> None:
    resolved = {
        "profile": "tiny",
        "seed": 1,
        "data": {"source": "openpose", "path": "x"},
        "vae": {"latent": 8},
    }
    params = Params(resolved, ("seed", "data.source"), "synthesize")
    assert dict(params) == {"profile": "tiny", "seed": 1, "data": {"source": "openpose"}}
    assert params.resolved is resolved
    with pytest.raises(ParamsError, match="stage 'synthesize' reads params 'vae', which it does not declare"):
        params["vae"]
    with pytest.raises(ParamsError, match="missing 'normalise'"):  # declared, absent from params.yaml
        Params(resolved, ("normalise",), "normalise")["normalise"]


def test_corpus_files_name_the_index_and_meta_that_a_store_writes(tmp_path: Path) -> None:
    """The fixed evaluators' data dependency: the files of a split that hold no poses."""
    from pipeline.data.store import corpus_files

    store = SplitStore.from_sequences(
        [np.zeros((3, 2, 3), np.float32)], [{"name": "a", "text": "x ."}], ["j0", "j1"], ["x", "y", "z"]
    )
    for split in ("train", "dev"):
        store.save(tmp_path / split)
    files = corpus_files(tmp_path, ("train", "dev"))
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "train/index.jsonl",
        "train/meta.json",
        "dev/index.jsonl",
        "dev/meta.json",
    ]
    assert all(f.is_file() for f in files)
    written = {p.name for p in (tmp_path / "train").iterdir()}
    assert "poses.npy" in written and "poses.npy" not in {f.name for f in files}
