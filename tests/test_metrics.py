"""The quality figures that say what SSIM does not: sharpness, colour, seam flicker, box jitter."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from synclip.metrics import box_jitter, colour_difference, edge_flicker, psnr, sharpness_ratio, ssim


def texture(seed: int = 0, n: int = 4, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, size // 4, size // 4, 3)).astype(np.uint8)
    return np.stack([cv2.resize(b, (size, size), interpolation=cv2.INTER_CUBIC) for b in base])


def test_blur_lowers_sharpness_far_more_than_ssim():
    real = texture()
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in real])
    assert abs(sharpness_ratio(real, real) - 1.0) < 1e-9
    ratio = sharpness_ratio(blurred, real)
    t = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    assert ratio < 0.3  # the blur is counted ...
    assert float(ssim(t(blurred), t(real)).mean()) > ratio  # ... where SSIM still gives it a fair figure
    assert float(psnr(t(real), t(real)).mean()) > 90


def test_colour_difference_sees_a_cast_and_ignores_a_shuffle():
    real = texture(1)
    shuffled = real[:, ::-1].copy()  # same colours, other places
    cast = np.clip(real.astype(int) + [25, 0, 0], 0, 255).astype(np.uint8)  # redder
    assert colour_difference(shuffled, real) < 0.5
    assert colour_difference(cast, real) > 5.0


def test_edge_flicker_counts_change_only_inside_the_band():
    frames = np.repeat(texture(2, n=1), 6, 0)
    band = np.zeros((64, 64), bool)
    band[20:30] = True
    assert edge_flicker(frames, band) == 0.0
    flick = frames.copy()
    flick[1::2, 20:30] = 255 - flick[1::2, 20:30]
    moved_outside = frames.copy()
    moved_outside[1::2, 40:] = 0
    assert edge_flicker(flick, band) > 50
    assert edge_flicker(moved_outside, band) == 0.0


def test_box_jitter_is_the_move_per_side_and_skips_missing_frames():
    still = np.tile([100.0, 100.0, 50.0], (10, 1))
    shaky = still.copy()
    shaky[1::2, 0] += 5  # 5 px on a 50 px side, every frame
    shaky[4] = np.nan
    assert box_jitter(still) == 0.0
    assert abs(box_jitter(shaky) - 0.1) < 1e-9
