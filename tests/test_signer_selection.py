"""Normalise: the main signer is chosen by plausibility, size and continuity, never by list order."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from test_normalise import manual_pixels, person, store

from pipeline.data.skeleton import RAW_JOINTS
from pipeline.data.store import SplitStore
from pipeline.preprocess.normalise import NormaliseConfig, denormalise, normalise, pick_signer

T = 10


def tiny_far(T: int = T, seed: int = 5) -> np.ndarray:
    """A person a third of the signer's size whose wrists and hands sit 90 of its shoulder widths
    to the left of its body (the hostile case of issue 15), as confident as the signer."""
    p = person(T, (520.0, 120.0), size=1 / 3, seed=seed)
    width = 100 / 3
    p[:, [4, 7], 0] -= 90 * width
    p[:, 95:137, 0] -= 90 * width
    return p


def two_people_store(firsts: list[np.ndarray], seconds: list[np.ndarray | None]) -> SplitStore:
    """A raw-layout store whose sequence i lists ``firsts[i]`` first and ``seconds[i]`` (if any) second."""
    st = store(firsts)
    extra, frame, n_people = [], [], []
    offset = 0
    for first, second in zip(firsts, seconds, strict=True):
        n = np.ones(len(first), np.uint8)
        if second is not None:
            extra.append(second)
            frame.append(offset + np.arange(len(first)))
            n[:] = 2
        n_people.append(n)
        offset += len(first)
    people = (np.concatenate(extra), np.concatenate(frame)) if extra else None
    return SplitStore.from_sequences(
        firsts, st.index, RAW_JOINTS, ["x", "y", "c"], arrays={"n_people": n_people}, extra_people=people
    )


@pytest.mark.parametrize("tiny_first", [True, False])
def test_tiny_distant_person_with_equal_confidence_is_not_chosen(tiny_first: bool) -> None:
    signer, tiny = person(T), tiny_far()
    first, other = (tiny, signer) if tiny_first else (signer, tiny)
    counts: Counter[str] = Counter()
    chosen, kept, dropped = pick_signer(
        first, np.ones(T, bool), {t: other[t : t + 1] for t in range(T)}, NormaliseConfig(), counts
    )
    np.testing.assert_array_equal(chosen, signer)
    assert kept.tolist() == list(range(T)) and sum(dropped.values()) == 0
    assert counts == {"frames_other_person": T, "frames_ambiguous": 0}


def test_smaller_person_loses_without_plausibility_evidence() -> None:
    """Shoulders not seen (reach unknown), summed confidence equal: size decides, not list order."""
    signer = person(T, conf=0.75)  # 8 body joints x 0.75
    small = person(T, (520.0, 120.0), size=0.5, seed=4, conf=1.0)
    small[:, [2, 5], 2] = 0  # 6 body joints x 1.0
    counts: Counter[str] = Counter()
    chosen, _, _ = pick_signer(small, np.ones(T, bool), {0: signer[0:1]}, NormaliseConfig(), counts)
    np.testing.assert_array_equal(chosen[0], signer[0])
    assert counts["frames_other_person"] == 1


def test_close_candidates_counted_as_ambiguous() -> None:
    signer = person(3)
    twin = signer.copy()
    twin[..., 0] += 300  # same size and confidence: the first kept frame cannot tell them apart
    left, right = signer.copy(), signer.copy()
    left[2, ..., 1] -= 4.0  # frame 2: two people about as close to the previous choice
    right[2, ..., 1] += 4.5
    counts: Counter[str] = Counter()
    extra = {0: twin[0:1], 2: right[2:3]}
    chosen, _, _ = pick_signer(left, np.ones(3, bool), extra, NormaliseConfig(), counts)
    np.testing.assert_array_equal(chosen[2], left[2])
    assert counts == {"frames_other_person": 2, "frames_ambiguous": 2}
    # far apart at frame 2: not ambiguous
    right[2, ..., 1] += 200
    counts.clear()
    pick_signer(left, np.ones(3, bool), {2: right[2:3]}, NormaliseConfig(), counts)
    assert counts == {"frames_other_person": 1, "frames_ambiguous": 0}


def test_normalise_follows_signer_and_reports_counts() -> None:
    """Through normalise: the signer's pixels come back, the [0, 1] map is not stretched, counts."""
    signer = person(T, (300.0, 200.0), seed=1)
    train = two_people_store(
        [tiny_far(), person(12, seed=2), person(12, (320, 210), 1.1, 3)], [signer, None, None]
    )
    out, transform, metrics = normalise({"train": train}, NormaliseConfig())
    back = denormalise(out["train"].sequence(0), transform, out["train"].index[0])
    np.testing.assert_allclose(back[..., :2], manual_pixels(signer), atol=1e-3)
    assert metrics["train"]["frames_other_person"] == T and metrics["train"]["frames_ambiguous"] == 0
    assert metrics["train"]["frames"] == T + 24 and metrics["train"]["sequences_dropped"] == 0
    assert max(abs(v) for v in transform.low + transform.high) < 3  # body units: a few shoulder widths
