"""Training data for the real-footage sync expert: lip features, crops and augmented audio of corpus clips.

A *chunk* is CHUNK_FRAMES consecutive frames of one clip in which the face mesh was found, with the audio
windows of its CHUNK_FRAMES - 4 sync windows. Each clip's audio also comes in augmented versions, made as
waveforms before the log-mel is taken (noise at 0-20 dB SNR, another voice underneath, reverberation,
telephone bandwidth, 8-bit companding, gain), so the expert learns timing that survives the recordings
users bring, not only our corpus'. Optionally the log-mel is then warped along frequency (``warp_voice``: a
longer or shorter vocal tract, a lower or higher voice), so two sources' few dozen voices stand for more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import audio as A
from .corpus import CorpusClip
from .datasets import ClipStarts
from .mesh import lip_features

CHUNK_FRAMES = 25  # 1 s: 21 windows, enough for same-clip negatives >= 5 frames apart


@dataclass
class TrainClip:
    name: str
    source: str
    lips: torch.Tensor  # (T, L) float32, zeros where no mesh
    present: torch.Tensor  # (T,) bool
    crops: torch.Tensor | None  # (T, S/2, S, 3) uint8 lower half
    feats: torch.Tensor  # (M, F) normalised log-mel of the clean audio: evaluation and scoring
    variants: list[torch.Tensor] = field(default_factory=list)  # feats of the clean and augmented audio

    @property
    def num_frames(self) -> int:
        return len(self.present)


def to_train_clip(clip: CorpusClip, source: str, template: np.ndarray, keep_crops: bool) -> TrainClip:
    lips = lip_features(clip.landmarks, template)
    present = ~np.isnan(lips[:, 0])
    lips = np.nan_to_num(lips, nan=0.0)
    feats = A.normalize_mel(A.log_mel(clip.wav))
    return TrainClip(clip.name, source, torch.from_numpy(lips), torch.from_numpy(present),
                     torch.from_numpy(clip.crops) if keep_crops else None, feats, [feats])


def add_audio_variants(clips: list[TrainClip], wavs: list[np.ndarray], count: int, seed: int = 0,
                       voice_warp: float = 0.0) -> None:
    """Give each clip ``count`` augmented versions of its audio features (besides the clean one).

    Augmenting whole clips once, rather than every chunk at every step, costs seconds instead of most of
    the training time, and the features are normalised per clip as scoring does. ``voice_warp`` w > 0 warps
    half of the variants' frequencies by a factor drawn log-uniformly from [1 / (1 + w), 1 + w].
    """
    rng = np.random.default_rng(seed)
    aug = AudioAugment(rng)
    for clip, wav in zip(clips, wavs):
        x = torch.from_numpy(wav)
        for _ in range(count):
            other = torch.from_numpy(wavs[int(rng.integers(len(wavs)))])
            other = F.pad(other, (0, max(0, len(x) - len(other))))[:len(x)]
            db = A.log_mel(aug(x, other))
            if voice_warp > 0 and rng.random() < 0.5:
                db = warp_voice(db, float(np.exp(rng.uniform(-1, 1) * np.log1p(voice_warp))))
            clip.variants.append(A.normalize_mel(db))


def warp_voice(db: torch.Tensor, factor: float) -> torch.Tensor:
    """(M, N_MELS) log-mel of speech -> the same speech as a voice whose frequencies are all ``factor`` times
    higher (formants and pitch alike, as a shorter vocal tract gives; < 1 a longer one). Each mel band takes
    the level found at its centre frequency / factor, interpolated between bands; timing is untouched.
    """
    mels = np.linspace(A.hz_to_mel(A.FMIN_HZ), A.hz_to_mel(A.FMAX_HZ), A.N_MELS + 2)[1:-1]
    centres = A.mel_to_hz(mels)
    src = torch.from_numpy(np.interp(centres / factor, centres, np.arange(A.N_MELS)).astype(np.float32))
    lo = src.floor().long().clamp(max=A.N_MELS - 2)
    w = (src - lo).clamp(0, 1)
    return db[:, lo] * (1 - w) + db[:, lo + 1] * w


def valid_starts(clip: TrainClip, length: int) -> np.ndarray:
    ok = clip.present.numpy().astype(np.int64)
    if len(ok) < length:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.convolve(ok, np.ones(length, np.int64), mode="valid") == length)


class AudioAugment:
    """Waveform augmentation of a clip's audio at 16 kHz; each kind applied with its own chance."""

    def __init__(self, rng: np.random.Generator, strength: float = 1.0):
        self.rng = rng
        self.p = strength

    def __call__(self, wav: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """wav (N,) a clip's audio; other (N,) unrelated speech for a voice underneath -> (N,) augmented."""
        rng, y = self.rng, wav.clone()
        if rng.random() < 0.3 * self.p:
            y = reverberate(y, rt60_s=rng.uniform(0.15, 0.7), rng=rng)
        if rng.random() < 0.25 * self.p:
            y = add_at_snr(y, other, rng.uniform(5, 20))
        if rng.random() < 0.5 * self.p:
            y = add_at_snr(y, coloured_noise(len(y), rng.uniform(0.0, 1.0), rng), rng.uniform(0, 20))
        if rng.random() < 0.2 * self.p:  # telephone / low sample-rate recordings
            y = F.interpolate(F.interpolate(y[None, None], scale_factor=0.5, mode="linear"),
                              size=len(y), mode="linear")[0, 0]
        if rng.random() < 0.15 * self.p:  # 8-bit mu-law codec
            mu = 255.0
            c = torch.sign(y) * torch.log1p(mu * y.abs().clamp(max=1)) / np.log1p(mu)
            c = torch.round(c * 127) / 127
            y = torch.sign(c) * ((1 + mu) ** c.abs() - 1) / mu
        return y * float(rng.uniform(0.3, 1.5))


def coloured_noise(n: int, slope: float, rng: np.random.Generator) -> torch.Tensor:
    """(n,) noise whose power falls as 1/f**slope: 0 white (hiss), 1 pink (fans, traffic, rooms)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / A.SAMPLE_RATE_HZ), 20.0)
    return torch.from_numpy(np.fft.irfft(spec / f ** (slope / 2), n).astype(np.float32))


def add_at_snr(signal: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    p_s = signal.square().mean().clamp(min=1e-10)
    p_n = noise.square().mean().clamp(min=1e-10)
    return signal + noise * torch.sqrt(p_s / (p_n * 10 ** (snr_db / 10)))


def reverberate(x: torch.Tensor, rt60_s: float, rng: np.random.Generator) -> torch.Tensor:
    """A room: exponentially decaying noise as the impulse response (direct path kept at full level)."""
    n = int(rt60_s * A.SAMPLE_RATE_HZ)
    t = np.arange(n) / A.SAMPLE_RATE_HZ
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s) * 0.3
    ir[0] = 1.0
    ir = torch.from_numpy((ir / np.sqrt((ir ** 2).sum())).astype(np.float32))
    size = 1 << (len(x) + n - 1).bit_length()  # FFT convolution at a power of two: fast whatever the lengths
    y = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(ir, size), size)[:len(x)]
    return y * (x.abs().max() / y.abs().max().clamp(min=1e-8))


class ChunkSampler(ClipStarts):
    """Random chunks from training clips, each clip weighted by its usable starts; the audio of each chunk
    comes from one of its clip's variants (clean or augmented) at random."""

    def __init__(self, clips: list[TrainClip], seed: int = 0):
        super().__init__(clips, lambda c: valid_starts(c, CHUNK_FRAMES),
                         f"{CHUNK_FRAMES} consecutive frames with a face mesh", seed)

    def sample(self, batch: int, pixels: bool) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> face {"lips": (B, T, L), "pixels": (B, T, 3, S/2, S)}, audio (B, T-4, M, F), clip ids, starts."""
        ids, starts = self.draw(batch)
        n_win = CHUNK_FRAMES - A.SYNC_FRAMES + 1
        lips, crops, auds = [], [], []
        for i, s in zip(ids, starts):
            c = self.clips[i]
            lips.append(c.lips[s:s + CHUNK_FRAMES])
            if pixels:
                crops.append(c.crops[s:s + CHUNK_FRAMES])
            feats = c.variants[int(self.rng.integers(len(c.variants)))]
            auds.append(A.window_feats(feats, s, n_win))
        face = {"lips": torch.stack(lips)}
        if pixels:
            face["pixels"] = torch.stack(crops).permute(0, 1, 4, 2, 3).float() / 255.0
        return face, torch.stack(auds), torch.as_tensor(ids), torch.as_tensor(starts)


def lip_scale(clips: list[TrainClip]) -> torch.Tensor:
    """Per-feature standard deviation of the lip features over the clips' present frames (floored)."""
    x = torch.cat([c.lips[c.present] for c in clips])
    return x.std(0).clamp(min=1e-3)


def jitter_lips(lips: torch.Tensor, scale: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-chunk amplitude (people open their mouths more or less) and per-frame mesh noise."""
    b = len(lips)
    amp = 0.75 + 0.5 * torch.rand(b, 1, 1, generator=gen)
    return lips * amp + 0.1 * scale * torch.randn(lips.shape, generator=gen)


@dataclass
class FitSettings:
    steps: int = 3000
    batch: int = 32
    learning_rate: float = 1e-3
    eval_every: int = 500
    shift_min: int = 5
    seed: int = 0


def fit(model, train: list[TrainClip], settings: FitSettings, device: torch.device, report=print,
        evaluate=None, on_eval=None) -> list[dict]:
    """Train ``model`` (a LipSyncExpert) on chunks of ``train``; ``evaluate(model) -> dict`` every eval_every
    steps and at the end, ``on_eval(step, metrics)`` after each (e.g. to keep the best). Returns the history."""
    from .datasets import augment
    from .sync import sync_loss

    torch.manual_seed(settings.seed)
    sampler = ChunkSampler(train, seed=settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.learning_rate, total_steps=settings.steps,
                                                pct_start=0.1)
    history, sums, n = [], {}, 0
    model.train()
    for step in range(1, settings.steps + 1):
        face, aud, ids, starts = sampler.sample(settings.batch, pixels=model.uses_pixels)
        face["lips"] = jitter_lips(face["lips"], model.lip_scale.cpu(), gen)  # on the CPU, where batches are made
        if model.uses_pixels:
            face["pixels"] = augment(face["pixels"], gen)
        face = {k: v.to(device) for k, v in face.items()}
        loss, stats = sync_loss(model, face, aud.to(device), ids.to(device), starts.to(device), settings.shift_min)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        for k, v in {"loss": loss.item(), **stats}.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        if step % settings.eval_every == 0 or step == settings.steps:
            row = {"step": step, **{f"train_{k}": round(v / n, 4) for k, v in sums.items()}}
            if evaluate is not None:
                model.eval()
                row.update(evaluate(model))
                model.train()
            history.append(row)
            report(" ".join(f"{k}={v}" for k, v in _flat(row).items()))
            if on_eval is not None:
                on_eval(step, row)
            sums, n = {}, 0
    model.eval()
    return history


def _flat(row: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}, for one-line reports."""
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out
