"""Training stage for the sync expert: chunks of 25 frames, the pairwise loss, validation with offsets."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from . import audio as A
from .checkpoint import autocast, init_weights
from .config import Config
from .datasets import ChunkSampler, Clip, augment, chunk_length, split_part
from .distributed import World
from .models.syncnet import SyncDims, SyncExpert
from .sync import audio_embeddings, face_embeddings, offset_curve, sync_loss, window_valid

CHUNK_FRAMES = 25  # 1 s: 21 windows per chunk, enough for negatives >= 5 frames apart
EVAL_BATCHES = 8
SEGMENT_FRAMES = 50  # offset accuracy is measured on 2-second segments
EVAL_SHIFTS = range(-10, 11)


def sync_dims(cfg: Config) -> SyncDims:
    m = cfg.model
    return SyncDims(m.input_size, m.hidden_dim, m.num_layers, m.base_channels, A.feature_bins(m.audio_feature),
                    m.audio_feature, m.temporal)


class SyncStage:
    kind = "sync"
    best_key = "loss"
    chance_key = "bce"
    chance_level = float(np.log(2))

    def __init__(self, cfg: Config, clips: dict[str, Clip], split: dict, device: torch.device,
                 world: World = World()):
        self.cfg = cfg
        self.device = device
        self.world, self.part = world, world.part(cfg.training.batch_size)
        self.parts = {p: split_part(clips, split, p) for p in ("train", "val", "test")}
        self.sampler = ChunkSampler(self.parts["train"], CHUNK_FRAMES, seed=cfg.training.seed)
        for part in ("val", "test"):  # fail now, not after the first epoch
            chunk_length(self.parts[part], CHUNK_FRAMES, A.SYNC_FRAMES + cfg.training.negative_shift_min, part)
        torch.manual_seed(cfg.training.seed)
        self.model = SyncExpert(sync_dims(cfg)).to(device)
        if cfg.training.init_checkpoint:  # fine-tune an existing expert (e.g. on one person's footage)
            init_weights(self.model, cfg.training.init_checkpoint, "sync")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.training.learning_rate,
                                           weight_decay=cfg.training.weight_decay)
        self.gen = torch.Generator().manual_seed(cfg.training.seed)
        self.net = world.wrap(_Embeddings(self.model), device) if world.parallel else None

    def dims(self) -> dict:
        return self.model.dims.to_dict()

    def extra_state(self) -> dict:
        return {}

    def train_step(self) -> dict[str, float]:
        batch = self.cfg.training.batch_size
        x, feats, ids, starts = self.sampler.sample(batch, self.part)  # this process's part of the batch
        x = augment(x, self.gen, self.part, batch).to(self.device)
        with autocast(self.device, self.cfg.training.mixed_precision):
            loss, stats = sync_loss(self.model, x, feats.to(self.device), ids.to(self.device),
                                    starts.to(self.device), self.cfg.training.negative_shift_min, embed=self.net,
                                    gather=self.world.gather if self.world.parallel else None)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), **stats}

    @torch.no_grad()
    def evaluate(self, part: str) -> dict[str, float]:
        self.model.eval()
        clips = self.parts[part]
        length = chunk_length(clips, CHUNK_FRAMES, A.SYNC_FRAMES + self.cfg.training.negative_shift_min, part)
        sampler = ChunkSampler(clips, length, seed=1234)
        sums: dict[str, float] = {}
        for _ in range(EVAL_BATCHES):
            x, feats, ids, starts = sampler.sample(self.cfg.training.batch_size)
            loss, stats = sync_loss(self.model, x.to(self.device), feats.to(self.device), ids.to(self.device),
                                    starts.to(self.device), self.cfg.training.negative_shift_min)
            for k, v in {"loss": float(loss), **stats}.items():
                sums[k] = sums.get(k, 0.0) + v / EVAL_BATCHES
        errors = offset_errors(self.model, clips, self.device, self.cfg.training.max_offset_frames)
        if len(errors):
            sums["offset_acc"] = float((np.abs(errors) <= 1).mean())
            sums["offset_mae"] = float(np.abs(errors).mean())
        self.model.train()
        return sums

    @torch.no_grad()
    def log_extras(self, writer, step: int, part: str) -> None:
        clip = self.parts[part][0]
        self.model.eval()
        curve = clip_offset_curve(self.model, clip, self.device, self.cfg.training.max_offset_frames)
        self.model.train()
        writer.add_image(f"{part}/offset_curve", curve_image(curve.offsets, curve.distances), step,
                         dataformats="HWC")


def clip_offset_curve(model: SyncExpert, clip: Clip, device: torch.device, max_offset: int):
    """The distance curve of a whole (in-sync) clip."""
    face = face_embeddings(model, clip.crops, device)
    aud = audio_embeddings(model, clip.feats, -max_offset, len(face) + 2 * max_offset, device)
    return offset_curve(face, aud, -max_offset, max_offset, window_valid(clip.present))


def offset_errors(model: SyncExpert, clips: list[Clip], device: torch.device, max_offset: int) -> np.ndarray:
    """Found minus true offset for 2-s segments of each clip, with the audio shifted by -10..+10 frames."""
    errors = []
    n_win = SEGMENT_FRAMES - A.SYNC_FRAMES + 1
    for clip in clips:
        face = face_embeddings(model, clip.crops, device)
        valid = window_valid(clip.present)
        pad = max_offset + max(abs(k) for k in EVAL_SHIFTS)
        aud = audio_embeddings(model, clip.feats, -pad, len(face) + 2 * pad, device)
        for s in range(0, len(face) - n_win + 1, SEGMENT_FRAMES):
            if valid[s:s + n_win].float().mean() < 0.8:
                continue
            for k in EVAL_SHIFTS:
                # The shifted track a'(u) = a(u + k): its audio leads the video by k frames.
                lo = s - max_offset + k + pad
                seg_aud = aud[lo:lo + n_win + 2 * max_offset]
                res = offset_curve(face[s:s + n_win], seg_aud, -max_offset, max_offset, valid[s:s + n_win])
                errors.append(res.offset_frames - k)
    return np.asarray(errors)


def curve_image(offsets: list[int], dists: list[float], size=(320, 200)) -> np.ndarray:
    """A small plot of distance vs offset, (H, W, 3) uint8, for TensorBoard (no matplotlib needed)."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    d = np.asarray(dists, dtype=np.float64)
    lo, hi = np.nanmin(d), np.nanmax(d)
    xs = np.linspace(20, w - 10, len(d))
    ys = h - 20 - (d - lo) / max(hi - lo, 1e-9) * (h - 40)
    pts = np.stack([xs, ys], 1).astype(np.int32)
    cv2.polylines(img, [pts], False, (30, 30, 200), 2, cv2.LINE_AA)
    best = int(np.nanargmin(d))
    cv2.circle(img, tuple(int(v) for v in pts[best]), 5, (200, 30, 30), -1)
    cv2.line(img, (int(xs[len(d) // 2]), 10), (int(xs[len(d) // 2]), h - 15), (180, 180, 180), 1)
    cv2.putText(img, f"offset {offsets[best]:+d}", (25, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    return img


class _Embeddings(torch.nn.Module):
    """Both embeddings in one forward: DistributedDataParallel syncs the gradients of what its forward ran."""

    def __init__(self, model: SyncExpert):
        super().__init__()
        self.model = model

    def forward(self, crops: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.face_embed(crops), self.model.audio_embed(feats)
