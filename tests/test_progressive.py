"""Progressive Transformers baseline: counter, stop rule, FP targets, Gaussian noise, KV cache, losses."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from pipeline.config import ParamsError, parse_section
from pipeline.data.sequences import length_mask
from pipeline.models.backtranslator import Vocab
from pipeline.models.progressive import (
    ProgressiveConfig,
    ProgressiveTransformer,
    future_targets,
    progress_counter,
    pt_losses,
    teacher_forcing,
)

TINY = {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 2, "ffn": 32, "dropout": 0.0}
TEXTS = ["the sun shines today", "rain", "strong wind in the north"]


def _model(seed: int = 0, **overrides: Any) -> ProgressiveTransformer:
    torch.manual_seed(seed)
    kwargs = {**TINY, "vocab_size": 20, "max_frames": 8, "n_features": 3, **overrides}
    return ProgressiveTransformer(ProgressiveConfig(**kwargs)).eval()


def _batch(texts: list[str] = TEXTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Word ids of a word-level Vocab, padded with ``<pad>`` = 0, and the attention mask."""
    vocab = Vocab.build(TEXTS)
    ids = [vocab.encode(t) for t in texts]
    longest = max(len(i) for i in ids)
    input_ids = torch.tensor([i + [0] * (longest - len(i)) for i in ids])
    return input_ids, (input_ids != 0).long()


def _force_counter(
    model: ProgressiveTransformer, monkeypatch: pytest.MonkeyPatch, schedule: torch.Tensor, **fixed: float
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Make the predicted counter of step ``t`` equal ``schedule[:, t]`` (and output channel ``i`` equal
    ``fixed[str(i)]``); returns the lists each step's decoder input and output are recorded into."""
    real = model.decode
    inputs_seen: list[torch.Tensor] = []
    outputs_seen: list[torch.Tensor] = []

    def decode(inputs: torch.Tensor, *args: Any, offset: int = 0, **kwargs: Any) -> torch.Tensor:
        out = real(inputs, *args, offset=offset, **kwargs).clone()
        step = offset + inputs.shape[1] - 1
        out[:, -1, -1] = schedule[:, step]
        for channel, value in fixed.items():
            out[:, -1, int(channel)] = value
        inputs_seen.append(inputs[:, -1].clone())
        outputs_seen.append(out[:, -1].clone())
        return out

    monkeypatch.setattr(model, "decode", decode)
    return inputs_seen, outputs_seen


# 1. counter --------------------------------------------------------------------------------
def test_progress_counter_rises_linearly_to_one() -> None:
    counter = progress_counter(torch.tensor([4, 1, 2]), 5)
    expected = torch.tensor([[0, 1 / 3, 2 / 3, 1, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0]])
    torch.testing.assert_close(counter, expected)


def test_teacher_forcing_shifts_right_with_a_start_frame() -> None:
    frames = torch.tensor([[[1.0], [2.0], [3.0]], [[5.0], [6.0], [0.0]]])  # lengths 3, 2
    inputs, targets = teacher_forcing(frames, torch.tensor([3, 2]))
    # inputs: start frame (0, counter 0), then y_0 .. y_{T-2} with their counters
    torch.testing.assert_close(inputs[0], torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.5]]))
    torch.testing.assert_close(inputs[1, :2], torch.tensor([[0.0, 0.0], [5.0, 0.0]]))
    # targets: y_t with c_t; the last real frame has counter 1
    torch.testing.assert_close(targets[0], torch.tensor([[1.0, 0.0], [2.0, 0.5], [3.0, 1.0]]))
    torch.testing.assert_close(targets[1, :2], torch.tensor([[5.0, 0.0], [6.0, 1.0]]))


# 2. stop rule --------------------------------------------------------------------------------
@pytest.mark.parametrize("use_cache", [True, False])
def test_generation_stops_at_the_first_counter_over_the_threshold(
    monkeypatch: pytest.MonkeyPatch, use_cache: bool
) -> None:
    model = _model()
    threshold = model.config.threshold
    low = threshold - 0.2
    schedule = torch.full((3, 8), low)
    schedule[0, 2] = threshold  # crosses at step 2 -> 3 frames (equality counts)
    schedule[0, 3:] = 0.0  # dropping again after the stop changes nothing
    schedule[1, 1] = -0.5  # never crosses -> max_frames; a negative counter is fed back as 0
    schedule[2, 0] = 1.3  # crosses at once -> 1 frame
    seen, predicted = _force_counter(model, monkeypatch, schedule)
    ids, mask = _batch()
    out = model.generate(ids, mask, use_cache=use_cache)
    assert out.lengths.tolist() == [3, 8, 1]
    assert out.frames.shape == (3, 8, 3) and out.counters.shape == (3, 8)
    assert out.frames[0, 3:].abs().sum() == 0 and out.frames[2, 1:].abs().sum() == 0
    assert out.frames[1].abs().sum() > 0
    torch.testing.assert_close(out.counters[1], schedule[1])
    # the start frame, then each predicted frame fed back: its pose, its counter clamped to [0, 1]
    assert len(seen) == 8
    assert seen[0].abs().sum() == 0
    for t in range(1, 8):
        torch.testing.assert_close(seen[t][:, :3], predicted[t - 1][:, :3])
        torch.testing.assert_close(seen[t][:, 3], schedule[:, t - 1].clamp(0, 1))
    assert [len(a) for a in out.to_list()] == [3, 8, 1]


def test_generation_stops_when_all_sequences_are_done(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    schedule = torch.zeros(3, 8)
    schedule[:, 3] = 1.0
    seen, _ = _force_counter(model, monkeypatch, schedule)
    out = model.generate(*_batch())
    assert out.lengths.tolist() == [4, 4, 4]
    assert out.frames.shape[1] == 4 and len(seen) == 4  # the loop ended early


def test_default_threshold_lies_between_the_last_two_training_counters() -> None:
    config = ProgressiveConfig(**TINY, max_frames=50)
    counter = progress_counter(torch.tensor([50, 2, 37]), 50)
    assert config.threshold == pytest.approx(1 - 0.5 / 49)
    for row, length in zip(counter, (50, 2, 37), strict=True):
        assert (row[: length - 1] < config.threshold).all() and row[length - 1] >= config.threshold
    assert ProgressiveConfig(**TINY, stop_threshold=0.9).threshold == 0.9


# 3. future prediction ----------------------------------------------------------------------
def test_future_targets_concatenate_the_next_frames_padded_with_the_last() -> None:
    frames = torch.arange(12.0).reshape(1, 6, 2)  # frame t = (2t, 2t + 1); frames 4, 5 are padding
    fp = future_targets(frames, torch.tensor([4]), 3)
    assert fp.shape == (1, 6, 6)
    torch.testing.assert_close(fp[0, 0], torch.tensor([0.0, 1, 2, 3, 4, 5]))  # frames 0, 1, 2
    torch.testing.assert_close(fp[0, 1], torch.tensor([2.0, 3, 4, 5, 6, 7]))  # frames 1, 2, 3
    torch.testing.assert_close(fp[0, 2], torch.tensor([4.0, 5, 6, 7, 6, 7]))  # frames 2, 3, 3
    torch.testing.assert_close(fp[0, 3], torch.tensor([6.0, 7, 6, 7, 6, 7]))  # frames 3, 3, 3
    _, targets = teacher_forcing(frames, torch.tensor([4]), future_frames=3)
    assert targets.shape == (1, 6, 2 * 3 + 1)
    torch.testing.assert_close(targets[0, :4, :-1], fp[0, :4])
    torch.testing.assert_close(targets[0, :4, -1], torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]))


def test_fp_model_predicts_n_blocks_and_generates_from_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(future_frames=3)
    assert model.head.out_features == 3 * 3 + 1
    ids, mask = _batch()
    inputs, _ = teacher_forcing(torch.randn(3, 5, 3), torch.tensor([5, 3, 4]), future_frames=3)
    assert model(ids, mask, inputs).shape == (3, 5, 10)
    # first block = 0.25, later blocks = 9: only the first is emitted and fed back
    blocks = {str(i): (0.25 if i < 3 else 9.0) for i in range(9)}
    seen, _ = _force_counter(model, monkeypatch, torch.zeros(3, 8), **blocks)
    out = model.generate(ids, mask, max_frames=4)
    torch.testing.assert_close(out.frames, torch.full((3, 4, 3), 0.25))
    for step_input in seen[1:]:
        torch.testing.assert_close(step_input[:, :3], torch.full((3, 3), 0.25))


# 4. Gaussian noise -------------------------------------------------------------------------
def _tf_inputs(batch: int = 3, t: int = 5) -> torch.Tensor:
    torch.manual_seed(1)
    inputs, _ = teacher_forcing(torch.randn(batch, t, 3), torch.tensor([5, 3, 4]))
    return inputs


def test_noise_only_in_training_and_only_on_the_pose() -> None:
    ids, mask = _batch()
    inputs = _tf_inputs()
    model = _model(noise_rate=2.0)
    model.noise_std.fill_(0.5)
    torch.testing.assert_close(model(ids, mask, inputs), model(ids, mask, inputs), rtol=0, atol=0)
    model.train()
    assert not torch.allclose(model(ids, mask, inputs), model(ids, mask, inputs))
    seen: list[torch.Tensor] = []
    model.frame_embed.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    model(ids, mask, inputs)
    noisy = seen[-1]
    assert torch.equal(noisy[..., -1], inputs[..., -1])  # the counter is never noised
    assert torch.equal(noisy[:, 0], inputs[:, 0])  # nor the start frame
    assert (noisy[:, 1:, :-1] != inputs[:, 1:, :-1]).all()
    # generation is noise-free even when called in training mode (and restores the mode)
    frames = model.generate(ids, mask, max_frames=4).frames
    assert model.training
    torch.testing.assert_close(frames, model.eval().generate(ids, mask, max_frames=4).frames)


def test_no_noise_with_rate_zero_or_zero_std() -> None:
    ids, mask = _batch()
    inputs = _tf_inputs()
    off = _model(noise_rate=0.0).train()
    off.noise_std.fill_(0.5)
    torch.testing.assert_close(off(ids, mask, inputs), off(ids, mask, inputs), rtol=0, atol=0)
    first_epoch = _model(noise_rate=5.0).train()  # noise_std starts at zero
    assert first_epoch.noise_std.abs().sum() == 0
    torch.testing.assert_close(first_epoch(ids, mask, inputs), first_epoch(ids, mask, inputs), rtol=0, atol=0)


def test_noise_std_is_the_std_of_the_epochs_errors() -> None:
    model = _model(noise_rate=1.0, future_frames=2)
    torch.manual_seed(2)
    outputs, targets = torch.randn(3, 4, 7), torch.randn(3, 4, 7)  # F=3, N=2: 3 * 2 + 1 channels
    lengths = torch.tensor([4, 2, 3])
    model.accumulate_errors(outputs[:2], targets[:2], lengths[:2])  # two batches of one epoch
    model.accumulate_errors(outputs[2:], targets[2:], lengths[2:])
    real = torch.cat([(outputs - targets)[i, : int(n), :3] for i, n in enumerate(lengths)])  # first block
    std = model.update_noise_std()
    torch.testing.assert_close(std, real.std(dim=0))
    torch.testing.assert_close(model.noise_std, real.std(dim=0))
    assert model.update_noise_std() is model.noise_std  # nothing accumulated: unchanged
    torch.testing.assert_close(model.noise_std, real.std(dim=0))
    assert "noise_std" in model.state_dict()


# 5. KV cache ---------------------------------------------------------------------------------
def test_cached_generation_equals_full_recomputation() -> None:
    model = _model(seed=3, max_frames=10)
    with torch.no_grad():
        model.head.weight[-1] *= 20  # counters that vary across steps and texts
    ids, mask = _batch()
    free = model.generate(ids, mask, use_cache=False, stop_threshold=float("inf"))
    assert free.lengths.tolist() == [10, 10, 10]
    # a threshold (midway between two predicted counters) at which the texts stop at different steps
    values = free.counters.flatten().sort().values
    expected = None
    for threshold in ((values[1:] + values[:-1]) / 2).tolist():
        over = free.counters >= threshold
        lengths = torch.where(over.any(1), over.float().argmax(1) + 1, torch.tensor(10))
        if len(set(lengths.tolist())) == 3:
            expected = threshold, lengths
            break
    assert expected is not None, "no threshold separates the three texts"
    threshold, lengths = expected
    cached = model.generate(ids, mask, use_cache=True, stop_threshold=threshold)
    full = model.generate(ids, mask, use_cache=False, stop_threshold=threshold)
    assert cached.lengths.tolist() == full.lengths.tolist() == lengths.tolist()
    torch.testing.assert_close(cached.frames, full.frames, rtol=0, atol=1e-5)
    torch.testing.assert_close(cached.counters, full.counters, rtol=0, atol=1e-5)
    t = int(lengths.max())
    # the same frames as without stopping, cut at each length
    cut = free.frames[:, :t] * length_mask(lengths, t)[..., None]
    torch.testing.assert_close(full.frames, cut, rtol=0, atol=1e-5)


def test_padding_of_the_text_does_not_change_generation() -> None:
    model = _model(seed=4)
    ids, mask = _batch()
    alone_ids, alone_mask = _batch([TEXTS[1]])  # the shortest text without padding
    batched = model.generate(ids, mask, max_frames=5, stop_threshold=2.0).frames[1]
    alone = model.generate(alone_ids, alone_mask, max_frames=5, stop_threshold=2.0).frames[0]
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-5)


# 6. causality --------------------------------------------------------------------------------
def test_teacher_forced_output_ignores_later_inputs() -> None:
    model = _model(seed=5)
    ids, mask = _batch()
    inputs = _tf_inputs()
    changed = inputs.clone()
    changed[:, 3:] = torch.randn_like(changed[:, 3:]) * 10
    a, b = model(ids, mask, inputs), model(ids, mask, changed)
    torch.testing.assert_close(a[:, :3], b[:, :3], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 3:], b[:, 3:])


# 7. loss masking -----------------------------------------------------------------------------
def test_losses_on_real_frames_only() -> None:
    # B=2, T=3, F=1 (+ counter); lengths 2 and 1: real frames (0,0), (0,1), (1,0)
    outputs = torch.tensor([[[1.0, 0.5], [2.0, 1.0], [99.0, 99.0]], [[0.0, 0.0], [-50.0, 7.0], [8.0, 8.0]]])
    targets = torch.tensor([[[0.0, 0.0], [2.0, 1.0], [0.0, 0.0]], [[0.5, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    losses = pt_losses(outputs, targets, torch.tensor([2, 1]))
    pose = (1.0**2 + 0.0 + 0.5**2) / 3
    counter = (0.5**2 + 0.0 + 1.0**2) / 3
    assert losses["pose"].item() == pytest.approx(pose)
    assert losses["counter"].item() == pytest.approx(counter)
    assert losses["total"].item() == pytest.approx((pose + counter) / 2)  # MSE over all channels


def test_losses_train_the_model() -> None:
    model = _model(seed=6).train()
    ids, mask = _batch()
    torch.manual_seed(7)
    lengths = torch.tensor([5, 3, 4])
    inputs, targets = teacher_forcing(torch.randn(3, 5, 3), lengths)
    losses = pt_losses(model(ids, mask, inputs), targets, lengths)
    losses["total"].backward()
    assert model.head.weight.grad is not None and model.src_embed.weight.grad.abs().sum() > 0


# 8. config -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"d_model": 30, "heads": 4}, r"progressive\.d_model=30"),
        ({"heads": 0}, r"progressive\.heads=0"),
        ({"future_frames": 0}, r"progressive\.future_frames=0"),
        ({"noise_rate": -1.0}, r"progressive\.noise_rate=-1\.0"),
        ({"stop_threshold": 1.5}, r"progressive\.stop_threshold=1\.5"),
        ({"dropout": 1.0}, r"progressive\.dropout=1\.0"),
        ({"max_frames": 0}, r"progressive\.max_frames=0"),
        ({"vocab_size": 3}, r"progressive\.vocab_size=3"),
    ],
)
def test_config_rejects_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        ProgressiveConfig(**{**TINY, **overrides})


def test_config_from_params_section() -> None:
    config = parse_section({"progressive": {"d_model": 32, "ffn": 64}}, "progressive", ProgressiveConfig)
    assert (
        config.d_model == 32 and config.ffn == 64 and config.future_frames == 1 and config.noise_rate == 0.0
    )
    for key in ("future_frames", "noise_rate"):  # set per variant by train_pt, not params keys
        with pytest.raises(ParamsError, match=rf"unknown key\(s\) progressive\.{key}"):
            parse_section({"progressive": {key: 2}}, "progressive", ProgressiveConfig)
    with pytest.raises(ParamsError, match=r"progressive\.n_layers"):
        parse_section({"progressive": {"n_layers": 2}}, "progressive", ProgressiveConfig)
