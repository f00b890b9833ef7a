"""The ``lift`` params section: the lifting's objective weights, priors and optimisation schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.config import param


@dataclass(frozen=True)
class LiftConfig:
    """The ``lift`` section of params.yaml (docs/ARCHITECTURE.md#lift)."""

    # knn: ours with the learned prior (needs 3D in the train split, else viterbi; params.yaml's
    # default since issue 17); viterbi: ours, depth signs from anatomical costs (the default here,
    # for library callers that have no train 3D); zelinka_kanis: the paper's [36], ported
    method: Literal["knn", "viterbi", "zelinka_kanis"] = "viterbi"
    knn_k: int = param(4, gt=0)  # knn: bank frames averaged per frame
    knn_lengths_3d: bool = True  # knn: bone lengths start at the initial 3D pose's medians
    knn_stride: int = param(2, gt=0)  # knn: the bank keeps every n-th train frame
    knn_dims: int | None = param(32, gt=0)  # knn: principal axes of the 2D distances (None = all 100)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when available
    iterations: int = param(20, gt=0)  # Adam steps
    lr: float = param(0.02, gt=0)  # Adam step size (body-centred units)
    batch_frames: int = param(16384, gt=0)  # padded frames per optimisation batch
    min_confidence: float = param(0.1, ge=0)  # joints below this confidence do not enter the 2D fit
    w_reproj: float = param(1.0, ge=0)
    w_length: float = param(1.0, ge=0)
    w_smooth: float = param(0.5, ge=0)
    w_length_prior: float = param(0.01, ge=0)
    w_sign_prior: float = param(1.0, ge=0)  # Viterbi: unary weight of the depth-direction prior
    init_quantile: float = param(0.9, gt=0, le=1)  # initial bone length = this quantile of its 2D lengths
    shoulder_quantile: float | None = param(
        0.05, gt=0, le=1
    )  # ... for the shoulder bones (None = init_quantile)
    length_floor: float = param(0.8, ge=0)  # ... but at least this fraction of the average proportion
    length_smooth: float = param(
        1.0, ge=0
    )  # Gaussian sigma (frames) on the 2D before taking length quantiles
    margin: float = param(0.05, ge=0)  # relative margin of the [0, 1] map fitted on train
    rigid_output: bool = True  # rebuild the output from the shared lengths (exactly rigid bones)
    joint_arm: bool = True  # choose upper-arm and forearm depth signs jointly (4-state Viterbi)
    w_torso: float = param(2.0, ge=0)  # Viterbi: cost of a wrist seen over the torso lying behind the chest
    w_space: float = param(
        1.0, ge=0
    )  # ... the same cost, weaker, for wrists not over the torso (signing space)
    w_torque: float = param(1.0, ge=0)  # ... cost of the arm's gravitational torque at the shoulder
    torso_depth: float = param(0.25, ge=0)  # chest surface in front of the shoulder plane (shoulder widths)
    torso_half_width: float = param(0.4, ge=0)  # half the chest/waist breadth: the torso's 2D extent in x
    torso_length: float = param(
        1.3, ge=0
    )  # neck to hips (shoulder widths): the torso's 2D extent below the neck
    # zelinka_kanis (pipeline/lifting/zelinka_kanis.py): their data pipeline's schedule and weights
    zk_iterations: int = param(100, gt=0)  # gradient-descent steps (their demo: 1000)
    zk_lr: float = param(0.1, gt=0)  # plain gradient descent, their normalised units
    zk_w_length: float = param(0.001, ge=0)  # weight of the sum of bone lengths
    zk_w_velocity: float = param(0.1, ge=0)  # weight of the squared 3D joint velocity
