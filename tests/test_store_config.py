"""Array store round trip and params loading (profiles, errors)."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.config import ParamsError, check_choice, deep_merge, load_params
from pipeline.skeleton import MANUAL_BONES, MANUAL_PARENTS, MIRROR_JOINT, RAW_JOINTS, RAW_TO_MANUAL
from pipeline.store import SplitStore, StoreError


def _store(rng: np.random.Generator) -> SplitStore:
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


def test_repo_params_load_for_every_profile(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "params.yaml").read_text()
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
    from pipeline.transform import UnitRange

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
