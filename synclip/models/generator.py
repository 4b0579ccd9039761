"""The lip-sync generator (Wav2Lip-style) and its optional quality discriminator.

Input: the target crop with its lower half masked + a reference crop of the same person from another time
(6 channels), and the audio window of the frame (16 audio frames centred on it). Output: the full crop.
A U-Net: the face encoder halves the side per stage down to a few pixels, the audio vector joins at the
bottleneck, and the decoder upsamples with skips from the encoder. The audio encoder's map is flattened, not
averaged, so the vector knows where in the 200-ms window each sound falls (the frame's own sound is the middle).
The two finest decoder stages run on the lower half only (plus a margin): the upper half is never drawn.

Shapes: B batch, S crop side (96/128/192/256), M = 16 audio frames, F audio bins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import audio as A
from .blocks import ConvBlock, encoder_stage, stage_channels

BOTTLENECK_MAX_PX = 6  # stop halving once the side is at most this
LOWER_ONLY_STAGES = 2  # finest decoder stages computed on the lower half only
LOWER_MARGIN_PX = 8  # rows above the middle kept at those stages (beyond the reach of their edge effects)


@dataclass(frozen=True)
class GeneratorDims:
    input_size: int = 96
    base_channels: int = 32
    audio_bins: int = A.N_MELS
    audio_dim: int = 256  # audio vector joined at the bottleneck
    audio_feature: str = "mel"  # what the audio_bins are: mel (log-mel) or mfcc; the input must be of this kind

    def to_dict(self) -> dict:
        return asdict(self)


def num_stages(size: int) -> int:
    n = 0
    while size > BOTTLENECK_MAX_PX:
        size = (size + 1) // 2
        n += 1
    return n


class UpStage(nn.Module):
    """Upsample x2, concatenate the encoder's skip, two convs."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.fuse = ConvBlock(cin + cskip, cout, 3)
        self.refine = ConvBlock(cout, cout, 3, residual=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(self.fuse(torch.cat([x, skip], 1)))


class Generator(nn.Module):
    def __init__(self, dims: GeneratorDims):
        super().__init__()
        self.dims = dims
        n = num_stages(dims.input_size)
        chans = stage_channels(dims.base_channels, n + 1, cap=8 * dims.base_channels)
        self.stem = ConvBlock(6, chans[0], 5)  # (6, S, S) -> (c0, S, S)
        self.down = nn.ModuleList(encoder_stage(chans[i], chans[i + 1]) for i in range(n))
        audio, cin, shape = [], 1, (dims.audio_bins, A.MEL_WINDOW)
        for i, c in enumerate(stage_channels(dims.base_channels, 4)):
            stride = (2, 2) if i % 2 else (2, 1)
            audio.append(encoder_stage(cin, c, stride=stride))
            shape = tuple((side - 1) // k + 1 for side, k in zip(shape, stride))  # 3x3 conv, padding 1
            cin = c
        self.audio_cnn = nn.Sequential(*audio)
        self.audio_proj = nn.Linear(cin * shape[0] * shape[1], dims.audio_dim)
        self.bottleneck = ConvBlock(chans[-1] + dims.audio_dim, chans[-1], 3)
        self.up = nn.ModuleList(UpStage(chans[i + 1], chans[i], chans[i]) for i in reversed(range(n)))
        self.head = nn.Conv2d(chans[0], 3, 1)
        self.to(memory_format=torch.channels_last)  # ~1.3x faster convs on CPU (oneDNN) and on GPU

    def forward(self, faces: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """faces (B, 6, S, S) in [0, 1] (masked target, reference); audio (B, M, F) in [0, 1] -> (B, 3, S, S).

        Only the lower half is drawn: the upper half of the output is the target's own (it was never masked),
        so all capacity goes to the mouth and jaw and paste-back can never shift the eyes."""
        x = self.stem(faces.contiguous(memory_format=torch.channels_last) - 0.5)
        skips = [x]
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        a = self.audio_cnn(audio.transpose(1, 2)[:, None] - 0.5).flatten(1)  # (B, C * f * m)
        a = torch.relu(self.audio_proj(a))[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        x = self.bottleneck(torch.cat([x, a], 1))
        return draw_lower_half(self.up, self.head, x, skips, faces)


def draw_lower_half(up: nn.ModuleList, head: nn.Module, x: torch.Tensor, skips: list[torch.Tensor],
                    faces: torch.Tensor) -> torch.Tensor:
    """The decoder of the U-Nets that redraw a face's lower half (the generator, the renderer): ``up`` stages
    from the bottleneck ``x`` over the encoder's ``skips``, then ``head`` to RGB; the last LOWER_ONLY_STAGES
    work on the lower half only. Returns (B, 3, S, S): the target's own upper half (``faces[:, :3]``, never
    masked) over the drawn lower half."""
    half = faces.shape[-2] // 2
    n, x_top = len(up), 0  # x_top: the row (at x's scale) where x starts
    fine = skips[:LOWER_ONLY_STAGES]  # the skips of the last decoder stages
    even = all(s.shape[-2] % 4 == 0 and s.shape[-2] >= 4 * LOWER_MARGIN_PX for s in fine)
    lower_from = n - LOWER_ONLY_STAGES if even else n  # else (odd or tiny sides) the whole map
    for i, (stage, skip) in enumerate(zip(up, reversed(skips[:-1]))):
        if i >= lower_from:
            # Lower half only, plus a margin beyond the convs' edge effects: this stage's rows from `top`
            # come from x's rows from top / 2 (the stage doubles the side).
            top = skip.shape[-2] // 2 - LOWER_MARGIN_PX
            x, skip = x[:, :, top // 2 - x_top:], skip[:, :, top:]
            x_top = top
        x = stage(x, skip)
    drawn = torch.sigmoid(head(x))[:, :, half - x_top:]
    return torch.cat([faces[:, :3, :half], drawn], dim=2)


def mask_lower_half(crops: torch.Tensor) -> torch.Tensor:
    """(..., 3, S, S) -> the same with the lower half zeroed (what the generator must redraw)."""
    out = crops.clone()
    out[..., crops.shape[-2] // 2:, :] = 0.0
    return out


class Discriminator(nn.Module):
    """Patch discriminator on the lower half: real crops vs generated ones (the optional quality loss)."""

    def __init__(self, size: int, base_channels: int = 32):
        super().__init__()
        layers, cin = [], 3
        for c in stage_channels(base_channels, 4):
            layers += [nn.Conv2d(cin, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            cin = c
        layers.append(nn.Conv2d(cin, 1, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """crops (B, 3, S, S) -> patch logits (B, P)."""
        s = crops.shape[-2]
        return self.net(crops[:, :, s // 2:, :] - 0.5).flatten(1)
