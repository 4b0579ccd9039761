"""One training loop for both stages (sync expert, generator): epochs, validation, TensorBoard,
checkpoints (best, every N epochs, last), Ctrl+C -> a resumable checkpoint, ``resume``, a final test.

A *stage* object owns its model, optimiser and data; this module only drives it. Library code never prints:
console lines go through ``report`` (the CLI passes ``print``) and progress bars appear when ``progress``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
from tqdm import tqdm

from .checkpoint import load_checkpoint, load_state, save_checkpoint
from .config import Config
from .errors import ConfigError

log = logging.getLogger(__name__)

Report = Callable[[str], None]


def select_device(name: str) -> torch.device:
    """auto -> cuda when available else cpu; an explicit cuda without a GPU is an error that says what to do."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"training.device = {name} but this machine has no usable CUDA GPU "
                          f"(torch {torch.__version__}, cuda available: False)",
                          fix="use --set training.device=auto (or cpu), or install a CUDA build of torch")
    return torch.device(name)


class Stage(Protocol):
    kind: str  # "sync" or "generator"
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    best_key: str  # validation metric that picks best_model.pth (lower is better)
    chance_key: str  # training metric compared with chance_level to tell learning from noise
    chance_level: float

    def train_step(self) -> dict[str, float]: ...
    def evaluate(self, part: str) -> dict[str, float]: ...
    def dims(self) -> dict: ...
    def extra_state(self) -> dict: ...
    def log_extras(self, writer, step: int, part: str) -> None: ...


@dataclass
class FitResult:
    best_path: Path | None
    last_path: Path
    epochs_done: int
    interrupted: bool
    history: list[dict] = field(default_factory=list)
    test_metrics: dict = field(default_factory=dict)
    learned: bool = True
    left_chance_epoch: int | None = None


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))


def fit(stage: Stage, cfg: Config, out_dir: Path, log_dir: Path, *, resume: bool = False,
        report: Report = lambda s: None, progress: bool = False) -> FitResult:
    """Train ``stage`` for cfg.training.num_epochs epochs of samples_per_epoch samples each."""
    t = cfg.training
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pth", out_dir / "best_model.pth"
    start_epoch, step, best, history = 0, 0, math.inf, []
    if resume:
        ck = load_checkpoint(last_path, kind=stage.kind)
        load_state(stage.model, ck["state_dict"], last_path)
        if ck.get("optimizer"):
            stage.optimizer.load_state_dict(ck["optimizer"])
        start_epoch, step = ck["epoch"], ck["step"]
        best = ck["extra"].get("best", math.inf)
        history = json.loads(ck["extra"].get("history", "[]"))
        report(f"Resumed from {last_path} at epoch {start_epoch} (step {step})")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    console = report
    log_file = log_dir / "train.log"

    def report(line: str) -> None:  # noqa: F811 - every console line also goes to logs/<stage>/train.log
        console(line)
        with open(log_file, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    steps_per_epoch = max(1, t.samples_per_epoch // t.batch_size)
    result = FitResult(best_path if best_path.exists() else None, last_path, start_epoch, False, history)

    def save(path: Path, epoch: int, metrics: dict) -> None:
        extra = {"best": best, "history": json.dumps(history), **stage.extra_state()}
        save_checkpoint(path, kind=stage.kind, config=cfg.to_dict(), dims=stage.dims(),
                        state_dict=stage.model.state_dict(), epoch=epoch, step=step, metrics=metrics,
                        optimizer=stage.optimizer.state_dict(), extra=extra)

    epoch = start_epoch
    try:
        for epoch in range(start_epoch, t.num_epochs):
            stage.model.train()
            sums: dict[str, float] = {}
            t0 = time.perf_counter()
            bar = tqdm(range(steps_per_epoch), desc=f"Epoch {epoch + 1}/{t.num_epochs}", disable=not progress,
                       leave=False, dynamic_ncols=True)
            for _ in bar:
                stats = stage.train_step()
                step += 1
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                    writer.add_scalar(f"train/{k}", v, step)
                bar.set_postfix(loss=f"{stats['loss']:.3f}", **({"acc": f"{stats['acc']:.3f}"} if "acc" in stats
                                                              else {}))
            train_m = {k: v / steps_per_epoch for k, v in sums.items()}
            writer.add_scalar("train/learning_rate", stage.optimizer.param_groups[0]["lr"], step)
            val_m = stage.evaluate("val")
            for k, v in val_m.items():
                writer.add_scalar(f"val/{k}", v, step)
            stage.log_extras(writer, step, "val")
            secs = time.perf_counter() - t0
            history.append({"epoch": epoch + 1, "train": train_m, "val": val_m, "seconds": round(secs, 1)})
            report(f"Epoch {epoch + 1}/{t.num_epochs} ({secs:.0f}s, {steps_per_epoch * t.batch_size / secs:.0f} "
                   f"samples/s): train {_fmt(train_m)} | val {_fmt(val_m)}")
            if result.left_chance_epoch is None and train_m.get(stage.chance_key, 9.9) < stage.chance_level * 0.9:
                result.left_chance_epoch = epoch + 1
                report(f"Training loss left the chance level ({stage.chance_level:.2f}) at epoch {epoch + 1}")
            if val_m[stage.best_key] < best:
                best = val_m[stage.best_key]
                save(best_path, epoch + 1, val_m)
                result.best_path = best_path
                report(f"  new best {stage.best_key}={best:.4f} -> {best_path}")
            if (epoch + 1) % t.checkpoint_every == 0:
                save(out_dir / f"checkpoint_epoch_{epoch + 1}.pth", epoch + 1, val_m)
            save(last_path, epoch + 1, val_m)
            result.epochs_done = epoch + 1
    except KeyboardInterrupt:
        save(last_path, epoch, history[-1]["val"] if history else {})
        result.interrupted = True
        report(f"Interrupted: saved {last_path}; continue with --resume")
        writer.close()
        return result
    writer.flush()
    result.history = history
    if result.left_chance_epoch is None:
        result.learned = False
        msg = (f"WARNING: training stayed at the chance level ({stage.chance_key} never fell below "
               f"{stage.chance_level * 0.9:.3f}); this model has learnt nothing useful. Try more epochs, more data "
               f"or a lower learning rate.")
        report(msg)
    if result.best_path is not None:
        ck = load_checkpoint(result.best_path, kind=stage.kind)
        load_state(stage.model, ck["state_dict"], result.best_path)
        result.test_metrics = stage.evaluate("test")
        for k, v in result.test_metrics.items():
            writer.add_scalar(f"test/{k}", v, step)
        report(f"Test set ({result.best_path.name}): {_fmt(result.test_metrics)}")
        (out_dir / f"{stage.kind}_metrics.json").write_text(json.dumps(
            {"test": result.test_metrics, "history": history, "learned": result.learned,
             "left_chance_epoch": result.left_chance_epoch}, indent=1), encoding="utf-8")
    writer.close()
    return result


def stage_dir(cfg: Config, kind: str) -> Path:
    """The sync expert lives at checkpoints/ (the seed's checkpoints/best_model.pth); the generator below it."""
    root = Path(cfg.paths.checkpoints_dir)
    return root if kind == "sync" else root / "generator"


def run_stage(cfg: Config, kind: str, *, resume: bool = False, report: Report = lambda s: None,
              progress: bool = False, split: dict | None = None) -> FitResult:
    """Load the prepared clips, split them (saved as split.json beside the checkpoints), train one stage.

    ``split``: a ready split (as make_split returns, e.g. a custom time split) instead of the default."""
    from .datasets import load_clips, make_split, save_split
    from .models.syncnet import count_parameters

    device = select_device(cfg.training.device)
    out = stage_dir(cfg, kind)
    out.mkdir(parents=True, exist_ok=True)
    split_path = out / "split.json"
    bar = tqdm(desc="Loading clips", unit="clip", disable=not progress, leave=False)
    clips = load_clips(cfg.data.processed_dir, cfg.model.input_size, cfg.model.audio_feature,
                       progress=lambda k, n: (setattr(bar, "total", n), bar.update(1)))
    bar.close()
    if split is None and resume and split_path.is_file():
        split = json.loads(split_path.read_text(encoding="utf-8"))
    elif split is None:
        split = make_split(list(clips), cfg.training.seed)
    save_split(split, split_path)
    n = {p: len(split[p]) for p in ("train", "val", "test")}
    how = "clips" if split["by"] == "clip" else "time pieces (fewer than 10 clips: each clip cut 80/10/10 in time)"
    report(f"Loaded {len(clips)} clips from {cfg.data.processed_dir}; split {n['train']}/{n['val']}/{n['test']} "
           f"{how}; device {device}")
    if kind == "sync":
        from .sync_stage import SyncStage

        stage = SyncStage(cfg, clips, split, device)
    else:
        from .gen_stage import GeneratorStage

        stage = GeneratorStage(cfg, clips, split, device)
    report(f"Model parameters: {count_parameters(stage.model):,} ({kind})")
    log_dir = Path(cfg.paths.logs_dir) / kind
    return fit(stage, cfg, out, log_dir, resume=resume, report=report, progress=progress)
