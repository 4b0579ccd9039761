"""Image quality figures for generated crops and dubbed videos.

SSIM and PSNR (torch) compare a generated crop with the truth. The rest (numpy + OpenCV, on uint8 RGB) say
what SSIM does not: whether the mouth is sharp (``sharpness_ratio``: a blurred mouth can score a fair SSIM),
whether its colours are the person's (``colour_difference``), whether the paste-back seam flickers
(``edge_flicker``) and whether the face box jumps (``box_jitter``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004, 11x11 Gaussian, sigma 1.5) on the luma of (B, 3, H, W) in [0, 1]."""
    w = torch.tensor([0.299, 0.587, 0.114], device=a.device)[None, :, None, None]
    x, y = (a * w).sum(1, keepdim=True), (b * w).sum(1, keepdim=True)
    k = _gauss().to(a.device)
    mu_x, mu_y = F.conv2d(x, k), F.conv2d(y, k)
    sxx = F.conv2d(x * x, k) - mu_x**2
    syy = F.conv2d(y * y, k) - mu_y**2
    sxy = F.conv2d(x * y, k) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean(dim=(1, 2, 3))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of (B, 3, H, W) in [0, 1]."""
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


def laplacian_variance(images: np.ndarray) -> np.ndarray:
    """High-frequency energy of (N, H, W, 3) uint8 RGB images: the variance of the Laplacian of their luma."""
    out = []
    for img in images:
        grey = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY).astype(np.float64)
        out.append(cv2.Laplacian(grey, cv2.CV_64F, ksize=3).var())
    return np.asarray(out)


def sharpness_ratio(generated: np.ndarray, real: np.ndarray) -> float:
    """Mean Laplacian variance of generated images over that of real ones (1 = as sharp; a blur is well below)."""
    return float(laplacian_variance(generated).mean() / max(laplacian_variance(real).mean(), 1e-12))


def colour_difference(generated: np.ndarray, real: np.ndarray) -> float:
    """Mean CIE76 colour difference (Delta E in L*a*b*) between the mean colours of two image sets (N, H, W, 3)
    uint8 RGB: a colour cast on lips and teeth shows here, where per-pixel errors would drown it."""
    def mean_lab(images: np.ndarray) -> np.ndarray:
        mean = images.reshape(-1, 3).mean(0).astype(np.float32) / 255.0
        return cv2.cvtColor(mean[None, None], cv2.COLOR_RGB2LAB)[0, 0]
    return float(np.linalg.norm(mean_lab(generated) - mean_lab(real)))


def edge_flicker(frames: np.ndarray, band: np.ndarray) -> float:
    """Mean absolute frame-to-frame change (0-255 grey levels) inside ``band`` (H, W) bool, over (T, H, W, 3)
    frames. Compare a dub's figure with its source video's: a seam that flickers raises it."""
    grey = np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]).astype(np.float32)
    return float(np.abs(np.diff(grey, axis=0))[:, band].mean()) if len(frames) > 1 and band.any() else 0.0


def box_jitter(squares: np.ndarray) -> float:
    """Median frame-to-frame move of a crop square's centre, as a share of its side. squares: (T, 3) cx, cy,
    side; NaN rows (no face) are skipped."""
    ok = ~np.isnan(squares[:, 0])
    moves = np.linalg.norm(np.diff(squares[:, :2], axis=0), axis=1) / squares[1:, 2]
    both = ok[1:] & ok[:-1]
    return float(np.median(moves[both])) if both.any() else 0.0
