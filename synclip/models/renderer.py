"""The presenter renderer: draws the lower face of a frame in a mouth shape given by face-mesh landmarks.

Stage (b) of the two-stage presenter (stage (a), ``lips_audio.AudioToLips``, turns speech into the shape).
Input: the target crop with its lower half, or only paste-back's part of it, blanked (``blanked``: what is left
gives pose, light, the upper face), a reference crop of the same person from another frame (what their lips,
teeth and skin look like) and the shape map of the target's mouth (``render.shape_map``: lip outlines, mouth
opening and jaw line rasterised at crop resolution, so the shape stays aligned with the pixels it governs).
Output: the full crop, what was not blanked the target's own.

A U-Net as the generator's (``models.generator``) without the audio path; the finest decoder stages run on
the lower half only. Shapes: B batch, S crop side, K shape-map channels.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..face import lower_face_mask
from .blocks import ConvBlock, encoder_stage, stage_channels
from .generator import UpStage, draw_lower_half, num_stages

SHAPE_CHANNELS = 3  # lip outlines, mouth opening (filled inner lip), jaw line
PASTE_BLANK_FLOOR = 1e-3  # paste-mask weights above this count as pasted (its blurred rim included)


@dataclass(frozen=True)
class RendererDims:
    input_size: int = 128
    base_channels: int = 16  # 16 trains on one CPU core at 128 px (about 0.1 s per crop forward + backward)
    shape_channels: int = SHAPE_CHANNELS
    # What of the target the renderer does not see: "lower_half" (the first renderer) or "paste" (only where
    # paste-back's mask, face.lower_face_mask, reaches: the background and far cheeks beside it stay visible,
    # so it draws only what a dub shows). See blanked.
    input_mask: str = "lower_half"

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=8)
def blanked(size: int, input_mask: str = "lower_half") -> torch.Tensor:
    """(size, size) bool: the target pixels the renderer does not see (``RendererDims.input_mask``). "paste":
    wherever paste-back's mask has any weight in the lower half; what lies outside it is never replaced by a
    dub, so the renderer may as well see it (and need not guess the background). Cached: a tensor shared by
    every caller, not to be written to."""
    out = torch.zeros(size, size, dtype=torch.bool)
    if input_mask == "lower_half":
        out[size // 2:] = True
    elif input_mask == "paste":
        out[size // 2:] = torch.from_numpy(lower_face_mask(size)[size // 2:] > PASTE_BLANK_FLOOR)
    else:
        raise ValueError(f"unknown renderer input_mask {input_mask!r} (lower_half or paste)")
    return out


class Renderer(nn.Module):
    def __init__(self, dims: RendererDims):
        super().__init__()
        self.dims = dims
        n = num_stages(dims.input_size)
        chans = stage_channels(dims.base_channels, n + 1, cap=8 * dims.base_channels)
        self.stem = ConvBlock(6 + dims.shape_channels, chans[0], 5)  # (6 + K, S, S) -> (c0, S, S)
        self.down = nn.ModuleList(encoder_stage(chans[i], chans[i + 1]) for i in range(n))
        self.bottleneck = ConvBlock(chans[-1], chans[-1], 3, residual=True)
        self.up = nn.ModuleList(UpStage(chans[i + 1], chans[i], chans[i]) for i in reversed(range(n)))
        self.head = nn.Conv2d(chans[0], 3, 1)
        self.to(memory_format=torch.channels_last)

    def forward(self, faces: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        """faces (B, 6, S, S) in [0, 1] (masked target, reference); shape (B, K, S, S) in [0, 1] -> (B, 3, S, S)."""
        x = torch.cat([faces - 0.5, shape], 1).contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        skips = [x]
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        x = self.bottleneck(x)
        out = draw_lower_half(self.up, self.head, x, skips, faces)  # as the generator draws
        if self.dims.input_mask == "lower_half":
            return out
        # Where the target was seen, it is the answer: only the blanked part is drawn.
        return torch.where(blanked(out.shape[-1], self.dims.input_mask).to(out.device), out, faces[:, :3])
