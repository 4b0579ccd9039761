"""Checkpoints: plain dicts of tensors and JSON-like values, loaded with ``weights_only=True``; the models they
hold, built on a device; the device itself.

{format, kind, config, dims, state_dict, epoch, step, metrics, optimizer, extra}. A write goes to a temp file
in the same folder and is renamed over the target, so a crash or Ctrl+C never leaves a torn file. ``dims`` is
everything needed to rebuild the model, the audio feature kind included; a generator checkpoint carries its
sync expert in ``extra["expert"]`` (dims and state_dict), so one file can dub and score.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

from . import audio as A
from .config import DataConfig
from .errors import CheckpointError, ConfigError, InputError
from .models.generator import Generator, GeneratorDims
from .models.lipsync import LipSyncDims, LipSyncExpert
from .models.syncnet import SyncDims, SyncExpert

FORMAT = "synclip-checkpoint-1"
KINDS = ("sync", "generator")
# The real-footage sync expert that ships inside the package (see its MODEL_CARD.md beside it): what scoring
# uses when no checkpoint is given, and what fine-tuning on a user's own footage starts from.
PRETRAINED_EXPERT = Path(__file__).resolve().parent / "pretrained" / "lip_expert.pth"
PRETRAINED_NAME = "pretrained"


def resolve_checkpoint(path: str | Path | None) -> Path:
    """A checkpoint path as given, or the shipped expert for None / "pretrained"."""
    if path is None or str(path) == PRETRAINED_NAME:
        if not PRETRAINED_EXPERT.is_file():
            raise CheckpointError("the pretrained sync expert is missing from this installation",
                                  path=PRETRAINED_EXPERT, fix="reinstall synclip, or pass --checkpoint")
        return PRETRAINED_EXPERT
    return Path(path)


def save_checkpoint(path: str | Path, *, kind: str, config: dict, dims: dict, state_dict: dict, epoch: int = 0,
                    step: int = 0, metrics: dict | None = None, optimizer: dict | None = None,
                    extra: dict | None = None) -> Path:
    if kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, not {kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "kind": kind, "config": config, "dims": dims, "state_dict": state_dict,
            "epoch": epoch, "step": step, "metrics": metrics or {}, "optimizer": optimizer, "extra": extra or {}}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(data, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, kind: str | None = None, map_location: str | torch.device = "cpu") -> dict:
    """Read and check a checkpoint. ``kind``: the stage the caller needs (sync or generator), or None for any.
    ``path`` "pretrained" is the expert that ships with synclip."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path=path,
                              fix="train one with `synclip train` or give the right path")
    from .exported import is_exported, read_export  # onnx / onnxruntime are imported for exported files only

    if is_exported(path):  # .onnx, or a TorchScript .pt/.pth from `synclip export`: inference only
        data = {"format": FORMAT, **read_export(path)}
    else:
        try:
            data = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as e:  # torch's unpickler raises many kinds (KeyError, UnpicklingError, ...) on bad bytes
            raise CheckpointError(f"not a readable checkpoint ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:120]})", path=path,
                                  fix="the file is truncated or of another kind; use a synclip .pth "
                                  "such as checkpoints/best_model.pth") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError("not a synclip checkpoint", path=path,
                              fix="use a .pth written by `synclip train`")
    if kind is not None and data.get("kind") != kind:
        raise CheckpointError(f"this is a {data.get('kind')} checkpoint but a {kind} checkpoint is needed",
                              path=path, fix=_kind_hint(kind))
    return data


def _kind_hint(kind: str) -> str:
    if kind == "sync":
        return "scoring needs the sync expert, e.g. checkpoints/best_model.pth"
    return "dubbing needs a generator checkpoint, e.g. checkpoints/generator/best_model.pth"


def load_state(model: torch.nn.Module, state: dict, path: str | Path | None) -> None:
    """Strict load with a clear error when the weights do not fit the model built from the stored dims."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"weights do not fit the model: {str(e).splitlines()[0][:200]}", path=path,
                              fix="the file may come from another synclip version; retrain") from e


def checkpoint_summary(data: dict[str, Any]) -> str:
    m = data.get("metrics") or {}
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(m.items())
             if isinstance(v, (int, float))]
    return f"{data['kind']} checkpoint, epoch {data.get('epoch')}, " + ", ".join(parts[:6])


def with_feature_kind(dims: dict) -> dict:
    """Stored dims with ``audio_feature`` filled in (and an expert's ``temporal``: files from before the
    choice existed hold the conv). Only checkpoints written before the kind was stored lack it; for those
    (legacy files) it is read off the bin count, the one place that guess remains."""
    dims = dict(dims)
    if "hidden_dim" in dims:  # a sync expert (a generator's dims have no temporal model)
        dims.setdefault("temporal", "conv")
    if "audio_feature" in dims:
        return dims
    legacy = {bins: kind for kind, bins in A.FEATURE_BINS.items()}
    return {**dims, "audio_feature": legacy.get(dims.get("audio_bins"), "mel")}


def expert_from(data: dict, path: str | Path | None, device: torch.device):
    """The sync expert of a loaded checkpoint (its own weights, or those a generator carries), in eval mode:
    a ``LipSyncExpert`` (face mesh, real footage) when its dims name a ``face_input``, else a ``SyncExpert``;
    for an exported file (``synclip.exported``), an adapter with their methods."""
    if "exported" in data:  # an ONNX / TorchScript export: an adapter with the same methods
        return data["exported"].expert(device)
    src = data if data["kind"] == "sync" else data["extra"]["expert"]
    dims = with_feature_kind(src["dims"])
    if "face_input" in dims:
        model = LipSyncExpert(LipSyncDims(**dims)).to(device).eval()
    else:
        model = SyncExpert(SyncDims(**dims)).to(device).eval()
    load_state(model, src["state_dict"], path)
    return model


def generator_from(data: dict, path: str | Path | None, device: torch.device):
    """The generator of a loaded generator checkpoint, in eval mode (of an exported file: its adapter)."""
    if "exported" in data:
        return data["exported"].generator(device)
    model = Generator(GeneratorDims(**with_feature_kind(data["dims"]))).to(device).eval()
    load_state(model, data["state_dict"], path)
    return model


def stored_data_config(data: dict) -> DataConfig:
    """The data settings (face padding, smoothing, detector) a checkpoint's model was trained with."""
    cfg = data.get("config", {}).get("data", {})
    return DataConfig(**{k: v for k, v in cfg.items() if k in DataConfig.__dataclass_fields__})


def load_generator(path: str | Path, device: torch.device) -> tuple[Generator, DataConfig]:
    """A generator checkpoint -> (the generator in eval mode on ``device``, the data settings it was trained
    with, which dubbing crops faces by)."""
    data = load_checkpoint(path, kind="generator")
    return generator_from(data, path, device), stored_data_config(data)


def init_weights(model: SyncExpert | Generator, path: str | Path, kind: str) -> None:
    """Fine-tuning (training.init_checkpoint): start ``model`` from the weights at ``path``, which must be of the
    same kind and dimensions."""
    init = load_checkpoint(path, kind=kind)
    if "exported" in init:
        raise CheckpointError("an exported model holds no trainable weights", path=path,
                              fix="start from the .pth checkpoint it was exported from")
    if with_feature_kind(init["dims"]) != model.dims.to_dict():
        raise CheckpointError(f"its {'expert' if kind == 'sync' else 'generator'} has other dimensions than "
                              f"this config", path=path, fix="use the same model.* settings")
    load_state(model, init["state_dict"], path)


def select_device(name: str | torch.device | None = "auto", setting: str = "training.device") -> torch.device:
    """auto (or None) -> cuda when available else cpu; an explicit cuda without a GPU is an error that names
    the ``setting`` it came from and says what to do."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(name)
    if name.startswith("cuda") and not torch.cuda.is_available():
        how = f"--set {setting}=auto (or cpu)" if "." in setting else f"{setting} cpu, or leave it out"
        raise ConfigError(f"{setting} = {name} but this machine has no usable CUDA GPU "
                          f"(torch {torch.__version__}, cuda available: False)",
                          fix=f"use {how}, or install a CUDA build of torch")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled`` (training.mixed_precision); a no-op on CPU."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
