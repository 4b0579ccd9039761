"""One training loop for both stages (sync expert, generator): epochs, validation, TensorBoard,
checkpoints (best, every N epochs, last), Ctrl+C -> a resumable checkpoint, ``resume``, a final test.

A *stage* object owns its model, optimiser and data; this module only drives it. Library code never prints:
console lines go through ``report`` (the CLI passes ``print``) and progress bars appear when ``progress``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
from tqdm import tqdm

from .checkpoint import load_checkpoint, load_state, save_checkpoint, select_device
from .config import Config
from .distributed import World, setup

Report = Callable[[str], None]


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


class _Run:
    """The state of one fit(): counters, best value, history, TensorBoard writer, console + file report."""

    def __init__(self, stage: Stage, cfg: Config, out_dir: Path, log_dir: Path, report: Report, progress: bool,
                 world: World):
        from torch.utils.tensorboard import SummaryWriter

        self.stage, self.cfg, self.out_dir, self.world = stage, cfg, out_dir, world
        self.progress = progress and world.main
        self.last_path, self.best_path = out_dir / "last.pth", out_dir / "best_model.pth"
        self.start_epoch, self.step, self.best, self.history = 0, 0, math.inf, []
        # Logs, metrics and checkpoints come from rank 0 only (the others train in step with it).
        self.writer = SummaryWriter(log_dir=str(log_dir)) if world.main else _NoWriter()
        self.log_file = log_dir / "train.log"
        self.console = report
        self.result = FitResult(self.best_path if self.best_path.exists() else None, self.last_path, 0, False)

    def report(self, line: str) -> None:
        """Every console line also goes to logs/<stage>/train.log (rank 0 only)."""
        if not self.world.main:
            return
        self.console(line)
        with open(self.log_file, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def resume(self) -> None:
        ck = load_checkpoint(self.last_path, kind=self.stage.kind)
        load_state(self.stage.model, ck["state_dict"], self.last_path)
        if ck.get("optimizer"):
            self.stage.optimizer.load_state_dict(ck["optimizer"])
        self.start_epoch, self.step = ck["epoch"], ck["step"]
        self.best = ck["extra"].get("best", math.inf)
        self.history = json.loads(ck["extra"].get("history", "[]"))
        self.result.epochs_done = self.start_epoch
        self.report(f"Resumed from {self.last_path} at epoch {self.start_epoch} (step {self.step})")

    def save(self, path: Path, epoch: int, metrics: dict) -> None:
        extra = {"best": self.best, "history": json.dumps(self.history), **self.stage.extra_state()}
        save_checkpoint(path, kind=self.stage.kind, config=self.cfg.to_dict(), dims=self.stage.dims(),
                        state_dict=self.stage.model.state_dict(), epoch=epoch, step=self.step, metrics=metrics,
                        optimizer=self.stage.optimizer.state_dict(), extra=extra)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch of steps; returns the mean of each training statistic."""
        t = self.cfg.training
        steps = max(1, t.samples_per_epoch // t.batch_size)
        self.stage.model.train()
        sums: dict[str, float] = {}
        bar = tqdm(range(steps), desc=f"Epoch {epoch + 1}/{t.num_epochs}", disable=not self.progress, leave=False,
                   dynamic_ncols=True)
        for _ in bar:
            stats = self.world.mean(self.stage.train_step())  # the whole batch's figures, on every rank
            self.step += 1
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
                self.writer.add_scalar(f"train/{k}", v, self.step)
            shown = {k: f"{stats[k]:.3f}" for k in ("loss", "acc") if k in stats}
            bar.set_postfix(**shown)
        self.writer.add_scalar("train/learning_rate", self.stage.optimizer.param_groups[0]["lr"], self.step)
        return {k: v / steps for k, v in sums.items()}

    def end_epoch(self, epoch: int, train_m: dict, seconds: float) -> None:
        """Validate, log, keep the best, write the periodic and the last checkpoint."""
        stage, t, n = self.stage, self.cfg.training, epoch + 1
        if not self.world.main:  # rank 0 validates and saves while the others wait
            self.result.epochs_done = n
            self.world.barrier()
            return
        val_m = stage.evaluate("val")
        for k, v in val_m.items():
            self.writer.add_scalar(f"val/{k}", v, self.step)
        stage.log_extras(self.writer, self.step, "val")
        self.history.append({"epoch": n, "train": train_m, "val": val_m, "seconds": round(seconds, 1)})
        rate = max(1, t.samples_per_epoch // t.batch_size) * t.batch_size / seconds
        self.report(f"Epoch {n}/{t.num_epochs} ({seconds:.0f}s, {rate:.0f} samples/s): train {_fmt(train_m)} | "
                    f"val {_fmt(val_m)}")
        if self.result.left_chance_epoch is None and train_m.get(stage.chance_key, 9.9) < stage.chance_level * 0.9:
            self.result.left_chance_epoch = n
            self.report(f"Training loss left the chance level ({stage.chance_level:.2f}) at epoch {n}")
        if val_m[stage.best_key] < self.best:
            self.best = val_m[stage.best_key]
            self.save(self.best_path, n, val_m)
            self.result.best_path = self.best_path
            self.report(f"  new best {stage.best_key}={self.best:.4f} -> {self.best_path}")
        if n % t.checkpoint_every == 0:
            self.save(self.out_dir / f"checkpoint_epoch_{n}.pth", n, val_m)
        self.save(self.last_path, n, val_m)
        self.result.epochs_done = n
        self.world.barrier()

    def finish(self) -> None:
        """Say whether anything was learnt, then evaluate the best checkpoint on the test part."""
        stage, result = self.stage, self.result
        result.history = self.history
        if not self.world.main:
            return
        if result.left_chance_epoch is None:
            result.learned = False
            self.report(f"WARNING: training stayed at the chance level ({stage.chance_key} never fell below "
                        f"{stage.chance_level * 0.9:.3f}); this model has learnt nothing useful. Try more epochs, "
                        f"more data or a lower learning rate.")
        if result.best_path is None:
            return
        ck = load_checkpoint(result.best_path, kind=stage.kind)
        load_state(stage.model, ck["state_dict"], result.best_path)
        result.test_metrics = stage.evaluate("test")
        for k, v in result.test_metrics.items():
            self.writer.add_scalar(f"test/{k}", v, self.step)
        self.report(f"Test set ({result.best_path.name}): {_fmt(result.test_metrics)}")
        (self.out_dir / f"{stage.kind}_metrics.json").write_text(json.dumps(
            {"test": result.test_metrics, "history": self.history, "learned": result.learned,
             "left_chance_epoch": result.left_chance_epoch}, indent=1), encoding="utf-8")


def fit(stage: Stage, cfg: Config, out_dir: Path, log_dir: Path, *, resume: bool = False,
        report: Report = lambda s: None, progress: bool = False, world: World = World()) -> FitResult:
    """Train ``stage`` for cfg.training.num_epochs epochs of samples_per_epoch samples each.

    Ctrl+C saves last.pth (the epochs finished so far, the weights as they are) and returns with
    ``interrupted`` set; ``resume`` continues from last.pth. Under torchrun (``world``), every rank trains its
    part of each batch; rank 0 alone reports, validates and writes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(stage, cfg, out_dir, log_dir, report, progress, world)
    if resume:
        run.resume()
    try:
        for epoch in range(run.start_epoch, cfg.training.num_epochs):
            t0 = time.perf_counter()
            train_m = run.train_epoch(epoch)
            run.end_epoch(epoch, train_m, time.perf_counter() - t0)
        run.finish()
    except KeyboardInterrupt:
        if world.main:  # the replicas hold the same weights: one copy is the checkpoint
            run.save(run.last_path, run.result.epochs_done, run.history[-1]["val"] if run.history else {})
        run.result.interrupted = True
        run.report(f"Interrupted: saved {run.last_path}; continue with --resume")
    finally:
        run.writer.close()
    run.result.history = run.history
    return run.result


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

    if kind == "generator" and cfg.model.generator == "presenter":
        from .presenter_train import run_presenter

        run = run_presenter(cfg, stage_dir(cfg, kind), resume=resume, report=report, progress=progress, split=split)
        return FitResult(run.best_path, run.last_path, run.steps, run.interrupted, history=run.curve,
                         test_metrics=run.test_metrics)
    world, device = setup(select_device(cfg.training.device))
    report, progress = (report, progress) if world.main else (lambda s: None, False)
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
    world.barrier()  # every rank has read split.json before rank 0 writes it again
    if world.main:
        save_split(split, split_path)
    n = {p: len(split[p]) for p in ("train", "val", "test")}
    how = "clips" if split["by"] == "clip" else "time pieces (fewer than 10 clips: each clip cut 80/10/10 in time)"
    procs = f" x {world.size} processes (each {cfg.training.batch_size // world.size} of every batch)" \
        if world.parallel else ""
    report(f"Loaded {len(clips)} clips from {cfg.data.processed_dir}; split {n['train']}/{n['val']}/{n['test']} "
           f"{how}; device {device}{procs}")
    if kind == "sync":
        from .sync_stage import SyncStage

        stage = SyncStage(cfg, clips, split, device, world)
    else:
        from .gen_stage import GeneratorStage

        stage = GeneratorStage(cfg, clips, split, device, world)
    report(f"Model parameters: {count_parameters(stage.model):,} ({kind})")
    log_dir = Path(cfg.paths.logs_dir) / kind
    return fit(stage, cfg, out, log_dir, resume=resume, report=report, progress=progress, world=world)


class _NoWriter:
    """TensorBoard's writer on ranks other than 0: takes every call, writes nothing."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None
