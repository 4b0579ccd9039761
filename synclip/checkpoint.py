"""Checkpoints: plain dicts of tensors and JSON-like values, loaded with ``weights_only=True``.

{format, kind, config, dims, state_dict, epoch, step, metrics, optimizer, extra}. A write goes to a temp file
in the same folder and is renamed over the target, so a crash or Ctrl+C never leaves a torn file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

FORMAT = "synclip-checkpoint-1"
KINDS = ("sync", "generator")


def save_checkpoint(path: str | Path, *, kind: str, config: dict, dims: dict, state_dict: dict, epoch: int = 0,
                    step: int = 0, metrics: dict | None = None, optimizer: dict | None = None,
                    extra: dict | None = None) -> Path:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
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
    """Read and check a checkpoint. ``kind``: the stage the caller needs (sync or generator), or None for any."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path=path,
                              fix="train one with `synclip train` or give the right path")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch's unpickler raises many kinds (KeyError, UnpicklingError, ...) on bad bytes
        raise CheckpointError(f"not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]})",
                              path=path, fix="the file is truncated or of another kind; use a synclip .pth "
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


def load_state(model: torch.nn.Module, state: dict, path: str | Path) -> None:
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
