"""Inference and the translate CLI: .npy, .pose, GIF, MP4, index.json (values), errors, truncation."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_MAX_FRAMES, TINY_MAX_TOKENS, make_tiny_student, read_pose

from pipeline.config import ParamsError, resolve_device
from pipeline.data import poseio
from pipeline.data.skeleton import FACE_BONES, MANUAL_BONES
from pipeline.data.transform import UnitRange
from pipeline.evaluation import render
from pipeline.inference import InputError, Translator, load_student
from pipeline.tools import translate

SENTENCES = ["am dienstag regnet es im norden", "morgen scheint im sueden die sonne"]


def _frames(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return iio.imread(path, index=None)


def test_translator_inverse_map_batching_and_device(tiny_student: Path) -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ParamsError, match="device='tpu9' is not a device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        message = "device='cuda': CUDA is not available on this machine (use cpu or auto)"
        with pytest.raises(ParamsError, match=re.escape(message)):
            resolve_device("cuda")
    tr = Translator.load(tiny_student, device="cpu", batch_size=1)
    assert tr.max_tokens == TINY_MAX_TOKENS and tr.fps == 25.0 and len(tr.joints) == 50
    unit = tr.translate_unit(SENTENCES)
    body = tr.translate(SENTENCES)
    transform = UnitRange.load(tiny_student / "lift_transform.json")
    for u, b in zip(unit, body, strict=True):
        assert b.dtype == np.float32 and b.shape == u.shape and b.shape[1:] == (50, 3)
        assert 1 <= len(b) <= TINY_MAX_FRAMES
        assert ((u >= 0) & (u <= 1)).all()  # the VAE's sigmoid output
        np.testing.assert_allclose(
            b, u * (np.array(transform.high) - transform.low) + transform.low, atol=1e-5
        )
    batched = Translator.load(tiny_student, device="cpu", batch_size=32).translate(SENTENCES)
    for a, b in zip(body, batched, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)  # padding in a batch does not change the output
    with pytest.raises(InputError, match="empty sentence"):
        tr.translate(["ok", "  "])
    with pytest.raises(InputError, match="no input sentence"):
        tr.translate([])


def test_cli_writes_npy_pose_gif_mp4_and_index(tiny_student: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert translate.main([*SENTENCES, "--out", str(out), "--model", str(tiny_student), "--size", "160"]) == 0
    index = json.loads((out / "index.json").read_text())
    assert index["fps"] == 25.0 and len(index["joints"]) == 50 and index["device"] == "cpu"
    expected = Translator.load(tiny_student, device="cpu").translate(SENTENCES)
    assert [it["sentence"] for it in index["items"]] == SENTENCES
    for k, (item, ref) in enumerate(zip(index["items"], expected, strict=True), start=1):
        files = item["files"]
        assert files["npy"].startswith(f"{k:03d}_") and not item["truncated"]
        assert files["npy"] == f"{k:03d}_{translate.slug(item['sentence'])}.npy"
        poses = np.load(out / files["npy"])
        assert poses.dtype == np.float32 and poses.shape == (item["frames"], 50, 3)
        np.testing.assert_allclose(poses, ref, atol=1e-6)
        data, fps = read_pose(out / files["pose"], item["pose_pixels"])
        assert data.shape == poses.shape and fps == 25.0
        np.testing.assert_allclose(data, poses, atol=1e-5)
        gif, mp4 = _frames(out / files["gif"]), _frames(out / files["mp4"])
        assert gif.shape[:3] == (item["frames"], 160, 160) and mp4.shape[:3] == (item["frames"], 160, 160)
        assert (gif[0] != 255).any(axis=-1).sum() > 100  # a skeleton is drawn
        assert np.abs(gif[0].astype(int) - mp4[0].astype(int)).mean() < 12  # same picture (lossy codec)
    assert translate.slug("Grüße aus Köln, 12 Grad!") == "gruesse_aus_koeln_12_grad"


def test_pose_file_header(tiny_student: Path, tmp_path: Path) -> None:
    from pose_format import Pose

    seq = np.random.default_rng(0).normal(size=(7, 120, 3)).astype(np.float32)
    poseio.write_pose(tmp_path / "a.pose", seq, fps=25)  # the positional call of older callers
    pose = Pose.read((tmp_path / "a.pose").read_bytes())
    names = [c.name for c in pose.header.components]
    assert names == [
        "pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d"
    ]  # fmt: skip
    assert [len(c.points) for c in pose.header.components] == [25, 70, 21, 21]
    assert pose.header.components[0].points[:2] == ["Nose", "Neck"]
    assert len(pose.header.components[2].limbs) == 20 and pose.body.data.shape == (7, 1, 137, 3)
    pixels = poseio.fit_pixels(seq)
    np.testing.assert_allclose(read_pose(tmp_path / "a.pose", pixels.as_dict())[0], seq, atol=1e-5)
    with pytest.raises(ValueError, match="expected the 50-joint"):
        poseio.write_pose(tmp_path / "b.pose", seq[:, :10])


def test_input_file_blank_lines_and_no_video(tiny_student: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text(f"{SENTENCES[0]}\n\n   \n{SENTENCES[1]}\n", encoding="utf-8")
    out = tmp_path / "out"
    assert (
        translate.main(["--input", str(src), "--out", str(out), "--model", str(tiny_student), "--no-video"])
        == 0
    )
    index = json.loads((out / "index.json").read_text())
    assert [it["sentence"] for it in index["items"]] == SENTENCES
    assert set(index["items"][1]["files"]) == {"npy", "pose"} and not list(out.glob("*.gif"))


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "no input: give a sentence or --input FILE"),
        (["   "], 2, "empty sentence"),
        (["--input", "EMPTY"], 2, "the file has no sentence"),
        (["--input", "MISSING"], 2, "no such file"),
        (["hallo", "--model", "NOMODEL"], 2, "model directory"),
        (["hallo", "--size", "100"], 2, "multiple of 16"),
        (["hallo", "--device", "tpu9"], 2, "device='tpu9' is not a device"),
        (["hallo", "--batch-size", "0"], 2, "--batch-size 0: expected a positive integer"),
    ],
)
def test_cli_errors(
    tiny_student: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    args: list[str],
    code: int,
    message: str,
) -> None:
    (tmp_path / "empty.txt").write_text("\n  \n")
    subst = {"EMPTY": str(tmp_path / "empty.txt"), "MISSING": str(tmp_path / "nope.txt")}
    subst["NOMODEL"] = str(tmp_path / "no_model")
    args = [subst.get(a, a) for a in args]
    if "--model" not in args:
        args += ["--model", str(tiny_student)]
    assert translate.main([*args, "--out", str(tmp_path / "out")]) == code
    err = capsys.readouterr().err
    assert err.startswith("translate: error:") and message in err
    assert not (tmp_path / "out" / "index.json").exists()


def test_broken_model_dir_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "m").mkdir()
    assert translate.main(["hallo", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o")]) == 2
    assert "not a saved student, missing config.json" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        load_student(tmp_path / "absent")


def test_long_sentence_is_truncated_with_warning(
    tiny_student: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    long = " ".join(["am"] * 40)  # 40 word tokens + [CLS] + [SEP] > 24 positions
    short = " ".join(["am"] * (TINY_MAX_TOKENS - 2))  # exactly what truncation keeps
    with caplog.at_level(logging.WARNING, logger="pipeline.inference"):
        assert (
            translate.main([long, "--out", str(tmp_path / "o"), "--model", str(tiny_student), "--no-video"])
            == 0
        )
    assert "sentence 0 has 42 tokens > the model's limit 24" in caplog.text
    index = json.loads((tmp_path / "o/index.json").read_text())
    assert index["items"][0]["truncated"] is True
    got = np.load(tmp_path / "o" / index["items"][0]["files"]["npy"])
    np.testing.assert_allclose(got, Translator.load(tiny_student, "cpu").translate([short])[0], atol=1e-6)


def test_render_bones_view_and_face(tmp_path: Path) -> None:
    assert len(render.bones(50)) == len(MANUAL_BONES) == 49
    assert len(render.bones(120)) == 49 + len(FACE_BONES) and render.bones(4) == []
    seq = np.zeros((3, 50, 3))
    seq[:, :, 0] = np.linspace(-1, 1, 50)  # x spans [-1, 1], y spans [0, 0.5]
    seq[:, :, 1] = np.linspace(0, 0.5, 50)
    view = render.View.fit(seq, width=200, height=200, margin=0.1)
    px = view.pixels(seq[0, :, :2])
    np.testing.assert_allclose(px[[0, -1], 0], [20, 180], atol=1e-6)  # width-limited, equal x/y scale
    np.testing.assert_allclose(px[-1, 1] - px[0, 1], 40, atol=1e-6)
    frames = render.render_frames(seq, view)
    assert frames.shape == (3, 200, 200, 3) and frames.dtype == np.uint8
    x, y = px[1].round().astype(int)  # the neck joint is dotted
    assert (frames[0, y - 1 : y + 2, x - 1 : x + 2] < 100).all(axis=-1).any()


def test_face_layout_renders_and_exports(tmp_path: Path) -> None:
    d = make_tiny_student(tmp_path, n_joints=120, seed=1)
    out = tmp_path / "o"
    assert translate.main(["am tag regen", "--out", str(out), "--model", str(d), "--size", "160"]) == 0
    item = json.loads((out / "index.json").read_text())["items"][0]
    assert np.load(out / item["files"]["npy"]).shape == (item["frames"], 120, 3)
    assert read_pose(out / item["files"]["pose"])[0].shape == (item["frames"], 120, 3)
    back = read_pose(out / item["files"]["pose"], item["pose_pixels"])[0]
    np.testing.assert_allclose(back, np.load(out / item["files"]["npy"]), atol=1e-5)
    assert _frames(out / item["files"]["gif"]).shape[0] == item["frames"]


@pytest.mark.slow
def test_module_cli_runs_in_a_subprocess(tiny_student: Path, tmp_path: Path) -> None:
    """``python -m pipeline.tools.translate`` is the documented entry point: same outputs as main()."""
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "pipeline.tools.translate", SENTENCES[0], "--out", str(out)]
    cmd += ["--model", str(tiny_student), "--device", "cpu", "--no-video"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    item = json.loads((out / "index.json").read_text())["items"][0]
    expected = Translator.load(tiny_student, "cpu").translate([SENTENCES[0]])[0]
    np.testing.assert_allclose(np.load(out / item["files"]["npy"]), expected, atol=1e-5)
    bad = subprocess.run(
        [*cmd[:3], "--out", str(tmp_path / "x"), "--model", str(tiny_student)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "no input: give a sentence or --input FILE" in bad.stderr


# -- issue 15: every failure one line, exit 2, no traceback; a reused --out is clean ----------------
def _broken_copy(src: Path, dst: Path, damage: str) -> Path:
    shutil.copytree(src, dst)
    if damage == "truncated_weights":
        data = (dst / "model.pt").read_bytes()
        (dst / "model.pt").write_bytes(data[: len(data) // 3])
    elif damage == "no_tokenizer":
        shutil.rmtree(dst / "tokenizer")
    elif damage == "no_pretrained_encoder":  # the encoder's weights come from a local dir that is gone
        config = json.loads((dst / "config.json").read_text())
        config["encoder_reference"]["path"] = str(dst.parent / "gone_bert")
        (dst / "config.json").write_text(json.dumps(config))
    return dst


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated_weights", "model.pt: unreadable weights"),
        ("no_tokenizer", "missing tokenizer/"),
        ("no_pretrained_encoder", "gone_bert), which does not exist"),
    ],
)
def test_broken_model_is_one_line(
    tiny_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture, damage: str, message: str
) -> None:
    model = _broken_copy(tiny_student, tmp_path / "m", damage)
    assert translate.main(["hallo", "--model", str(model), "--out", str(tmp_path / "o"), "--no-video"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("translate: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("kind", ["file", "below_a_file"])
def test_bad_out_is_refused_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if kind == "file" else tmp_path / "f" / "sub"

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model must not be loaded for a bad --out")

    monkeypatch.setattr("pipeline.inference.Translator.load", no_load)
    model = tmp_path / "m"
    model.mkdir()
    assert translate.main(["hallo", "--model", str(model), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    expected = "exists and is not a directory" if kind == "file" else "not a writable directory"
    assert err.startswith(f"translate: error: --out {out}") and expected in err


def test_reused_out_holds_only_this_run(tiny_student: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ["--out", str(out), "--model", str(tiny_student), "--no-video"]
    assert translate.main([*SENTENCES, *args]) == 0
    (out / "notes.txt").write_text("mine")  # not ours: kept
    assert translate.main([SENTENCES[0], *args]) == 0
    index = json.loads((out / "index.json").read_text())
    assert [it["sentence"] for it in index["items"]] == [SENTENCES[0]]
    written = {f for it in index["items"] for f in it["files"].values()}
    assert {p.name for p in out.iterdir()} == written | {"index.json", "notes.txt"}


def test_unknown_tokens_warned(tiny_student: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "o"
    with caplog.at_level("WARNING"):
        code = translate.main(["🌧️🌧️ ☀️", "--out", str(out), "--model", str(tiny_student), "--no-video"])
    assert code == 0
    assert "unknown to the tokenizer" in caplog.text
    index = json.loads((out / "index.json").read_text())
    assert index["items"][0]["unknown_tokens"] >= 1
