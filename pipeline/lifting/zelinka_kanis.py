"""Zelinka & Kanis' 2D -> 3D skeletal-model lifting (WACV 2020, the paper's reference [36]), ported
to batched PyTorch (``lift.method: zelinka_kanis``).

A port of the method as their public code runs it (gopeith/SignLanguageProcessing,
``3DposeEstimator/`` and ``wacv2020/pipeline_demo_02_filter.py``; the reading is
docs/lifting_zelinka_kanis.md). Per sequence of the 50 manual joints ``[T, 50, (x, y, c)]``:

1. :func:`normalise`: subtract the mean x and the mean y, divide by one standard deviation pooled
   over x and y (all ``T x 50`` entries, missing ones included);
2. :func:`prune`: frames whose body joints 0-7 have mean confidence below 0.3 get weight 0;
3. :func:`interpolate`: every point becomes the confidence-weighted mean of an expanding,
   symmetric window of frames, widened until the weights sum to 0.99 (smooths low-confidence
   points too; a point never seen becomes 0);
4. :func:`initialise`: 25 log bone lengths ("lines", shared left/right) = log of the lower median
   of their 2D lengths; the root (nose) at its 2D point plus uniform noise of +-0.001 (in x, y
   and z, from one ``RandomState(1234)`` drawn sequence by sequence); down the tree, each bone's
   direction reaches its child's 2D point when the bone is long enough (depth
   ``+sqrt(L^2 - d^2)``, always positive) and points at it in the image plane otherwise, then
   ``z += 0.001`` and normalise;
5. :func:`optimise`: plain gradient descent (lr 0.1; 100 steps in their data pipeline, 1000 in
   their demo) on the log lengths, the roots and one *unnormalised* absolute direction vector per
   bone and frame, of::

       sum_tj w_tj |(x, y)_tj - target_tj|^2 / (T * 50)          (data: confidence-weighted 2D fit)
     + 0.001 * sum_l exp(line_l)                                 (short bones)
     + 0.1 * sum_tj |X_tj - X_t+1,j|^2 / ((T - 1) * 50)          (slow joints, in 3D)

   with ``w`` the pruned OpenPose confidences and the targets the interpolated 2D points; the
   projection is orthographic and the identity. Sequences are independent: a batch sums their
   objectives (padding masked), so each gets exactly its own gradient.

Output units are theirs: the normalised image units of step 1, y down, z the depth with the sign
convention of the initialisation (every bone starts pointing to +z). :func:`lift_raw` returns
them; :func:`to_input_units` maps them back to the input's units and our depth axis (z away from
the camera: their +z is read as towards it).

Deviations, all for inputs their code cannot take: a line whose median 2D length is 0 (a hand
never detected; their ``math.log`` raises) gets length :data:`MIN_LENGTH`; a one-frame sequence
has no velocity term (theirs divides by ``T - 1 = 0``).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.lifting.batching import length_batches, pad_batch

# (parent, child, line): the 49 bones in their topological order; the bone index is the row.
# Joints: 0 nose (root), 1 neck, 2-4 right shoulder/elbow/wrist, 5-7 left, 8-28 the left hand
# (from joint 7), 29-49 the right hand (from joint 4). Left and right bones share a line.
_ARM = ((1, 2, 1), (2, 3, 2), (3, 4, 3), (1, 5, 1), (5, 6, 2), (6, 7, 3))


def _hand(wrist: int, base: int) -> list[tuple[int, int, int]]:
    """The 21 bones of a hand whose keypoint 0 is ``base``, hanging off the body wrist ``wrist``:
    the link (line 4), the five palm rays (lines 5, 9, 13, 17, 21), then each finger's three
    phalanges (lines 6-8, 10-12, ...)."""
    rays = [(base, base + 1 + 4 * f, 5 + 4 * f) for f in range(5)]
    phalanges = [
        (base + 1 + 4 * f + k, base + 2 + 4 * f + k, 6 + 4 * f + k) for f in range(5) for k in range(3)
    ]
    return [(wrist, base, 4), *rays, *phalanges]


BONES = np.array([(0, 1, 0), *_ARM, *_hand(7, 8), *_hand(4, 29)], dtype=np.int64)  # [49, 3]
N_JOINTS, N_BONES, N_LINES = 50, len(BONES), int(BONES[:, 2].max()) + 1
ROOT = 0
PRUNE_JOINTS = np.arange(8)  # body joints whose mean confidence decides pruning
PRUNE_THRESHOLD = 0.3
INTERPOLATION_THRESHOLD = 0.99
ROOT_NOISE = 0.001
MIN_LENGTH = 1e-6  # a line whose median 2D length is 0 (their code raises there)


def _ancestry() -> np.ndarray:
    """[50, 49]: 1 where bone i lies on the path from the root to joint j."""
    path = np.zeros((N_JOINTS, N_BONES))
    for i, (a, b, _) in enumerate(BONES):
        path[b] = path[a]
        path[b, i] = 1.0
    return path


ANCESTRY = _ancestry()


# -- 2D pre-processing (numpy, float32 like theirs) --------------------------------------------
def normalise(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``xy`` [T, 50, 2] -> (normalised xy, mean (x, y), pooled std): x and y lose their own mean and
    are divided by one std pooled over both (every entry counts, missing points included)."""
    xy = xy.astype(np.float64)
    mu = xy.reshape(-1, 2).mean(axis=0)
    sigma = float(np.sqrt(max((xy**2).mean() - xy.mean() ** 2, 1e-20)))
    return ((xy - mu) / sigma).astype(np.float32), mu, sigma


def prune(xy: np.ndarray, w: np.ndarray, threshold: float = PRUNE_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Zero the points and weights of frames whose body joints' mean confidence is below
    ``threshold`` (the frames stay: their weight 0 takes them out of the fit)."""
    keep = w[:, PRUNE_JOINTS].astype(np.float64).mean(axis=1) >= threshold  # float32 values, float64 sum
    xy = np.where(keep[:, None, None], xy, 0.0).astype(np.float32)
    return xy, np.where(keep[:, None], w, 0.0).astype(np.float32)


def interpolate(xy: np.ndarray, w: np.ndarray, threshold: float = INTERPOLATION_THRESHOLD) -> np.ndarray:
    """Each point -> the ``w``-weighted mean of the frames ``t-r .. t+r`` with the smallest ``r``
    whose weights reach ``threshold`` (the whole sequence if none does; 0 where no weight at all).
    Sums accumulate in their order (``t+r`` then ``t-r``) in float32."""
    T = len(xy)
    w = w.astype(np.float32)
    sw = w.copy()  # [T, J]
    swa = (w[..., None] * xy).astype(np.float32)  # [T, J, 2]
    t = np.arange(T)[:, None]
    active = sw < threshold
    for r in range(1, T):
        if not active.any():
            break
        for s in (t + r, t - r):
            inside = (s >= 0) & (s < T)  # [T, 1]
            add = active & inside
            src = np.clip(s, 0, T - 1)[:, 0]
            sw = np.where(add, sw + w[src], sw)
            swa = np.where(add[..., None], swa + w[src][..., None] * xy[src], swa)
        active &= sw < threshold
    sw = np.where(sw <= 0.0, np.float32(1e-10), sw)
    return (swa / sw[..., None]).astype(np.float32)


def initialise(xy: np.ndarray, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial (log lengths [25], roots [T, 3], unit directions [T, 49, 3]) for the targets ``xy``
    [T, 50, 2]; draws the root noise from ``rng`` (x, then y, then z, ``T`` values each)."""
    T = len(xy)
    xy64 = xy.astype(np.float64)
    lengths2d = np.linalg.norm(xy64[:, BONES[:, 1]] - xy64[:, BONES[:, 0]], axis=-1)  # [T, 49]
    lines = np.zeros(N_LINES, dtype=np.float32)
    for line in range(N_LINES):
        pooled = np.sort(lengths2d[:, BONES[:, 2] == line].ravel())
        lines[line] = np.log(max(float(pooled[int(0.5 * (len(pooled) - 1))]), MIN_LENGTH))
    noise = [rng.uniform(low=-ROOT_NOISE, high=ROOT_NOISE, size=(T,)).astype(np.float32) for _ in range(3)]
    roots = np.stack([xy[:, ROOT, 0] + noise[0], xy[:, ROOT, 1] + noise[1], np.float32(0.0) + noise[2]], -1)
    pos = np.zeros((T, N_JOINTS, 3), dtype=np.float32)
    pos[:, ROOT] = roots
    angles = np.zeros((T, N_BONES, 3), dtype=np.float32)
    for i, (a, b, line) in enumerate(BONES):
        L = float(np.exp(np.float64(lines[line])))
        d = xy64[:, b] - pos[:, a, :2].astype(np.float64)  # [T, 2] parent's 3D so far -> child's 2D
        d2 = (d**2).sum(-1)
        depth = np.sqrt(np.clip(L**2 - d2, 0.0, None))  # 0 where the bone is too short to reach
        h = np.concatenate([d, depth[:, None]], axis=-1)
        h[d2 == 0.0] = 1.0  # child on its parent: their zero hypothesis, replaced by (1, 1, 1)
        h[:, 2] += 0.001
        angles[:, i] = h / (np.linalg.norm(h, axis=-1, keepdims=True) + 1e-10)
        pos[:, b] = pos[:, a] + np.float32(L) * angles[:, i]
    return lines, roots.astype(np.float32), angles


def prepare(
    raw: np.ndarray, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, float]:
    """Steps 1-4 for one sequence ``raw`` [T, 50, 3] (x, y, confidence): returns (targets
    [T, 50, 2], weights [T, 50], (lines, roots, angles), mean, std)."""
    xy, mu, sigma = normalise(raw[..., :2])
    xy, w = prune(xy, raw[..., 2].astype(np.float32))
    xy = interpolate(xy, w)
    return xy, w, initialise(xy, rng), mu, sigma


# -- the optimisation (batched torch) ------------------------------------------------------------
def forward(lines: torch.Tensor, roots: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Joint positions [50, B, T, 3] from log lengths [B, 25], roots [B, T, 3] and unnormalised
    bone directions [49, B, T, 3] (bones first: the chain is one matrix product)."""
    path = torch.as_tensor(ANCESTRY, dtype=angles.dtype, device=angles.device)
    length = torch.exp(lines)[:, torch.as_tensor(BONES[:, 2], device=lines.device)].t()  # [49, B]
    norm = torch.sqrt((angles**2).sum(-1, keepdim=True)) + 1e-10  # their epsilon: after the root
    steps = length[:, :, None, None] * angles / norm
    return roots[None] + (path @ steps.reshape(N_BONES, -1)).reshape(N_JOINTS, *steps.shape[1:])


def objective(
    lines: torch.Tensor,
    roots: torch.Tensor,
    angles: torch.Tensor,
    target: torch.Tensor,
    w: torch.Tensor,
    frames: torch.Tensor,
    w_length: float,
    w_velocity: float,
) -> torch.Tensor:
    """Sum over the batch of each sequence's objective (module docstring); ``target`` [50, B, T, 2],
    ``w`` [50, B, T] (0 on padding), ``frames`` [B] real lengths."""
    x = forward(lines, roots, angles)
    T = x.shape[2]
    data = (w * ((x[..., :2] - target) ** 2).sum(-1)).sum(dim=(0, 2)) / (frames * N_JOINTS)
    total = data + w_length * torch.exp(lines).sum(-1)
    if T > 1:
        real = (torch.arange(T - 1, device=x.device)[None] < (frames[:, None] - 1)).to(x.dtype)  # [B, T-1]
        vel = (((x[:, :, :-1] - x[:, :, 1:]) ** 2).sum(dim=(0, -1)) * real).sum(-1)
        total = total + w_velocity * vel / ((frames - 1).clamp(min=1) * N_JOINTS)
    return total.sum()


def optimise(
    prepared: list[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]],
    iterations: int,
    lr: float,
    w_length: float,
    w_velocity: float,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> list[np.ndarray]:
    """Gradient descent on a batch of prepared sequences (targets, weights, initial values), in
    ``dtype`` (theirs: float32); returns each sequence's 3D joints [T_i, 50, 3] in the normalised
    units."""
    T = max(len(p[0]) for p in prepared)

    def pad(arrays: list[np.ndarray], fill: float = 0.0) -> torch.Tensor:
        return pad_batch(arrays, T, dtype, device, fill)

    def joints_first(x: torch.Tensor) -> torch.Tensor:  # [B, T, J, ...] -> [J, B, T, ...]
        return x.movedim(2, 0).contiguous()

    target = joints_first(pad([p[0] for p in prepared]))
    w = joints_first(pad([p[1] for p in prepared]))
    lines = torch.as_tensor(np.stack([p[2][0] for p in prepared]), dtype=dtype, device=device)
    lines.requires_grad_(True)
    roots = pad([p[2][1] for p in prepared]).requires_grad_(True)
    # padding: not 0, where the square root's derivative is not finite
    angles = joints_first(pad([p[2][2] for p in prepared], 1.0)).requires_grad_(True)
    frames = torch.as_tensor([len(p[0]) for p in prepared], dtype=dtype, device=device)
    opt = torch.optim.SGD([lines, roots, angles], lr=lr)
    for _ in range(iterations):
        opt.zero_grad(set_to_none=True)
        objective(lines, roots, angles, target, w, frames, w_length, w_velocity).backward()
        opt.step()
    with torch.no_grad():
        x = forward(lines, roots, angles).movedim(0, 2).cpu().numpy()
    return [x[k, : len(p[0])] for k, p in enumerate(prepared)]


def lift_raw(
    sequences: list[np.ndarray],
    iterations: int = 100,
    lr: float = 0.1,
    w_length: float = 0.001,
    w_velocity: float = 0.1,
    seed: int = 1234,
    batch_frames: int = 16384,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Lift 2D sequences ``[T_i, 50, 3]`` (x, y, confidence; missing points 0) as their pipeline
    does; returns per sequence (3D joints [T_i, 50, 3] in its normalised units, mean, std).

    The root noise comes from one ``RandomState(seed)`` drawn in the order of ``sequences``;
    sequences of similar length are optimised together (at most ``batch_frames`` padded frames)."""
    device = device or torch.device("cpu")
    rng = np.random.RandomState(seed)
    prepared = []
    for s in sequences:
        if s.ndim != 3 or s.shape[1:] != (N_JOINTS, 3) or len(s) == 0:
            raise ValueError(f"expected [T >= 1, {N_JOINTS}, 3] (x, y, confidence), got {s.shape}")
        prepared.append(prepare(s, rng))
    out: list[tuple[np.ndarray, np.ndarray, float] | None] = [None] * len(sequences)
    for batch in length_batches([len(s) for s in sequences], batch_frames):
        batch_in = [prepared[k][:3] for k in batch]
        lifted = optimise(batch_in, iterations, lr, w_length, w_velocity, device, dtype)
        for k, x in zip(batch, lifted, strict=True):
            out[k] = (x, prepared[k][3], prepared[k][4])
    return out  # type: ignore[return-value]


def to_input_units(x: np.ndarray, mu: np.ndarray, sigma: float) -> np.ndarray:
    """Their normalised 3D [T, 50, 3] in the units and axes of our 2D input: x, y back to the input's
    scale and offset, z scaled alike and negated. Their code never says where +z points; their
    published Czech output agrees with ours only with the axis flipped (docs/benchmarks.md): their
    +z, where every bone starts, is towards the camera (hands in front of the body), ours away."""
    return np.concatenate([x[..., :2] * sigma + mu, -x[..., 2:] * sigma], axis=-1)
