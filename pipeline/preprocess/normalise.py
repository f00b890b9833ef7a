"""Normalisation of ingested poses: clean, select joints, centre/scale per sequence, map into [0, 1].

:func:`normalise` turns ingested stores (raw OpenPose 137 joints x [x, y, c] pixels, or 50 manual
joints x [x, y, z] of a 3D source) into stores of the 50 manual joints (120 with
``normalise.face``), channels [x, y, c] (2D) or [x, y, z] (3D) in [0, 1], plus the
:class:`~pipeline.data.transform.UnitRange` fitted on train and per-split counts.

Per sequence (2D sources; the full rules are in docs/ARCHITECTURE.md, "## normalise"):

1. main signer per frame (:func:`pick_signer`): people with fewer than ``min_body_joints``
   confident BODY_25 0..7 joints are not eligible. Among several eligible people, implausible
   ones (a confident body joint more than ``max_reach`` of their own shoulder widths from their
   neck) are passed over; then the first kept frame takes the person with the largest
   size x summed body confidence (size: the largest distance between their confident nose,
   neck and shoulders), later frames the person whose confident body joints are closest (mean
   distance) to the previous kept frame's choice. Frames without an eligible person are
   dropped; kept frames with several people (``frames_other_person``) and those where the
   runner-up came within 20 % of the choice (``frames_ambiguous``) are counted.
2. joints below ``min_confidence`` are missing and interpolated over time between their
   confident neighbours (weights ``c_a (b - t)`` and ``c_b (t - a)``), held at the ends; a joint
   never confident in the sequence gets the train split's mean body-relative pose. Filled joints
   get confidence 0. A confident body joint farther than ``max_reach`` shoulder widths (the
   sequence's scale) from its frame's neck is implausible and treated as missing
   (``joints_implausible``); a sequence with such joints in more than ``max_implausible_frames``
   of its kept frames is dropped (``sequences_dropped_implausible``).
3. ``u = (p - centre) / scale``: centre = mean neck over frames where it is confident, scale =
   median shoulder width (joints 2..5) over frames where both shoulders are confident; both
   stored in the index entry.
4. ``v = UnitRange.forward(u)`` fitted on train, per channel, on the values within the gross-outlier
   bounds (the train 1 %..99 % quantile range widened by ``outlier_range`` times itself per side;
   clean data has none, and the fit is then the plain min/max); values outside [0, 1] (dev/test,
   and train's gross outliers) are clipped and counted (``values_clipped``, ``values_outlier``).
   :func:`denormalise` inverts 4 (and 3 when given the index entry).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ParamsError, param
from pipeline.data.skeleton import (
    MANUAL,
    MANUAL_FACE_JOINTS,
    MANUAL_JOINTS,
    PARTS,
    RAW_JOINTS,
    RAW_TO_MANUAL,
    RAW_TO_MANUAL_FACE,
)
from pipeline.data.store import SplitStore
from pipeline.data.transform import UnitRange

log = logging.getLogger(__name__)

BODY = PARTS["body"]  # BODY_25 0..7: the same indices in the raw and the manual layouts
NOSE, NECK = MANUAL["body_nose"], MANUAL["body_neck"]
R_SHOULDER, L_SHOULDER = MANUAL["body_r_shoulder"], MANUAL["body_l_shoulder"]
TRUNK = [NOSE, NECK, R_SHOULDER, L_SHOULDER]  # nearly rigid: their extent is a person's size
AMBIGUOUS = 0.8  # signer choice: a runner-up within 20 % of the chosen person's key is ambiguous
OUTLIER_QUANTILE = 0.01  # [0, 1] map: gross outliers are judged against the 1 %..99 % quantile range


@dataclass(frozen=True)
class NormaliseConfig:
    """The ``normalise`` params section."""

    face: bool = False  # add the 70 face points to the 50 manual joints
    min_body_joints: int = param(
        3, ge=1, le=BODY.stop - BODY.start
    )  # fewer confident BODY_25 0..7: frame dropped
    min_confidence: float = param(0.1, ge=0, lt=1)  # below: the joint counts as missing
    margin: float = param(0.05, ge=0)  # [0, 1] map: train range widened by this fraction per side
    max_reach: float = param(4.0, gt=0)  # body joint farther from the neck (shoulder widths): implausible
    max_implausible_frames: float = param(
        0.25, ge=0, le=1
    )  # larger fraction of kept frames with implausible joints: sequence dropped
    outlier_range: float = param(
        1.0, gt=0
    )  # [0, 1] map: train values beyond the 1..99 % quantile range by this multiple of it: not fitted


class NormaliseError(ValueError):
    """Input the normalise stage cannot use (message names the split/sequence)."""


# -- cleaning ---------------------------------------------------------------------------------
def _eligible(people: np.ndarray, cfg: NormaliseConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per person ``[..., 137, 3]``: eligible, summed confident body confidence, confident mask."""
    conf = np.clip(people[..., BODY, 2], 0, 1)
    ok = conf >= cfg.min_confidence
    return ok.sum(axis=-1) >= cfg.min_body_joints, np.where(ok, conf, 0).sum(axis=-1), ok


def _size(people: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per person ``[K, 137, 3]``: largest distance between confident nose, neck, shoulders (0 if < 2)."""
    xy, m = people[:, TRUNK, :2], ok[:, TRUNK]
    d = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1)
    return np.where(m[:, :, None] & m[:, None], d, 0).max(axis=(1, 2))


def _reach(people: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per person: farthest confident body joint from the neck, in shoulder widths (NaN when the
    neck or a shoulder is not confident)."""
    width = np.linalg.norm(people[:, R_SHOULDER, :2] - people[:, L_SHOULDER, :2], axis=-1)
    d = np.linalg.norm(people[:, BODY, :2] - people[:, NECK : NECK + 1, :2], axis=-1)
    far = np.where(ok, d, 0).max(axis=-1)
    known = ok[:, NECK] & ok[:, R_SHOULDER] & ok[:, L_SHOULDER]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(known, far / width, np.nan)


def _choose(
    people: np.ndarray,
    idx: np.ndarray,
    score: np.ndarray,
    ok: np.ndarray,
    prev: np.ndarray | None,
    cfg: NormaliseConfig,
) -> tuple[int, bool]:
    """The signer among the eligible people ``idx`` of one frame, and whether the choice was ambiguous."""
    if len(idx) > 1:  # implausible people are passed over while a plausible one is left
        plausible = idx[~(_reach(people[idx], ok[idx]) > cfg.max_reach)]
        idx = plausible if len(plausible) else idx
    if len(idx) == 1:
        return int(idx[0]), False
    if prev is None:  # no earlier choice: the largest, most confident person
        key = _size(people[idx], ok[idx]) * score[idx]
        order = np.argsort(-key, kind="stable")
        return int(idx[order[0]]), bool(key[order[1]] >= AMBIGUOUS * key[order[0]])
    prev_ok = np.clip(prev[BODY, 2], 0, 1) >= cfg.min_confidence
    keys = []
    for i in idx:  # the person closest to the previous choice (ties: the more confident)
        both = ok[i] & prev_ok
        d = np.linalg.norm(people[i, BODY, :2][both] - prev[BODY, :2][both], axis=1)
        keys.append((d.mean() if both.any() else np.inf, -float(score[i])))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    best, runner = keys[order[0]][0], keys[order[1]][0]
    return int(idx[order[0]]), bool(not np.isfinite(best) or best >= AMBIGUOUS * runner)


def pick_signer(
    first: np.ndarray,
    present: np.ndarray,
    extra: dict[int, np.ndarray],
    cfg: NormaliseConfig,
    counts: Counter[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, Counter[str]]:
    """Main signer per frame (raw layout).

    ``first`` ``[T, 137, 3]`` is the first person of every frame, ``present`` ``[T]`` whether
    the frame has any person, ``extra[t]`` ``[K, 137, 3]`` the further people of frame ``t``.
    Returns the chosen people ``[T', 137, 3]`` of the kept frames, the kept frame indices and
    the dropped frames by reason (``no_person``, ``few_body_joints``). ``counts``, when given, is
    increased by the kept frames with several people (``frames_other_person``) and those of
    them where the choice was ambiguous (``frames_ambiguous``). List order plays no part.
    """
    T = len(first)
    chosen = first.copy()
    ok_first, _, _ = _eligible(first, cfg)
    keep = present & ok_first
    dropped: Counter[str] = Counter(no_person=int((~present).sum()), few_body_joints=0)
    stats: Counter[str] = Counter(frames_other_person=0, frames_ambiguous=0)
    for t in sorted(extra):  # frames with several people, in time order
        if not present[t]:
            raise NormaliseError(f"frame {t}: further people recorded in a frame without people")
        people = np.concatenate([first[t : t + 1], extra[t]])
        eligible, score, ok = _eligible(people, cfg)
        idx = np.flatnonzero(eligible)
        if len(idx) == 0:
            keep[t] = False
            continue
        before = np.flatnonzero(keep[:t])
        prev = chosen[before[-1]] if len(before) else None
        best, ambiguous = _choose(people, idx, score, ok, prev, cfg)
        stats["frames_other_person"] += 1
        stats["frames_ambiguous"] += ambiguous
        chosen[t] = people[best]
        keep[t] = True
    dropped["few_body_joints"] = int(T - keep.sum() - dropped["no_person"])
    if counts is not None:
        counts.update(stats)
    kept = np.flatnonzero(keep)
    return chosen[kept], kept, dropped


def implausible_joints(xy: np.ndarray, observed: np.ndarray, scale: float, max_reach: float) -> np.ndarray:
    """``[T, J]``: observed body joints (manual layout ``xy`` ``[T, J, 2]``) farther than
    ``max_reach * scale`` from the same frame's neck (``xy`` interpolated, so every frame has one)."""
    d = np.linalg.norm(xy[:, BODY] - xy[:, NECK : NECK + 1], axis=-1)
    bad = np.zeros(observed.shape, bool)
    bad[:, BODY] = observed[:, BODY] & (d > max_reach * scale)
    return bad


def interpolate(xy: np.ndarray, conf: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, Counter[str]]:
    """Fill missing joints over time, per joint; ``xy`` [T, J, C], ``conf``/``missing`` [T, J].

    Between confident frames ``a < t < b``: ``(c_a (b - t) p_a + c_b (t - a) p_b) / (c_a (b - t) +
    c_b (t - a))`` (linear when the two confidences are equal); before the first / after the
    last confident frame the nearest value is held. Joints never confident stay NaN.
    """
    out = xy.astype(np.float64).copy()
    counts: Counter[str] = Counter(joints_interpolated=0, joints_held=0)
    for j in range(xy.shape[1]):
        miss = missing[:, j]
        if not miss.any():
            continue
        obs = np.flatnonzero(~miss)
        if len(obs) == 0:
            out[:, j] = np.nan
            continue
        m = np.flatnonzero(miss)
        k = np.searchsorted(obs, m)  # obs[k-1] < m < obs[k]
        inner = (k > 0) & (k < len(obs))
        held_lo, held_hi = m[k == 0], m[k == len(obs)]
        out[held_lo, j] = out[obs[0], j]
        out[held_hi, j] = out[obs[-1], j]
        ti = m[inner]
        a, b = obs[k[inner] - 1], obs[k[inner]]
        c = np.maximum(conf[:, j].astype(np.float64), 1e-6)
        wa, wb = c[a] * (b - ti), c[b] * (ti - a)
        out[ti, j] = (wa[:, None] * out[a, j] + wb[:, None] * out[b, j]) / (wa + wb)[:, None]
        counts["joints_interpolated"] += len(ti)
        counts["joints_held"] += len(held_lo) + len(held_hi)
    return out, counts


def centre_scale(xy: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray | None, float | None, str]:
    """Centre (mean confident neck) and scale (median shoulder width); reason when undefined."""
    neck = observed[:, NECK]
    if not neck.any():
        return None, None, "no_neck"
    centre = xy[neck, NECK].mean(axis=0)
    both = observed[:, R_SHOULDER] & observed[:, L_SHOULDER]
    if not both.any():
        return None, None, "no_shoulders"
    scale = float(np.median(np.linalg.norm(xy[both, R_SHOULDER] - xy[both, L_SHOULDER], axis=1)))
    if not scale > 0:
        return None, None, "zero_shoulder_width"
    return centre, scale, ""


def outlier_bounds(u: np.ndarray, outlier_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Per channel of ``u`` ``[..., C]``: the bounds beyond which a value is a gross outlier.

    With ``q_lo``, ``q_hi`` the ``OUTLIER_QUANTILE`` and ``1 - OUTLIER_QUANTILE`` quantiles of the
    finite values and ``r = q_hi - q_lo``: ``q_lo - outlier_range * r`` and ``q_hi + outlier_range * r``
    (unbounded for a channel with ``r = 0``). Robust while fewer than 1 % of the values are outliers.
    """
    flat = u.reshape(-1, u.shape[-1])
    flat = flat[np.isfinite(flat).all(axis=1)]
    if len(flat) == 0:
        raise NormaliseError("train: no finite values to fit the [0, 1] map on")
    q_lo, q_hi = np.quantile(flat, [OUTLIER_QUANTILE, 1 - OUTLIER_QUANTILE], axis=0)
    r = q_hi - q_lo
    low = np.where(r > 0, q_lo - outlier_range * r, -np.inf)
    high = np.where(r > 0, q_hi + outlier_range * r, np.inf)
    return low, high


# -- stage ------------------------------------------------------------------------------------
@dataclass
class _Seq:
    entry: dict[str, Any]
    u: np.ndarray  # float64 [T, J, D] body units (NaN where never observed)
    conf: np.ndarray | None  # [T, J] or None for 3D sources
    kept: np.ndarray
    gt3d: np.ndarray | None


def _clean_split(
    store: SplitStore, cfg: NormaliseConfig, split: str, is3d: bool
) -> tuple[list[_Seq], Counter[str]]:
    counts: Counter[str] = Counter(
        joints_filled_mean=0,
        joints_implausible=0,
        frames_other_person=0,
        frames_ambiguous=0,
        sequences_dropped_implausible=0,
        values_clipped=0,
        values_outlier=0,
    )
    counts["sequences_in"] = len(store)
    counts["frames_in"] = int(store.poses.shape[0])
    if is3d:
        if store.poses.shape[1:] != (len(MANUAL_JOINTS), 3):
            raise NormaliseError(
                f"{split}: 3D source must have 50 joints x [x, y, z], got {store.poses.shape[1:]}"
            )
        select = np.arange(len(MANUAL_JOINTS))
    else:
        if store.poses.shape[1:] != (len(RAW_JOINTS), 3):
            raise NormaliseError(
                f"{split}: 2D source must have 137 raw joints x [x, y, c], got {store.poses.shape}"
            )
        select = RAW_TO_MANUAL_FACE if cfg.face else RAW_TO_MANUAL
    n_people = store.arrays.get("n_people")
    extra, extra_frame = None, None
    if not is3d:  # further people of some frames (OpenPose sources)
        extra, extra_frame = store.extra_people or (None, None)
        n_extra = 0 if extra is None else len(extra)
        expected = 0 if n_people is None else int(np.maximum(np.asarray(n_people, np.int64) - 1, 0).sum())
        if expected != n_extra:
            raise NormaliseError(
                f"{split}: n_people records {expected} further people but {n_extra} are stored "
                "(extra_people.npy missing or inconsistent)"
            )
    out: list[_Seq] = []
    for i, entry in enumerate(store.index):
        lo, hi = int(store.offsets[i]), int(store.offsets[i + 1])
        seq = np.asarray(store.poses[lo:hi], np.float64)
        name = f"{split}/{entry.get('name', i)}"
        if is3d:
            kept = np.arange(hi - lo)
            xyz = seq
            observed = np.ones(xyz.shape[:2], bool)
            conf = None
        else:
            present = np.ones(hi - lo, bool) if n_people is None else np.asarray(n_people[lo:hi]) > 0
            more: dict[int, list[np.ndarray]] = {}
            if extra is not None and len(extra_frame):
                for k in np.flatnonzero((extra_frame >= lo) & (extra_frame < hi)):
                    more.setdefault(int(extra_frame[k]) - lo, []).append(extra[k].astype(np.float64))
            try:
                people, kept, dropped = pick_signer(
                    seq, present, {t: np.stack(v) for t, v in more.items()}, cfg, counts
                )
            except NormaliseError as exc:
                raise NormaliseError(f"{name}: {exc}") from exc
            counts.update({f"frames_dropped_{k}": v for k, v in dropped.items()})
            if len(kept) == 0:
                log.warning("%s: no frame with a signer left; sequence dropped", name)
                counts["sequences_dropped_no_frames"] += 1
                continue
            sel = people[:, select]
            conf = np.clip(sel[..., 2], 0, 1)
            observed = conf >= cfg.min_confidence
            xyz, c = interpolate(sel[..., :2], conf, ~observed)
        centre, scale, reason = centre_scale(xyz, observed)
        detail = reason
        if not is3d:
            if not reason:  # body joints beyond reach: missing, or the whole sequence dropped
                bad = implausible_joints(xyz, observed, scale, cfg.max_reach)
                n_bad = int(bad.any(axis=1).sum())
                if n_bad > cfg.max_implausible_frames * len(kept):
                    reason = "implausible"
                    detail = (
                        f"{n_bad} of {len(kept)} kept frames (more than normalise.max_implausible_frames="
                        f"{cfg.max_implausible_frames:g} of them) have a body joint more than "
                        f"normalise.max_reach={cfg.max_reach:g} shoulder widths ({cfg.max_reach * scale:.1f} "
                        "px) from the neck"
                    )
                elif n_bad:
                    counts["joints_implausible"] += int(bad.sum())
                    observed &= ~bad
                    xyz, c = interpolate(sel[..., :2], conf, ~observed)
                    centre, scale, reason = centre_scale(xyz, observed)
                    detail = reason
            counts.update(c)
            conf = np.where(observed, conf, 0.0)
        if reason:
            log.warning("%s: %s; sequence dropped", name, detail or reason)
            counts[f"sequences_dropped_{reason}"] += 1
            continue
        entry = dict(entry)
        if "frame_numbers" in entry:
            entry["frame_numbers"] = [entry["frame_numbers"][t] for t in kept]
        entry["centre"] = [float(v) for v in centre]
        entry["scale"] = scale
        entry["frames_dropped"] = int(hi - lo - len(kept))
        gt = None
        if "gt3d" in store.arrays:
            gt = np.asarray(store.arrays["gt3d"][lo:hi])[kept][:, select]
        out.append(_Seq(entry, (xyz - centre) / scale, conf, kept, gt))
    return out, counts


def normalise(
    stores: dict[str, SplitStore], cfg: NormaliseConfig
) -> tuple[dict[str, SplitStore], UnitRange, dict[str, Any]]:
    """Normalise ingested stores; returns the output stores, the fitted map and the metrics."""
    if "train" not in stores or len(stores["train"]) == 0:
        raise NormaliseError("normalise needs a non-empty train split to fit the [0, 1] map")
    channels_in = stores["train"].channels
    is3d = channels_in == ["x", "y", "z"]
    if not is3d and channels_in != ["x", "y", "c"]:
        raise NormaliseError(f"train: unsupported channels {channels_in} (expected [x, y, c] or [x, y, z])")
    if is3d and cfg.face:
        raise ParamsError(
            "params.yaml: normalise.face=true needs a 2D OpenPose source with face points; this source "
            "is 3D with the manual joints only (e.g. data.source=pt_skels): set normalise.face: false "
            "(dvc exp run -S normalise.face=false)"
        )
    joints = MANUAL_FACE_JOINTS if cfg.face else MANUAL_JOINTS
    cleaned, metrics = {}, {}
    for split, store in stores.items():
        if store.channels != channels_in:
            raise NormaliseError(f"{split}: channels {store.channels} differ from train's {channels_in}")
        cleaned[split], metrics[split] = _clean_split(store, cfg, split, is3d)
    if not cleaned["train"]:
        raise NormaliseError("train: every sequence was dropped; nothing to fit the [0, 1] map on")

    # joints never observed in a sequence: the train split's mean body-relative pose
    train_u = np.concatenate([s.u for s in cleaned["train"]])
    finite = np.isfinite(train_u).all(axis=-1)
    if not is3d:
        finite &= np.concatenate([s.conf for s in cleaned["train"]]) > 0
    counts_j = finite.sum(axis=0)
    mean_pose = np.where(finite[..., None], train_u, 0).sum(axis=0) / np.maximum(counts_j, 1)[:, None]
    never = np.flatnonzero(counts_j == 0)
    if len(never):
        log.warning(
            "%d joints never observed in train (e.g. %s): filled at the neck", len(never), joints[never[0]]
        )
    for split, seqs in cleaned.items():
        for s in seqs:
            gap = ~np.isfinite(s.u).all(axis=-1)
            if gap.any():
                s.u[gap] = np.broadcast_to(mean_pose, s.u.shape)[gap]
                metrics[split]["joints_filled_mean"] += int(gap.sum())
        metrics[split]["joints_never_seen_in_train"] = len(never)

    fit_u = np.concatenate([s.u for s in cleaned["train"]])
    low, high = outlier_bounds(fit_u, cfg.outlier_range)
    outlier = (fit_u < low) | (fit_u > high)
    if outlier.any():  # fitted per channel without the gross outliers, which are clipped below
        log.warning(
            "train: %d values beyond the gross-outlier bounds %s..%s (body units, normalise.outlier_range="
            "%g) left out of the [0, 1] fit and clipped",
            int(outlier.sum()),
            np.round(low, 2).tolist(),
            np.round(high, 2).tolist(),
            cfg.outlier_range,
        )
        fits = [
            UnitRange.fit(fit_u[..., c : c + 1], margin=cfg.margin, mask=~outlier[..., c])
            for c in range(fit_u.shape[-1])
        ]
        transform = UnitRange([f.low[0] for f in fits], [f.high[0] for f in fits])
    else:  # clean data: the plain min/max fit
        transform = UnitRange.fit(fit_u, margin=cfg.margin)
    out: dict[str, SplitStore] = {}
    for split, seqs in cleaned.items():
        seqs_out = []
        for s in seqs:
            metrics[split]["values_outlier"] += int(((s.u < low) | (s.u > high)).sum())
            v = np.asarray(transform.forward(s.u), np.float64)
            outside = (v < 0) | (v > 1)
            metrics[split]["values_clipped"] += int(outside.sum())
            v = np.clip(v, 0, 1)
            if not is3d:
                v = np.concatenate([v, s.conf[..., None]], axis=-1)
            seqs_out.append(v.astype(np.float32))
        arrays = {"gt3d": [s.gt3d for s in seqs]} if seqs and seqs[0].gt3d is not None else None
        out[split] = SplitStore.from_sequences(
            seqs_out,
            [s.entry for s in seqs],
            joints,
            ["x", "y", "z"] if is3d else ["x", "y", "c"],
            fps=stores[split].fps,
            arrays=arrays,
            extra={**stores[split].extra, "normalised": True},
        )
        m = metrics[split]
        m["sequences"] = len(seqs)
        m["frames"] = int(out[split].poses.shape[0])
        m["frames_dropped"] = sum(v for k, v in m.items() if k.startswith("frames_dropped_"))
        m["sequences_dropped"] = sum(v for k, v in m.items() if k.startswith("sequences_dropped_"))
        metrics[split] = dict(sorted(m.items()))
    return out, transform, metrics


def denormalise(
    v: np.ndarray, transform: UnitRange | str | Path, entry: dict[str, Any] | None = None
) -> np.ndarray:
    """Exact inverse of the normalise map for ``v`` ``[..., J, C]`` (float64 result).

    The coordinate channels (x, y for 2D, x, y, z for 3D) go back to body-centred units (shoulder
    width ~1), or to source units (pixels) when the sequence's index ``entry`` (with ``centre``
    and ``scale``) is given; a confidence channel is returned unchanged.
    """
    if not isinstance(transform, UnitRange):
        transform = UnitRange.load(transform)
    v = np.asarray(v, np.float64)
    k = len(transform.low)
    out = v.copy()
    u = transform.inverse(v[..., :k])
    if entry is not None:
        if "centre" not in entry or "scale" not in entry:
            raise NormaliseError(f"index entry {entry.get('name')!r} has no centre/scale")
        u = u * float(entry["scale"]) + np.asarray(entry["centre"], np.float64)
    out[..., :k] = u
    return out
