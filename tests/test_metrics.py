"""Evaluation metrics: FGD vs closed forms, BLEU/ROUGE vs their libraries, DTW-MJE, DurACC, windows."""

import numpy as np
import pytest
import sacrebleu
import scipy.linalg
from rouge_score import rouge_scorer

from pipeline.evaluation.metrics import (
    MetricError,
    dtw_mje,
    dtw_mje_parts,
    duration_accuracy,
    fgd,
    frechet_distance,
    gaussian_stats,
    mean_bone_length,
    motion_sd,
    realism_ratios,
)
from pipeline.evaluation.text_metrics import bleu_scores, rouge_l
from pipeline.models.fgd_encoder import windows


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _frechet_sqrtm(mu1, s1, mu2, s2) -> float:
    """Independent route for well-conditioned covariances: scipy's matrix square root of S1 S2."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def _frechet_eig(mu1, s1, mu2, s2) -> float:
    """Tr((S1 S2)^½) = Tr((S1^½ S2 S1^½)^½) = sum of sqrt of its eigenvalues."""
    r = _psd_sqrt(s1)
    eig = np.linalg.eigvalsh(r @ s2 @ r)
    return float(
        ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig, 0, None)).sum()
    )


def _random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_fgd_matches_eigen_route_and_analytic_value() -> None:
    rng = np.random.default_rng(0)
    d = 5
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
    x = rng.multivariate_normal(mu1, s1, size=20000)
    y = rng.multivariate_normal(mu2, s2, size=20000)
    got = fgd(x, y)
    # same sample moments, independent square-root route
    m1, c1 = x.mean(0), np.cov(x, rowvar=False)
    m2, c2 = y.mean(0), np.cov(y, rowvar=False)
    assert got == pytest.approx(_frechet_sqrtm(m1, c1, m2, c2), rel=1e-8, abs=1e-10)
    # population value, within sampling error
    assert got == pytest.approx(_frechet_eig(mu1, s1, mu2, s2), rel=0.05)


def test_frechet_distance_of_commuting_gaussians_closed_form() -> None:
    # diagonal covariances: sum (sqrt(a) - sqrt(b))^2 + |mu1 - mu2|^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_fgd_is_zero_for_identical_sets_and_positive_for_shifted() -> None:
    z = np.random.default_rng(1).normal(size=(200, 8))
    assert fgd(z, z) == pytest.approx(0.0, abs=1e-8)
    assert fgd(z, z + 0.5) == pytest.approx(8 * 0.25, rel=1e-6)  # pure mean shift


def test_fgd_singular_covariances_are_exact_and_never_complex() -> None:
    """Few windows in a wide latent (the paired reading): rank-deficient covariances, where scipy's
    sqrtm of the product goes complex; the symmetric eigenvalue route stays exact."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 10)), rng.normal(size=(5, 10))  # N < D: rank-deficient covariances
    x[:, 3] = 0.0
    value = fgd(x, y)
    m1, c1 = gaussian_stats(x)
    m2, c2 = gaussian_stats(y)
    assert np.isfinite(value) and value == pytest.approx(_frechet_eig(m1, c1, m2, c2), rel=1e-9)
    assert fgd(x, x) == pytest.approx(0.0, abs=1e-9)
    for seed in range(20):  # two windows each (a short sequence padded to window + 1 frames)
        r = np.random.default_rng(seed)
        a = r.normal(size=(1, 32)) + 1e-4 * r.normal(size=(2, 32))
        b = a + 1e-6 * r.normal(size=(2, 32))
        assert 0.0 <= fgd(a, b) < 1e-6


def test_fgd_rejects_bad_input() -> None:
    z = np.zeros((5, 3))
    with pytest.raises(MetricError, match="at least 2"):
        fgd(z[:1], z)
    with pytest.raises(MetricError, match="widths differ"):
        fgd(z, np.zeros((5, 4)))
    bad = z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(MetricError, match="non-finite"):
        fgd(bad, z)
    with pytest.raises(MetricError, match="sigma1 is not positive semi-definite"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
    with pytest.raises(MetricError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


def test_windows_cover_and_pad() -> None:
    seq = np.arange(80)[:, None] * np.ones((1, 2))
    w = windows(seq, 34)
    assert w.shape == (3, 34, 2)
    assert w[0, 0, 0] == 0 and w[1, 0, 0] == 34 and w[-1, -1, 0] == 79  # last window ends at the last frame
    w = windows(seq[:20], 34)  # short span: padded by repeating the last frame
    assert w.shape == (1, 34, 2)
    np.testing.assert_array_equal(w[0, :20], seq[:20])
    assert (w[0, 20:] == seq[19]).all()
    assert windows(seq[:34], 34).shape == (1, 34, 2)
    assert windows(seq, 34, stride=17).shape[0] == 4  # starts 0, 17, 34, then 46 to reach frame 79
    with pytest.raises(ValueError, match="empty"):
        windows(seq[:0], 34)


HYPS = ["am montag regnet es im norden .", "morgen wird es kalt und windig .", "im süden sonne ."]
REFS = ["am montag regnet es im süden .", "morgen wird es sehr kalt .", "im süden viel sonne ."]


def test_bleu_equals_sacrebleu_corpus_score() -> None:
    got = bleu_scores(HYPS, REFS)
    full = sacrebleu.corpus_bleu(HYPS, [REFS])  # order 4; its n-gram counts give every BLEU-n
    assert got["bleu4"] == pytest.approx(full.score, abs=1e-9)
    for n in range(1, 5):
        logp = np.mean([np.log(full.counts[k] / full.totals[k]) for k in range(n)])
        assert got[f"bleu{n}"] == pytest.approx(100 * full.bp * np.exp(logp), rel=1e-9)
    assert got["bleu1"] > got["bleu2"] > got["bleu3"] > got["bleu4"] > 0


def test_bleu1_by_hand() -> None:
    # unigram precision 3/4 (clipped), hyp 4 words vs ref 5 words: BP = exp(1 - 5/4)
    got = bleu_scores(["a b c x"], ["a b c d e"])["bleu1"]
    assert got == pytest.approx(100 * 0.75 * np.exp(1 - 5 / 4), rel=1e-9)
    assert bleu_scores(REFS, REFS)["bleu4"] == pytest.approx(100.0)


def test_rouge_l_equals_rouge_score_and_hand_value() -> None:
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = np.mean(
        [
            scorer.score(r, h)["rougeL"].fmeasure
            for h, r in zip(["a b c", "x y"], ["a c", "x y z"], strict=True)
        ]
    )
    assert rouge_l(["a b c", "x y"], ["a c", "x y z"]) == pytest.approx(100 * expected)
    assert rouge_l(["a c d e"], ["a b c d"]) == pytest.approx(75.0)  # LCS 3 of 4 and 4
    assert rouge_l(["für"], ["fur"]) == 0.0  # umlauts are not dropped by the tokenizer
    with pytest.raises(MetricError, match="2 hypotheses but 1"):
        rouge_l(["a", "b"], ["a"])
    with pytest.raises(MetricError, match="not one str"):
        bleu_scores("a b", "a b")


def test_dtw_mje_zero_for_identical_and_time_stretched() -> None:
    rng = np.random.default_rng(3)
    a = rng.random((30, 5, 3))
    assert dtw_mje(a, a) == 0.0
    assert dtw_mje(np.repeat(a, 2, axis=0), a) == pytest.approx(0.0, abs=1e-12)
    assert dtw_mje(a, np.repeat(a, 3, axis=0)) == pytest.approx(0.0, abs=1e-12)
    assert dtw_mje(a[::-1], a) > 0.1


def test_dtw_mje_constant_offset_and_errors() -> None:
    a = np.full((10, 4, 3), 0.2)
    b = np.full((7, 4, 3), 0.2)
    b[..., 0] += 0.3  # every joint 0.3 away in x: every aligned pair costs 0.3
    assert dtw_mje(a, b) == pytest.approx(0.3)
    with pytest.raises(MetricError, match="equal J"):
        dtw_mje(a, np.zeros((5, 3, 3)))
    with pytest.raises(MetricError, match="empty"):
        dtw_mje(a[:0], b)


def test_duration_accuracy_hand_made() -> None:
    # diffs 20 (in), 30 (out), 25 (out: strictly less than one second), 0 (in)
    assert duration_accuracy([10, 40, 100, 7], [30, 10, 125, 7]) == pytest.approx(0.5)
    assert duration_accuracy([10], [30], margin=10) == 0.0
    with pytest.raises(MetricError, match="shape"):
        duration_accuracy([1, 2], [1])


def _dtw_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Plain O(n m) DTW-MJE with backtracking (the textbook recursion, ties: diagonal, up, left)."""
    cost = np.linalg.norm(a[:, None] - b[None], axis=-1).mean(axis=-1)
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    i, j, steps = n, m, 1
    while i > 1 or j > 1:
        moves = ((acc[i - 1, j - 1], i - 1, j - 1), (acc[i - 1, j], i - 1, j), (acc[i, j - 1], i, j - 1))
        _, i, j = min(moves, key=lambda t: t[0])
        steps += 1
    return float(acc[n, m] / steps)


def test_vectorised_dtw_equals_the_textbook_recursion_including_ties() -> None:
    rng = np.random.default_rng(11)
    gens = [rng.random((int(rng.integers(1, 30)), 3, 2)) for _ in range(25)]
    refs = [rng.random((int(rng.integers(1, 30)), 3, 2)) for _ in range(25)]
    # integer poses: many equal costs, so the tie order matters for the path length
    gens += [rng.integers(0, 2, (int(rng.integers(1, 12)), 2, 1)).astype(float) for _ in range(40)]
    refs += [rng.integers(0, 2, (int(rng.integers(1, 12)), 2, 1)).astype(float) for _ in range(40)]
    got = dtw_mje_parts(gens, refs)["all"]
    np.testing.assert_allclose(
        got, [_dtw_reference(g, r) for g, r in zip(gens, refs, strict=True)], rtol=1e-12
    )


def test_dtw_parts_share_the_alignment_path() -> None:
    """Per-part errors are measured along the path of the ``align`` joints: a part that is off by a
    constant gets exactly that error, the aligned part none."""
    rng = np.random.default_rng(12)
    ref = rng.random((20, 4, 3))
    gen = np.repeat(ref, 2, axis=0)  # same motion, half speed: DTW aligns it perfectly
    gen[:, 2:, 0] += 0.3  # joints 2, 3 shifted by 0.3 in x
    out = dtw_mje_parts([gen], [ref], {"a": slice(0, 2), "b": slice(2, 4)}, align=slice(0, 2))
    assert out["all"][0] == pytest.approx(0.0, abs=1e-12) and out["a"][0] == pytest.approx(0.0, abs=1e-12)
    assert out["b"][0] == pytest.approx(0.3)
    with pytest.raises(MetricError, match="1 generated but 2 reference"):
        dtw_mje_parts([gen], [ref, ref])
    with pytest.raises(MetricError, match="selects no joint"):
        dtw_mje_parts([gen], [ref], {"none": slice(4, 4)})


def test_realism_ratios_on_a_known_scaling() -> None:
    """Hands shrunk to 60 % about their wrist and motion damped to 25 % give exactly those ratios."""
    rng = np.random.default_rng(13)
    t = np.linspace(0, 4, 50)[:, None, None]
    ref = rng.normal(size=(1, 6, 3)) + np.sin(t + rng.uniform(0, 6, (1, 6, 3)))  # joints 0-2 body, 3-5 hand
    gen = ref.copy()
    gen[:, 3:] = ref[:, 3:4] + 0.6 * (ref[:, 3:] - ref[:, 3:4])  # hand bones x 0.6
    still = np.repeat(ref[:1], 50, axis=0)  # a held pose: no motion
    damped = ref[:1] + 0.25 * (ref - ref[:1])  # all motion x 0.25 (and positions pulled to frame 0)
    bones = {"body": [(0, 1), (1, 2)], "hand": [(3, 4), (4, 5)]}
    parts = {"body": slice(0, 3), "hand": slice(3, 6)}
    out = realism_ratios([gen], [ref], bones, parts)
    assert out["body"] == {"bone_ratio": pytest.approx(1.0), "motion_ratio": pytest.approx(1.0)}
    assert out["hand"]["bone_ratio"] == pytest.approx(0.6)
    assert realism_ratios([still], [ref], bones, parts)["hand"]["motion_ratio"] == 0.0
    assert realism_ratios([damped], [ref], bones, parts)["body"]["motion_ratio"] == pytest.approx(0.25)
    assert mean_bone_length([ref[:, :2]], [(0, 1)]) == pytest.approx(
        np.linalg.norm(ref[:, 1] - ref[:, 0], axis=-1).mean()
    )
    assert motion_sd([np.zeros((1, 2, 3)), np.arange(6.0).reshape(3, 2, 1)], slice(None)) == 0.0
    with pytest.raises(MetricError, match="no sequence has two frames"):
        motion_sd([np.zeros((1, 2, 3))], slice(None))
