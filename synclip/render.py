"""Drawing a presenter's mouth from landmarks: shape maps, training, rendering, and shapes from lip features.

The renderer (``models.renderer``) learns from a presenter's own frames alone: every frame's face mesh says
what shape its mouth has, so (masked frame, another frame, shape map) -> frame is a supervised task with no
sync signal. Blur is what L1 alone gives where the shape is uncertain; here the shape is given, and the loss
adds an edge term (L1 between image gradients) and SSIM, which both punish a smeared mouth. Both still reward
the mean of the textures a mouth might have, which is smooth; the optional detail term (``detail_loss``)
also asks for as much local high-frequency energy as the truth has, wherever that detail lies.

A frame's own mesh always agrees with the rest of the frame, a dub's shapes do not: the optional shape term
(``shape_loss``) also draws frames in another frame's mouth shape (``render_data.Frames.swap_sampler``) and
asks a lip reader (``models.lip_reader``, trained by ``fit_reader`` on real frames) to find that shape in
the drawing, so the renderer learns to follow the map where the frame around it says otherwise.

Crops are (N, S, S, 3) uint8 RGB; landmarks (N, 468, 3) in units of the crop side (``lips.LipTrack``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .errors import CheckpointError
from .mesh import LIPS_INNER, LIPS_OUTER, MOUTH_POINTS, frame_poses, from_template, to_template
from .metrics import ssim
from .models.lip_reader import LipReader
from .models.renderer import Renderer, RendererDims, blanked
from .store import atomic_path

# The jaw from ear to ear along the chin, in contour order (mesh.JAW lists the same points unordered).
JAW_CONTOUR = (172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397)
SHAPE_BLUR_SIGMA_PX = 1.0  # soften the drawn lines so a sub-pixel move changes the map smoothly
SUBPIXEL_BITS = 4  # cv2 draws at 1/16 px
LINE_GAIN = 2.5  # a 1-px line blurred at sigma 1 peaks near 0.4: lift it to about 1
FORMAT = "synclip-renderer-1"
EDGE_WEIGHT = 1.0  # L1 between image gradients, against blur
SSIM_WEIGHT = 0.2
MOUTH_WEIGHT = 4.0  # extra loss weight near the lips
MOUTH_REACH_PX = 6  # how far from the lip outlines that weight reaches (at 128 px: about a lip's thickness)
# The 3x3 Laplacian cv2.Laplacian applies at ksize 3, the one metrics.laplacian_variance measures sharpness with.
LAPLACIAN_KERNEL = ((2.0, 0.0, 2.0), (0.0, -8.0, 0.0), (2.0, 0.0, 2.0))
ENERGY_WINDOW_PX = 7  # local Laplacian energy is averaged over this box: a few texture periods of lips and teeth
LUMA = (0.299, 0.587, 0.114)  # as metrics.ssim and cv2's RGB2GRAY


def shape_map(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(468, 3) landmarks in crop units -> (3, size, size) float32 in [0, 1]: lip outlines (outer and inner),
    the filled mouth opening, the jaw line. NaN landmarks (no mesh) give an empty map."""
    out = np.zeros((3, size, size), np.uint8)
    if np.isnan(landmarks[0, 0]):
        return out.astype(np.float32)
    pts = np.round(landmarks[:, :2] * size * (1 << SUBPIXEL_BITS)).astype(np.int32)
    outer, inner, jaw = pts[list(LIPS_OUTER)], pts[list(LIPS_INNER)], pts[list(JAW_CONTOUR)]
    line = dict(color=255, thickness=1, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    cv2.polylines(out[0], [outer, inner], True, **line)
    cv2.fillPoly(out[1], [inner], 255, cv2.LINE_AA, SUBPIXEL_BITS)
    cv2.polylines(out[2], [jaw], False, **line)
    maps = out.astype(np.float32) / 255.0
    for k in range(3):
        maps[k] = cv2.GaussianBlur(maps[k], (0, 0), SHAPE_BLUR_SIGMA_PX)
    maps[[0, 2]] *= LINE_GAIN
    return np.clip(maps, 0.0, 1.0)


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)


def to_images(x: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) in [0, 1] -> (N, S, S, 3) uint8."""
    return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def model_inputs(targets: np.ndarray, references: np.ndarray, landmarks: np.ndarray, input_mask: str = "lower_half"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of the targets (only what ``blanked`` leaves of them is used), references, the targets'
    landmarks -> faces (N, 6, S, S) with the target blanked, shape maps (N, 3, S, S)."""
    t, r = to_tensor(targets), to_tensor(references)
    t[:, :, blanked(t.shape[-1], input_mask)] = 0.0
    size = targets.shape[1]
    shapes = torch.from_numpy(np.stack([shape_map(lm, size) for lm in landmarks]))
    return torch.cat([t, r], 1), shapes


def with_input_mask(model: Renderer, input_mask: str) -> Renderer:
    """A copy of ``model`` that blanks ``input_mask`` of the target (``blanked``), same weights: a start for
    fine-tuning to the other mask (the inputs it sees change, not their layout)."""
    blanked(model.dims.input_size, input_mask)  # an unknown name fails here, not at the first step
    out = Renderer(replace(model.dims, input_mask=input_mask))
    out.load_state_dict(model.state_dict())
    return out.train(model.training)


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def mouth_weight(shapes: torch.Tensor) -> torch.Tensor:
    """(B, K, S, S) shape maps -> (B, 1, S, S) loss weights: 1 + MOUTH_WEIGHT near the lips (their outlines
    grown by MOUTH_REACH_PX), so the few hundred mouth pixels are not drowned by the chin and neck."""
    k = 2 * MOUTH_REACH_PX + 1
    near = F.max_pool2d(shapes[:, :1], k, stride=1, padding=MOUTH_REACH_PX).clamp(0, 1)
    return 1.0 + MOUTH_WEIGHT * near


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H - 2, W - 2): the Laplacian of the luma (valid positions only)."""
    luma = (x * x.new_tensor(LUMA)[None, :, None, None]).sum(1, keepdim=True)
    return F.conv2d(luma, x.new_tensor(LAPLACIAN_KERNEL)[None, None])


def local_energy(lap: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) Laplacian -> its local RMS over ENERGY_WINDOW_PX boxes, same shape: how much detail is
    there, whatever its phase (eps keeps the square root's gradient finite on flat skin)."""
    r = ENERGY_WINDOW_PX // 2
    return (F.avg_pool2d(lap**2, ENERGY_WINDOW_PX, stride=1, padding=r, count_include_pad=False) + 1e-6).sqrt()


def detail_loss(pred: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """High-frequency mismatch of (B, 3, H, W) images, weighted by (B, 1, H, W) ``weight`` (mean 1): L1
    between their Laplacians plus L1 between their local Laplacian energies. The first is the edge term one
    derivative up; the second rewards texture of the right strength even where its exact place is
    uncertain, which a per-pixel loss answers with a smooth mean: the blur the sharpness figure sees."""
    lp, lt = laplacian(pred), laplacian(truth)
    w = weight[..., 1:-1, 1:-1]  # the Laplacian's valid positions
    return ((lp - lt).abs() * w).mean() + ((local_energy(lp) - local_energy(lt)).abs() * w).mean()


def render_loss(pred: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor | None = None,
                detail_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss on the lower halves of (B, 3, S, S): L1 + EDGE_WEIGHT * gradient L1 (both weighted by ``weight``
    (B, 1, S, S) where given, see ``mouth_weight``) + SSIM_WEIGHT * (1 - SSIM) + ``detail_weight`` *
    ``detail_loss`` (same weights; its value is reported whatever its weight)."""
    half = pred.shape[-2] // 2
    p, t = pred[:, :, half:], truth[:, :, half:]
    w = torch.ones_like(p[:, :1]) if weight is None else weight[:, :, half:]
    w = w / w.mean()
    l1 = ((p - t).abs() * w).mean()
    (px, py), (tx, ty) = image_gradients(p), image_gradients(t)
    edge = ((px - tx).abs() * w[..., :, 1:]).mean() + ((py - ty).abs() * w[..., 1:, :]).mean()
    s = ssim(p, t).mean()
    detail = detail_loss(p, t, w)
    loss = l1 + EDGE_WEIGHT * edge + SSIM_WEIGHT * (1 - s) + detail_weight * detail
    return loss, {"l1": l1.item(), "edge": edge.item(), "ssim": s.item(), "detail": detail.item()}


def mouth_points(landmarks: np.ndarray) -> torch.Tensor:
    """(N, 468, 3) landmarks -> (N, P, 2) float32 x, y of MOUTH_POINTS (what a ``LipReader`` reads)."""
    return torch.from_numpy(np.ascontiguousarray(landmarks[:, list(MOUTH_POINTS), :2], np.float32))


def shape_loss(reader: LipReader, pred: torch.Tensor, landmarks: np.ndarray) -> torch.Tensor:
    """Mean distance in pixels between the mouth points ``reader`` finds in the drawn (B, 3, S, S) crops and
    those of the (B, 468, 3) landmarks they were drawn from."""
    size = pred.shape[-1]
    found = reader(pred[:, :, size // 2:])
    return (found - mouth_points(landmarks).to(pred.device)).norm(dim=-1).mean() * size


def fit_reader(reader: LipReader, sample: Callable[[np.random.Generator, int], tuple], steps: int,
               batch: int = 32, lr: float = 2e-3, seed: int = 0, report: Callable[[str], None] = print,
               test: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """Train ``reader`` on real crops and their own mesh (``sample`` as ``fit`` takes it; the references are
    not used). Its mean_points start at the first batches' mean. Returns the curve: train error and, with
    ``test`` (crops, landmarks), test error, in pixels, every steps // 8."""
    rng = np.random.default_rng(seed)
    first = sample(rng, 256)
    reader.mean_points.copy_(mouth_points(first[2]).mean(0))
    opt = torch.optim.AdamW(reader.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    curve, running = [], []
    reader.train()
    for step in range(1, steps + 1):
        targets, _, lms = sample(rng, batch)
        loss = shape_loss(reader, to_tensor(targets), lms)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if step % max(1, steps // 8) == 0 or step == steps:
            point = {"step": step, "train_px": round(float(np.mean(running)), 3)}
            if test is not None:
                point["test_px"] = round(reader_error(reader, *test), 3)
                reader.train()
            curve.append(point)
            report(" ".join(f"{k}={v}" for k, v in point.items()))
            running = []
    return curve


@torch.no_grad()
def reader_error(reader: LipReader, crops: np.ndarray, landmarks: np.ndarray, batch: int = 64) -> float:
    """Mean distance in pixels between the mouth points ``reader`` finds in (N, S, S, 3) crops and theirs."""
    reader.eval()
    errs = [shape_loss(reader, to_tensor(crops[a:a + batch]), landmarks[a:a + batch]).item() * len(crops[a:a + batch])
            for a in range(0, len(crops), batch)]
    return float(np.sum(errs) / max(1, len(crops)))


@dataclass
class FitSettings:
    minutes: float = 60.0  # wall time for training (pauses of the process count too)
    max_steps: int = 10**9
    batch: int = 16
    lr: float = 1e-3
    final_lr_share: float = 0.05  # cosine decay over the time budget down to this share of lr
    seed: int = 0
    eval_every: int = 250
    detail_weight: float = 0.0  # weight of render.detail_loss; 0 is the loss the first renderer trained with
    shape_weight: float = 0.0  # weight of render.shape_loss (per pixel of error); needs a reader and swaps


def fit(model: Renderer, sample: Callable[[np.random.Generator, int], tuple], settings: FitSettings,
        evaluate: Callable[[Renderer], dict] | None = None, report: Callable[[str], None] = print,
        on_step: Callable[[int, float], None] | None = None, reader: LipReader | None = None,
        swap: Callable[[np.random.Generator, int], tuple] | None = None) -> list[dict]:
    """Train until the time budget or max_steps is spent. ``sample(rng, batch)`` -> (targets, references,
    landmarks) numpy arrays as ``model_inputs`` takes them. Returns the curve: mean loss terms per
    ``eval_every`` steps and ``evaluate(model)``'s figures there. ``on_step(steps done, share of the budget
    spent)`` after every step (a progress bar). With ``settings.shape_weight``, ``reader`` (frozen) reads
    the mouth of every drawn crop, and each step also draws half a batch from ``swap(rng, batch)`` (frames
    given another frame's mouth: no pixel loss, only the shape term)."""
    if settings.shape_weight and (reader is None or swap is None):
        raise ValueError("shape_weight needs a lip reader and a swap sampler")
    if reader is not None:
        reader.eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    rng = np.random.default_rng(settings.seed)
    budget = settings.minutes * 60.0
    t0, step, curve, running = time.perf_counter(), 0, [], []
    model.train()
    while step < settings.max_steps:
        done = (time.perf_counter() - t0) / budget
        if done >= 1.0:
            break
        for group in opt.param_groups:  # cosine over the time budget, not the steps: pauses do not skew it
            group["lr"] = settings.lr * (settings.final_lr_share + (1 - settings.final_lr_share)
                                         * 0.5 * (1 + math.cos(math.pi * done)))
        targets, refs, lms = sample(rng, settings.batch)
        faces, shapes = model_inputs(targets, refs, lms, model.dims.input_mask)
        pred = model(faces, shapes)
        loss, terms = render_loss(pred, to_tensor(targets), mouth_weight(shapes), settings.detail_weight)
        terms["shape"] = terms["swapped_shape"] = 0.0
        if settings.shape_weight:
            own = shape_loss(reader, pred, lms)
            s_targets, s_refs, s_lms = swap(rng, max(1, settings.batch // 2))
            swapped = shape_loss(reader, model(*model_inputs(s_targets, s_refs, s_lms, model.dims.input_mask)), s_lms)
            loss = loss + settings.shape_weight * (own + swapped) / 2
            terms.update(shape=own.item(), swapped_shape=swapped.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if on_step is not None:
            on_step(step, max(step / settings.max_steps, (time.perf_counter() - t0) / budget))
        running.append([loss.item(), terms["l1"], terms["edge"], terms["ssim"], terms["detail"], terms["shape"],
                        terms["swapped_shape"]])
        if step % settings.eval_every == 0:
            curve.append(_point(step, t0, running, model, evaluate))
            report(_line(curve[-1]))
            running = []
    if running:
        curve.append(_point(step, t0, running, model, evaluate))
        report(_line(curve[-1]))
    model.eval()
    return curve


def _point(step: int, t0: float, running: list, model: Renderer, evaluate) -> dict:
    m = np.mean(running, 0)
    point = {"step": step, "seconds": round(time.perf_counter() - t0), "loss": round(float(m[0]), 4),
             "l1": round(float(m[1]), 4), "edge": round(float(m[2]), 4), "train_ssim": round(float(m[3]), 4),
             "detail": round(float(m[4]), 4)}
    if m[5] or m[6]:  # the shape term's pixels: on the frames' own mouths and on swapped ones
        point.update(shape_px=round(float(m[5]), 3), swapped_shape_px=round(float(m[6]), 3))
    if evaluate is not None:
        model.eval()
        point.update(evaluate(model))
        model.train()
    return point


def _line(p: dict) -> str:
    return " ".join(f"{k} {v}" for k, v in p.items())


@torch.no_grad()
def draw(model: Renderer, targets: np.ndarray, references: np.ndarray, landmarks: np.ndarray,
         batch: int = 32) -> np.ndarray:
    """Each target crop redrawn with the mouth of its landmarks -> (N, S, S, 3) uint8 (what the renderer sees of
    the target, ``blanked``'s complement, unchanged)."""
    out = []
    for a in range(0, len(targets), batch):
        faces, shapes = model_inputs(targets[a:a + batch], references[a:a + batch], landmarks[a:a + batch],
                                     model.dims.input_mask)
        out.append(to_images(model(faces, shapes)))
    return np.concatenate(out) if out else np.zeros_like(targets)


def rest_mouth(landmarks: np.ndarray, template: np.ndarray, poses: dict | None = None) -> np.ndarray:
    """(P, 3) the clip's rest mouth: the median of its frames' MOUTH_POINTS, frontalised on ``template``
    (``poses``: ``mesh.frame_poses`` of these landmarks, when the caller has them already)."""
    poses = frame_poses(landmarks, template) if poses is None else poses
    if not poses:
        raise ValueError("no frame with landmarks to take the rest mouth from")
    return np.median(np.stack([to_template(landmarks[t, list(MOUTH_POINTS)], pose) for t, pose in poses.items()]),
                     axis=0)


def mouth_from_features(landmarks: np.ndarray, features: np.ndarray, template: np.ndarray,
                        rest: np.ndarray | None = None) -> np.ndarray:
    """A clip's landmarks (T, 468, 3) with the mouth points replaced by lip features (T, LIP_FEATURES) from
    ``mesh.lip_features``' space (e.g. ``AudioToLips``' output): the features are added to the clip's rest
    mouth (``rest``, default ``rest_mouth`` of these frames) and each frame is taken back to the crop with the
    inverse of its own pose fit on ``template``. Frames without landmarks stay NaN."""
    out = landmarks.copy()
    poses = frame_poses(landmarks, template)
    if not poses:
        return out
    rest = rest_mouth(landmarks, template, poses) if rest is None else rest
    mouth = rest[None] + features.reshape(len(features), -1, 3)
    for t, pose in poses.items():
        out[t, list(MOUTH_POINTS)] = from_template(mouth[t], pose).astype(np.float32)
    return out


def mouth_boxes(crops: np.ndarray, landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w, 3) boxes of (N, S, S, 3) crops centred on the lips of their (N, 468, 3) landmarks (the region
    whose sharpness and colour are measured), kept inside the crop."""
    h, w = size
    out = []
    for img, lm in zip(crops, landmarks):
        cx, cy = (lm[list(LIPS_OUTER), :2].mean(0) * img.shape[0]).round().astype(int)
        y0, x0 = np.clip([cy - h // 2, cx - w // 2], 0, [img.shape[0] - h, img.shape[1] - w])
        out.append(img[y0:y0 + h, x0:x0 + w])
    return np.stack(out)


def save_renderer(path: Path, model: Renderer, step: int, metrics: dict | None = None) -> None:
    """A plain dict (read with torch.load(weights_only=True)), written to a temp file and renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "dims": model.dims.to_dict(), "state_dict": model.state_dict(),
                    "step": step, "metrics": metrics or {}}, tmp)


def load_renderer(path: Path) -> Renderer:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds on bad bytes
        raise CheckpointError(f"not a readable renderer ({type(e).__name__})", path=path,
                              fix="train one with benchmarks/real_render.py") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError("not a synclip renderer", path=path, fix="train one with benchmarks/real_render.py")
    model = Renderer(RendererDims(**data["dims"]))
    model.load_state_dict(data["state_dict"], strict=True)
    return model.eval()
