"""One frozen dataclass tree for every setting: code defaults < config.yaml < ``--set a.b=v``.

Unknown keys are errors that name the closest valid key; values are checked in ``validate`` with the
allowed range in the message. YAML is read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

log = logging.getLogger(__name__)

INPUT_SIZES = (96, 128, 192, 256)
HEADER = ("# synclip settings (code defaults shown; edit what you need). `synclip config show` prints the effective "
          "values.\n# Override any key on the command line: --set training.batch_size=16\n")
# Keys that older config files may still hold but nothing reads: skipped with a warning, not an error.
RETIRED_KEYS = {
    "training.num_workers": "training samples chunks from clips held in memory, in one process",
    "training.image_every": "the generator's image grid is logged once per validation",
}


@dataclass(frozen=True)
class DataConfig:
    videos_dir: str = "data/videos"
    audios_dir: str = "data/audios"
    processed_dir: str = "data/processed"
    crop_size: int = 256  # stored face crops; serves every model.input_size up to it
    face_pad: float = 0.15  # extra margin around the detected box, as a fraction of its size
    detector: str = "mediapipe"  # mediapipe (BlazeFace, weights in its wheel) or haar (OpenCV fallback)
    min_detection_confidence: float = 0.5
    max_gap_frames: int = 5  # shorter face gaps are interpolated; longer ones stay no-face
    smooth_frames: int = 5  # box smoothing window; 1 = none
    min_seconds: float = 1.0  # shorter clips are rejected: a sync window needs 0.2 s, training many
    max_length_mismatch_s: float = 1.0  # video vs separate audio length beyond this: rejected
    min_face_coverage: float = 0.5  # fraction of frames with a face below which a clip is rejected
    workers: int = 2  # clips processed in parallel


@dataclass(frozen=True)
class ModelConfig:
    input_size: int = 96  # face crop side fed to the models (96/128/192/256)
    hidden_dim: int = 256  # sync expert embedding size
    num_layers: int = 4  # conv stages per encoder; deeper = more capacity, slower on CPU
    base_channels: int = 32  # width of the first conv stage; doubles per stage (capped)
    audio_feature: str = "mel"  # mel (80 bins) or mfcc (13 coefficients)
    temporal: str = "conv"  # sync expert, 5 frames -> window: conv or transformer (benchmarks/temporal.py)
    # What `train --stage generator` trains and `dub` draws with. presenter: speech -> face-mesh mouth shapes ->
    # a renderer of the person's own frames (real footage; starts from the shipped model). unet: the one-stage
    # generator trained against the sync expert (the synthetic demo's).
    generator: str = "presenter"  # presenter (real footage) or unet (one-stage, synthetic demo)


@dataclass(frozen=True)
class TrainingConfig:
    stage: str = "sync"  # sync, generator or both (python src/train.py runs both when asked)
    batch_size: int = 64
    num_epochs: int = 30
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    device: str = "auto"  # auto, cuda or cpu
    seed: int = 0  # fixes the 80/10/10 clip split and the sampling order
    samples_per_epoch: int = 6400  # windows drawn per epoch (clips are sampled at random positions)
    checkpoint_every: int = 10  # epochs between checkpoint_epoch_N.pth files
    mixed_precision: bool = True  # bf16/fp16 autocast on CUDA only
    max_offset_frames: int = 15  # offset search range for scoring and validation curves
    negative_shift_min: int = 5  # off-sync negatives are shifted by at least this many frames
    sync_loss_weight: float = 0.03  # generator: weight of the frozen expert's sync loss
    adversarial_weight: float = 0.0  # generator: weight of the optional quality discriminator
    init_checkpoint: str = ""  # fine-tuning: start this stage from these weights (same kind and dims)
    presenter_minutes: float = 20.0  # presenter: wall-clock budget of its renderer's fine-tuning
    presenter_steps: int = 1500  # presenter: at most this many steps of 8 frames (whichever comes first)
    presenter_augment: bool = False  # presenter: jitter the training frames (helped one 20-s clip, not the other)
    presenter_detail_weight: float = 1.0  # presenter: weight of the term against a blurred mouth (render.detail_loss)


@dataclass(frozen=True)
class PathsConfig:
    checkpoints_dir: str = "checkpoints"
    logs_dir: str = "logs"
    outputs_dir: str = "outputs"


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> "Config":
        """``cfg.replace(**{"training.batch_size": 8})``: a copy with dotted keys changed (validated)."""
        return from_dict(_merge(self.to_dict(), _nest(overrides)))


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _coerce(key: str, value: Any, kind: Any) -> Any:
    """Check one leaf's type; ints are accepted where floats are expected."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, kind)):
        raise ConfigError(f"{key} must be a number ({kind.__name__}), got {value!r}")
    if kind is str and not isinstance(value, str):
        return str(value)
    return value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if dotted in RETIRED_KEYS:
            log.warning("config key %s is no longer used (%s); remove it", dotted, RETIRED_KEYS[dotted])
            continue
        if key not in fields:
            valid = [f"{prefix}{name}" for name in fields]
            close = difflib.get_close_matches(dotted, valid, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]}?" if close else f"valid keys: {', '.join(valid)}"
            raise ConfigError(f"unknown config key {dotted!r}", fix=hint)
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            kwargs[key] = _build(kind, value, f"{dotted}.")
        else:
            kwargs[key] = _coerce(dotted, value, kind)
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> Config:
    cfg = _build(Config, data or {}, "")
    validate(cfg)
    return cfg


def _check(ok: bool, key: str, allowed: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} = {value!r} is out of range", fix=f"allowed: {allowed}")


def validate(cfg: Config) -> None:
    """Every range check lives here, so each message names its key and what is allowed."""
    d, m, t = cfg.data, cfg.model, cfg.training
    _check(d.crop_size in INPUT_SIZES, "data.crop_size", " ".join(map(str, INPUT_SIZES)), d.crop_size)
    _check(0.0 <= d.face_pad <= 1.0, "data.face_pad", "0 to 1", d.face_pad)
    _check(d.detector in ("mediapipe", "haar"), "data.detector", "mediapipe or haar", d.detector)
    _check(0.0 < d.min_detection_confidence < 1.0, "data.min_detection_confidence", "0 to 1", d.min_detection_confidence)
    _check(d.max_gap_frames >= 0, "data.max_gap_frames", ">= 0", d.max_gap_frames)
    _check(d.smooth_frames >= 1, "data.smooth_frames", ">= 1", d.smooth_frames)
    _check(d.min_seconds >= 0.2, "data.min_seconds", ">= 0.2 (one sync window)", d.min_seconds)
    _check(d.max_length_mismatch_s >= 0, "data.max_length_mismatch_s", ">= 0", d.max_length_mismatch_s)
    _check(0.0 <= d.min_face_coverage <= 1.0, "data.min_face_coverage", "0 to 1", d.min_face_coverage)
    _check(d.workers >= 1, "data.workers", ">= 1", d.workers)
    _check(m.input_size in INPUT_SIZES, "model.input_size", " ".join(map(str, INPUT_SIZES)), m.input_size)
    _check(m.input_size <= d.crop_size, "model.input_size", f"<= data.crop_size ({d.crop_size})", m.input_size)
    _check(8 <= m.hidden_dim <= 2048, "model.hidden_dim", "8 to 2048", m.hidden_dim)
    _check(2 <= m.num_layers <= 8, "model.num_layers", "2 to 8", m.num_layers)
    _check(4 <= m.base_channels <= 256, "model.base_channels", "4 to 256", m.base_channels)
    _check(m.audio_feature in ("mel", "mfcc"), "model.audio_feature", "mel or mfcc", m.audio_feature)
    _check(m.temporal in ("conv", "transformer"), "model.temporal", "conv or transformer", m.temporal)
    _check(m.generator in ("presenter", "unet"), "model.generator", "presenter or unet", m.generator)
    _check(t.stage in ("sync", "generator", "both"), "training.stage", "sync, generator or both", t.stage)
    _check(t.batch_size >= 2, "training.batch_size", ">= 2", t.batch_size)
    _check(t.num_epochs >= 1, "training.num_epochs", ">= 1", t.num_epochs)
    _check(0 < t.learning_rate < 1, "training.learning_rate", "0 to 1", t.learning_rate)
    _check(t.device in ("auto", "cuda", "cpu") or t.device.startswith("cuda:"), "training.device",
           "auto, cuda, cuda:N or cpu", t.device)
    _check(t.samples_per_epoch >= t.batch_size, "training.samples_per_epoch", ">= training.batch_size",
           t.samples_per_epoch)
    _check(t.checkpoint_every >= 1, "training.checkpoint_every", ">= 1", t.checkpoint_every)
    _check(1 <= t.max_offset_frames <= 50, "training.max_offset_frames", "1 to 50", t.max_offset_frames)
    _check(1 <= t.negative_shift_min <= t.max_offset_frames, "training.negative_shift_min",
           "1 to training.max_offset_frames", t.negative_shift_min)
    _check(t.sync_loss_weight >= 0, "training.sync_loss_weight", ">= 0", t.sync_loss_weight)
    _check(t.adversarial_weight >= 0, "training.adversarial_weight", ">= 0", t.adversarial_weight)
    _check(t.presenter_detail_weight >= 0, "training.presenter_detail_weight", ">= 0", t.presenter_detail_weight)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["training.batch_size=8"]`` -> ``{"training.batch_size": 8}``; values are YAML scalars."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r} is not key=value", fix="write it like training.batch_size=8")
        key, raw = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file (if given and present), then ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError("config file not found", path=path, fix="run `synclip config show > config.yaml`")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"not valid YAML: {e}", path=path) from e
    data = _merge(data, _nest(parse_overrides(overrides or [])))
    try:
        return from_dict(data)
    except ConfigError as e:
        if path is not None and e.path is None:
            raise ConfigError(e.reason, path=path, fix=e.fix) from e
        raise


def _field_comments(cls: type) -> dict[str, str]:
    """The ``# reason`` comment beside each field in this file, for ``config show``."""
    import inspect

    comments = {}
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if ":" in stripped and "#" in stripped and not stripped.startswith("#"):
            name = stripped.split(":", 1)[0].strip()
            comments[name] = stripped.split("#", 1)[1].strip()
    return comments


def dump_yaml(cfg: Config) -> str:
    """The whole tree as commented YAML (what ``synclip config show`` prints, and config.yaml holds)."""
    lines = [HEADER.rstrip("\n")]
    for section in dataclasses.fields(cfg):
        sub = getattr(cfg, section.name)
        comments = _field_comments(type(sub))
        lines.append(f"{section.name}:")
        for f in dataclasses.fields(sub):
            value = yaml.safe_dump(getattr(sub, f.name), default_flow_style=True).strip()
            value = value.removesuffix("\n...").removesuffix("...").strip()
            note = f"  # {comments[f.name]}" if f.name in comments else ""
            lines.append(f"  {f.name}: {value}{note}")
    return "\n".join(lines) + "\n"


def setup_directories(cfg: Config, root: str | Path = ".") -> list[Path]:
    """Create the working folders (idempotent); returns them in a fixed order."""
    root = Path(root)
    dirs = [cfg.data.videos_dir, cfg.data.audios_dir, cfg.data.processed_dir,
            cfg.paths.checkpoints_dir, cfg.paths.logs_dir, cfg.paths.outputs_dir]
    out = []
    for d in dirs:
        path = root / d
        path.mkdir(parents=True, exist_ok=True)
        out.append(path)
    return out
