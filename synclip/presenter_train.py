"""`synclip train --stage generator` for a presenter (``model.generator: presenter``): the renderer of the
shipped presenter model (or of ``training.init_checkpoint``) fine-tuned on one person's prepared footage.

The footage is the clips `synclip prepare` indexed. Their source videos are tracked again at the renderer's crop
size with the face mesh (``render_data.extract``), kept beside the prepared clips as ``presenter_<S>.npz`` and
redone when the clip list changes. AudioToLips stays as it is: it maps speech to pose-free mouth shapes, which
differ little from person to person; the person's own look is the renderer's job, and it learns it from the
frames alone (no sync signal). The split is the other stages' (``datasets.make_split``: by clip, or every clip
cut in time when there are fewer than 10). Training runs on the CPU (the renderer is small).

Ctrl+C keeps a usable model: last.pth holds the weights as they are, and ``--resume`` continues from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .config import Config
from .datasets import make_split, save_split
from .errors import DataError
from .face import lower_face_mask
from .metrics import psnr, sharpness_ratio, ssim
from .presenter import PRETRAINED, Presenter, footage_motion_level, load_presenter, save_presenter
from .render import FitSettings, draw, fit, mouth_boxes
from .render_data import FaceClip, Frames, extract, load_faces, split_faces
from .store import read_index

BATCH = 8
LEARNING_RATE = 5e-4  # fine-tuning: half the from-scratch rate of benchmarks/real_render.py
EVAL_FRAMES = 48  # validation frames measured at each curve point (fixed, spread over the validation part)
CURVE_POINTS = 8  # validation points over the run
STEP_SECONDS = 1.0  # about one step of 8 crops at 128 px on a CPU core: places the points when time is the limit


def source_videos(processed_dir: Path) -> list[Path]:
    """The source videos of the prepared clips (``synclip prepare``'s index)."""
    clips = read_index(processed_dir)["clips"]
    if not clips:
        raise DataError("no prepared clips", path=processed_dir,
                        fix="run `synclip prepare` on the presenter's videos first")
    videos = sorted(Path(e["video"]) for e in clips.values())
    missing = [v for v in videos if not v.is_file()]
    if missing:
        raise DataError(f"{len(missing)} source video(s) moved or deleted since `synclip prepare`, e.g. {missing[0]}",
                        path=processed_dir, fix="put them back, or prepare the presenter's videos again")
    return videos


def presenter_faces(videos: list[Path], processed_dir: Path, crop_px: int, workers: int, progress: bool
                    ) -> dict[str, FaceClip]:
    """Full face crops and face mesh of every video at ``crop_px``, from the cache when it holds these clips."""
    cache = processed_dir / f"presenter_{crop_px}.npz"
    index = cache.with_suffix(".json")
    if cache.is_file() and index.is_file():
        if json.loads(index.read_text(encoding="utf-8")).get("sources") == sorted(str(v) for v in videos):
            return load_faces(cache)
    bar = tqdm(desc="Meshing the presenter's frames", unit="clip", total=len(videos), disable=not progress,
               leave=False)
    extract(videos, cache, crop_px, workers=workers, progress=lambda k, n: bar.update(k - bar.n))
    bar.close()
    return load_faces(cache)


def lower_halves(drawn: np.ndarray, truth: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The lower halves of drawn and true crops (N, S, S, 3) uint8 as (N, 3, S / 2, S) floats in [0, 1], and
    the drawn one as paste-back shows it: blended into the truth with face.lower_face_mask."""
    half = truth.shape[1] // 2
    w = torch.from_numpy(lower_face_mask(truth.shape[1])[half:])
    d, t = (torch.from_numpy(x[:, half:]).permute(0, 3, 1, 2).float() / 255 for x in (drawn, truth))
    return d, t, w * d + (1 - w) * t


def lower_face_figures(drawn: np.ndarray, truth: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Lower-half SSIM and PSNR of drawn against true crops (N, S, S, 3) uint8, the same of the drawn crop as
    paste-back shows it (blended into the truth with face.lower_face_mask, as a redo of the footage is), and
    the mouth box's sharpness (variance of the Laplacian) over the truth's."""
    d, t, pasted = lower_halves(drawn, truth)
    side = truth.shape[1] * 3 // 8  # about 1.5 mouth widths at this crop framing
    return {"ssim_lower": round(float(ssim(d, t).mean()), 4), "psnr_lower_db": round(float(psnr(d, t).mean()), 2),
            "ssim_lower_pasted": round(float(ssim(pasted, t).mean()), 4),
            "psnr_lower_pasted_db": round(float(psnr(pasted, t).mean()), 2),
            "sharpness_mouth": round(sharpness_ratio(mouth_boxes(drawn, landmarks, (side, side)),
                                                     mouth_boxes(truth, landmarks, (side, side))), 3)}


def measure(p: Presenter, frames: Frames, count: int | None = EVAL_FRAMES, seed: int = 7) -> dict[str, float]:
    """Frames redrawn from their own real landmarks and a reference of the same clip: lower_face_figures."""
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero(frames.present)
    idx = usable if count is None or len(usable) <= count else usable[np.linspace(0, len(usable) - 1, count)
                                                                           .round().astype(int)]
    refs = np.array([frames.reference(rng, int(i)) for i in idx])
    drawn = draw(p.renderer, frames.crops[idx], frames.crops[refs], frames.landmarks[idx])
    return lower_face_figures(drawn, frames.crops[idx], frames.landmarks[idx])


@dataclass
class PresenterRun:
    best_path: Path
    last_path: Path
    steps: int
    interrupted: bool
    curve: list[dict] = field(default_factory=list)  # render.fit's points, with the validation figures
    test_metrics: dict = field(default_factory=dict)


def run_presenter(cfg: Config, out: Path, *, resume: bool = False, report=lambda s: None, progress: bool = False,
                  split: dict | None = None) -> PresenterRun:
    """Fine-tune the presenter on cfg.data.processed_dir's clips; writes best_model.pth and last.pth (presenter
    files) and split.json under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    best_path, last_path = out / "best_model.pth", out / "last.pth"
    t = cfg.training
    init = Path(last_path if resume and last_path.is_file() else (t.init_checkpoint or PRETRAINED))
    p = load_presenter(init)
    processed = Path(cfg.data.processed_dir)
    clips = presenter_faces(source_videos(processed), processed, p.input_size, cfg.data.workers, progress)
    if not clips:
        raise DataError("the face mesh found no usable clip", path=processed,
                        fix="use footage with one clear frontal face")
    if split is None and resume and (out / "split.json").is_file():
        split = json.loads((out / "split.json").read_text(encoding="utf-8"))
    split = split or make_split(list(clips), t.seed)
    save_split(split, out / "split.json")
    parts = {k: split_faces(clips, split, k) for k in ("train", "val", "test")}
    if not parts["train"] or not parts["val"]:
        raise DataError("too little footage to train and validate on", path=processed,
                        fix="prepare at least 10 seconds of the presenter talking")
    train, val = Frames(parts["train"]), Frames(parts["val"])
    report(f"Presenter: {len(clips)} clips, {int(train.present.sum())} training frames, {int(val.present.sum())} "
           f"validation frames at {p.input_size} px; starting from {init}")
    p.meta = {**p.meta, "init": str(init), "footage": sorted(clips)}
    # Dubbing scales speech's mouth shapes to move as far as this person's mouth does in their footage.
    p.motion_level = footage_motion_level([c.landmarks for c in clips.values()], p.template)
    start = measure(p, val)
    report(f"before: {_fmt(start)}")
    best = {"ssim_lower": start["ssim_lower"]}
    if resume and best_path.is_file():  # the best so far stays unless this run beats it
        best["ssim_lower"] = max(best["ssim_lower"], measure(load_presenter(best_path), val)["ssim_lower"])
    else:
        save_presenter(best_path, p)

    def evaluate(model) -> dict:
        figures = measure(p, val)
        if figures["ssim_lower"] > best["ssim_lower"]:
            best["ssim_lower"] = figures["ssim_lower"]
            save_presenter(best_path, p)
        save_presenter(last_path, p)
        return {f"val_{k}": v for k, v in figures.items()}

    expected_steps = min(t.presenter_steps, round(t.presenter_minutes * 60 / STEP_SECONDS))
    settings = FitSettings(minutes=t.presenter_minutes, max_steps=t.presenter_steps, batch=BATCH, lr=LEARNING_RATE,
                           detail_weight=t.presenter_detail_weight, seed=t.seed,
                           eval_every=max(10, expected_steps // CURVE_POINTS))
    curve, interrupted = [], False
    bar = tqdm(desc="Fitting the presenter", total=100, unit="%", disable=not progress, leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")

    def on_step(step: int, spent: float) -> None:
        bar.update(min(100, round(100 * spent)) - bar.n)
        bar.set_postfix_str(f"step {step}", refresh=False)
    try:
        curve = fit(p.renderer, train.sampler(augment=t.presenter_augment), settings, evaluate,
                    report=lambda s: (bar.clear(), report(s)), on_step=on_step)
    except KeyboardInterrupt:
        p.renderer.eval()
        save_presenter(last_path, p)
        interrupted = True
        report(f"Interrupted: saved {last_path}; continue with --resume")
    finally:
        bar.close()
    result = PresenterRun(best_path, last_path, curve[-1]["step"] if curve else 0, interrupted, curve)
    if not interrupted:
        best_model = load_presenter(best_path)
        test = Frames(parts["test"]) if parts["test"] else val
        result.test_metrics = measure(best_model, test, count=None)
        report(f"test ({'held-out part' if parts['test'] else 'validation part'}, real mouth shapes): "
               f"{_fmt(result.test_metrics)}")
    return result


def _fmt(figures: dict) -> str:
    return " ".join(f"{k} {v}" for k, v in figures.items())
