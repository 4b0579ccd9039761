"""Training stage for the generator: L1 + the frozen expert's sync loss (+ optional adversarial loss)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import audio as A
from .checkpoint import autocast, expert_from, init_weights, load_checkpoint
from .config import Config
from .datasets import ChunkSampler, Clip, augment, split_part
from .distributed import World, to_global_batch_norm
from .errors import ConfigError
from .metrics import psnr, ssim
from .models.generator import Discriminator, Generator, GeneratorDims, mask_lower_half

EVAL_BATCHES = 6
SYNC_OFFSETS = 6  # the sync loss asks the expert to pick the right audio among shifts -6..+6 frames


def generator_dims(cfg: Config) -> GeneratorDims:
    m = cfg.model
    return GeneratorDims(m.input_size, m.base_channels, A.feature_bins(m.audio_feature),
                         audio_feature=m.audio_feature)


class GeneratorStage:
    kind = "generator"
    best_key = "loss"  # the training objective on the validation clips: L1 + weighted sync loss
    chance_key = "l1"
    chance_level = 0.25  # L1 of a mid-grey guess on face crops; a generator that learns drops far below

    def __init__(self, cfg: Config, clips: dict[str, Clip], split: dict, device: torch.device,
                 world: World = World()):
        self.cfg = cfg
        self.device = device
        self.world, self.part = world, world.part(cfg.training.batch_size)
        self.parts = {p: split_part(clips, split, p) for p in ("train", "val", "test")}
        self.sampler = ChunkSampler(self.parts["train"], A.SYNC_FRAMES, seed=cfg.training.seed)
        expert_path = Path(cfg.paths.checkpoints_dir) / "best_model.pth"
        expert_data = load_checkpoint(expert_path, kind="sync")
        if expert_data["dims"]["input_size"] != cfg.model.input_size:
            raise ConfigError(f"the sync expert at {expert_path} was trained at input size "
                              f"{expert_data['dims']['input_size']}, not model.input_size={cfg.model.input_size}",
                              fix="train the expert at the same size first (synclip train --stage sync)")
        self.expert = expert_from(expert_data, expert_path, device)
        if self.expert.dims.audio_feature != cfg.model.audio_feature:  # its audio encoder would take any bins
            raise ConfigError(f"the sync expert at {expert_path} was trained on {self.expert.dims.audio_feature} "
                              f"features, not model.audio_feature={cfg.model.audio_feature}",
                              fix="train the expert on the same features first (synclip train --stage sync)")
        self.expert_state = expert_data["state_dict"]
        for p in self.expert.parameters():
            p.requires_grad_(False)
        torch.manual_seed(cfg.training.seed)
        self.model = Generator(generator_dims(cfg)).to(device)
        if cfg.training.init_checkpoint:
            init_weights(self.model, cfg.training.init_checkpoint, "generator")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.training.learning_rate)
        self.disc = None
        if cfg.training.adversarial_weight > 0:
            self.disc = Discriminator(cfg.model.input_size, cfg.model.base_channels).to(device)
            self.disc_opt = torch.optim.AdamW(self.disc.parameters(), lr=cfg.training.learning_rate)
        self.gen = torch.Generator().manual_seed(cfg.training.seed)
        self.rng = np.random.default_rng(cfg.training.seed + 1)
        self.net = world.wrap(self.model, device)  # the generator as trained (in DDP when parallel)
        if self.disc is not None and world.parallel:  # several forwards a step, so no DDP: whole-batch norms,
            to_global_batch_norm(self.disc, device.type == "cuda")  # gradients averaged by hand (train_step)

    def dims(self) -> dict:
        return self.model.dims.to_dict()

    def extra_state(self) -> dict:
        # The expert travels inside the generator checkpoint so one file can dub and score.
        return {"expert": {"dims": self.expert.dims.to_dict(), "state_dict": self.expert_state}}

    def batch(self, sampler: ChunkSampler, size: int, rng: np.random.Generator, train: bool,
              part: slice = slice(None)):
        """-> target (B, 5, 3, S, S), reference (B, 5, 3, S, S), frame audio (B, 5, M, F), and the window's
        audio shifted by -SYNC_OFFSETS..+SYNC_OFFSETS frames (B, 2 * SYNC_OFFSETS + 1, M, F). ``part``: the
        rows built here (all draws are made for the whole batch, so processes stay in step)."""
        ids, starts = sampler.draw(size)
        picks = []
        for i, s in zip(ids.tolist(), starts):
            ok = np.flatnonzero(sampler.clips[i].present.numpy())
            far = ok[np.abs(ok - s) >= 2 * A.SYNC_FRAMES]  # a reference from another moment: no mouth to copy
            picks.append(rng.choice(far if len(far) else ok, size=A.SYNC_FRAMES))
        ids, starts, picks = ids[part], starts[part], picks[part]
        x, _, _, _ = sampler.build(ids, starts)
        refs, frame_feats, shifted = [], [], []
        for i, s, r in zip(ids.tolist(), starts, picks):
            clip = sampler.clips[i]
            refs.append(clip.crops[torch.as_tensor(r)])
            frame_feats.append(A.centred_windows(clip.feats, torch.arange(s, s + A.SYNC_FRAMES)))
            shifted.append(A.window_feats(clip.feats, s - SYNC_OFFSETS, 2 * SYNC_OFFSETS + 1))
        ref = torch.stack(refs).permute(0, 1, 4, 2, 3).float() / 255.0
        if train:  # the same jitter for target and reference keeps them one person in one light
            both = augment(torch.cat([x, ref], 1), self.gen, part, size)
            x, ref = both[:, :A.SYNC_FRAMES], both[:, A.SYNC_FRAMES:]
        return x, ref, torch.stack(frame_feats), torch.stack(shifted)

    def generate(self, x: torch.Tensor, ref: torch.Tensor, feats: torch.Tensor, net=None) -> torch.Tensor:
        inp = torch.cat([mask_lower_half(x), ref], 2).flatten(0, 1)
        return (net or self.model)(inp, feats.flatten(0, 1)).view_as(x)

    def sync_logits(self, crops: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
        """The expert's in-sync logits of each 5-frame window against its audio shifted by each offset:
        crops (B, 5, 3, S, S), shifted (B, K, M, F) -> (B, K); column SYNC_OFFSETS is the true audio."""
        with torch.no_grad():  # the expert is frozen and the audio is given: no gradient needed there
            aud = self.expert.audio_embed(shifted)  # (B, K, D)
        return self.expert.logits(self.expert.face_embed(crops), aud)  # (B, 1, D) x (B, K, D) -> (B, K)

    @staticmethod
    def sync_term(logits: torch.Tensor) -> torch.Tensor:
        """From sync_logits of generated windows: the mean of BCE that the window is in sync with its audio, and
        cross-entropy that the expert picks the true audio among the shifted ones. The second asks for the mouth
        of this very moment, not just a plausible talking mouth: it is what the sync confidence (LSE-C) measures."""
        true = logits[:, SYNC_OFFSETS]
        bce = F.binary_cross_entropy_with_logits(true, torch.ones_like(true))
        target = torch.full((len(logits),), SYNC_OFFSETS, device=logits.device)
        return (bce + F.cross_entropy(logits, target)) / 2

    def train_step(self) -> dict[str, float]:
        t = self.cfg.training
        x, ref, feats, win = (v.to(self.device) for v in self.batch(self.sampler, t.batch_size, self.rng, True,
                                                                     self.part))
        with autocast(self.device, t.mixed_precision):
            fake = self.generate(x, ref, feats, self.net)
            l1 = (fake - x).abs().mean()
            sync = self.sync_term(self.sync_logits(fake, win))
            loss = l1 + t.sync_loss_weight * sync
            stats = {"l1": float(l1.detach()), "sync": float(sync.detach())}
            if self.disc is not None:
                judged = self.disc(fake.flatten(0, 1))
                adv = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
                loss = loss + t.adversarial_weight * adv
                stats["adv"] = float(adv.detach())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.disc is not None:
            real_l, fake_l = self.disc(x.flatten(0, 1)), self.disc(fake.detach().flatten(0, 1))
            d_loss = (F.binary_cross_entropy_with_logits(real_l, torch.ones_like(real_l))
                      + F.binary_cross_entropy_with_logits(fake_l, torch.zeros_like(fake_l))) / 2
            self.disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            self.world.average_gradients(self.disc)
            self.disc_opt.step()
            stats["disc"] = float(d_loss)
        return {"loss": float(loss.detach()), **stats}

    @torch.no_grad()
    def evaluate(self, part: str) -> dict[str, float]:
        self.model.eval()
        sampler = ChunkSampler(self.parts[part], A.SYNC_FRAMES, seed=4321)
        rng = np.random.default_rng(4321)
        sums: dict[str, float] = {}
        for _ in range(EVAL_BATCHES):
            x, ref, feats, win = (v.to(self.device) for v in self.batch(sampler, self.cfg.training.batch_size,
                                                                         rng, False))
            fake = self.generate(x, ref, feats)
            flat_f, flat_x = fake.flatten(0, 1).float(), x.flatten(0, 1)
            half = x.shape[-2] // 2
            fake_logits = self.sync_logits(fake, win)
            p_fake = torch.sigmoid(fake_logits[:, SYNC_OFFSETS])
            p_real = torch.sigmoid(self.sync_logits(x, win)[:, SYNC_OFFSETS])
            l1, sync = float((fake - x).abs().mean()), float(self.sync_term(fake_logits))
            stats = {"loss": l1 + self.cfg.training.sync_loss_weight * sync, "l1": l1, "sync": sync,
                     "ssim": float(ssim(flat_f, flat_x).mean()),
                     "psnr": float(psnr(flat_f, flat_x).mean()),
                     "ssim_lower": float(ssim(flat_f[..., half:, :], flat_x[..., half:, :]).mean()),
                     "sync_prob_generated": float(p_fake.mean()), "sync_prob_real": float(p_real.mean())}
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v / EVAL_BATCHES
        self._last_eval = (x[:4, A.SYNC_FRAMES // 2], ref[:4, A.SYNC_FRAMES // 2], fake[:4, A.SYNC_FRAMES // 2])
        self.model.train()
        return sums

    def log_extras(self, writer, step: int, part: str) -> None:
        """Image grid: ground truth | masked input | reference | generated, one row per sample."""
        x, ref, fake = self._last_eval
        rows = torch.cat([x, mask_lower_half(x), ref, fake.float()], dim=3)  # (N, 3, S, 4S)
        writer.add_image(f"{part}/gt_masked_ref_generated", torch.cat(list(rows), dim=1).clamp(0, 1), step)
