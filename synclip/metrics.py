"""Image quality figures for generated crops: SSIM and PSNR (torch, no extra dependency)."""

from __future__ import annotations

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
