"""How a synthetic person looks: :class:`Appearance`, the numbered looks of
:func:`appearance`, the recoloured and lit person layer, and the backgrounds.

An :class:`Appearance` recolours skin, hair and clothes of the source photo
(:mod:`synclip.synth.source`), flips, stretches, places and lights the person, and picks a
background; :mod:`synclip.synth.render` draws it frame by frame.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from typing import Sequence

import cv2
import numpy as np

from ..errors import ConfigError
from .source import FACE_CENTRE, FACE_WIDTH, SOURCE_SIZE, source_photo

BACKGROUNDS = ("solid", "gradient", "brick", "grass", "gravel", "coffee", "noise")

RGB = tuple[float, float, float]


# ---------------------------------------------------------------------------------------------
# appearance


@dataclass(frozen=True)
class Appearance:
    """How one synthetic person looks.  All colours are RGB in [0, 1].

    skin_gain: per-channel gains on the skin (1, 1, 1 is the photo's pale skin).
    hair_gain: per-channel gains on the hair.
    clothes_hue: hue rotation of clothes (and the suit's ring), degrees.
    clothes_saturation: saturation factor of clothes.
    flip: mirror the person horizontally.
    face_aspect: face width/height stretch (0.85-1.15).
    face_size: face box width as a fraction of the cell height (0.31-0.42: >= 92 px in
        320, after face_aspect); large faces sit lower so the head stays in the frame.
    position: face centre offset (x, y) as fractions of the cell size (about +-0.06).
    background: one of :data:`BACKGROUNDS`; background_colours: two colours it uses;
        background_angle: gradient/texture orientation in degrees; background_seed: its noise.
    light_angle, light_strength: a directional brightness gradient across the person
        (strength 0-0.35); brightness: overall gain; temperature: -1 cool to +1 warm.
    motion: head-motion amount in [0, 1] (1: +-4 px, +-3 % scale, +-3 degrees roll);
        motion_seed: seeds the smooth motion curves.
    lip_colour: colour of the lips; mouth_size: mouth width factor (0.85-1.15).
    """

    skin_gain: RGB = (1.0, 1.0, 1.0)
    hair_gain: RGB = (1.0, 1.0, 1.0)
    clothes_hue: float = 0.0
    clothes_saturation: float = 1.0
    flip: bool = False
    face_aspect: float = 1.0
    face_size: float = 0.38
    position: tuple[float, float] = (0.0, 0.0)
    background: str = "solid"
    background_colours: tuple[RGB, RGB] = ((0.55, 0.58, 0.62), (0.30, 0.32, 0.36))
    background_angle: float = 90.0
    background_seed: int = 0
    light_angle: float = 0.0
    light_strength: float = 0.0
    brightness: float = 1.0
    temperature: float = 0.0
    motion: float = 1.0
    motion_seed: int = 0
    lip_colour: RGB = (0.72, 0.38, 0.40)
    mouth_size: float = 1.0

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ConfigError(f"unknown background {self.background!r}",
                              fix=f"use one of {', '.join(BACKGROUNDS)}")

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Appearance":
        """A random look; every parameter is drawn from ``rng``."""
        tone = float(rng.uniform(0.0, 1.0))
        skin = _skin_gain(tone, rng)
        hair = _HAIR_GAINS[int(rng.integers(len(_HAIR_GAINS)))]
        hair = _jitter(rng, hair, 0.06)
        kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        c0 = tuple(float(x) for x in rng.uniform(0.1, 0.95, 3))
        c1 = tuple(float(x) for x in np.clip(np.asarray(c0) * rng.uniform(0.3, 0.8)
                                             + rng.uniform(-0.1, 0.1, 3), 0.02, 1.0))
        return cls(
            skin_gain=skin,
            hair_gain=hair,
            clothes_hue=round4(rng.uniform(-180.0, 180.0)),
            clothes_saturation=round4(rng.uniform(0.3, 1.2)),
            flip=bool(rng.random() < 0.5),
            face_aspect=round4(rng.uniform(0.87, 1.13)),
            face_size=round4(rng.uniform(0.31, 0.42)),
            position=(round4(rng.uniform(-0.06, 0.06)), round4(rng.uniform(-0.05, 0.05))),
            background=kind,
            background_colours=(_rgb(c0), _rgb(c1)),
            background_angle=round4(rng.uniform(0.0, 360.0)),
            background_seed=int(rng.integers(0, 2**31)),
            light_angle=round4(rng.uniform(0.0, 360.0)),
            light_strength=round4(rng.uniform(0.0, 0.3)),
            brightness=round4(rng.uniform(0.85, 1.12)),
            temperature=round4(rng.uniform(-1.0, 1.0)),
            motion=round4(rng.uniform(0.3, 1.0)),
            motion_seed=int(rng.integers(0, 2**31)),
            lip_colour=_lip_colour(skin, rng),
            mouth_size=round4(rng.uniform(0.88, 1.12)),
        )

    def to_dict(self) -> dict:
        """Plain JSON types (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


def round4(x: float) -> float:
    return round(float(x), 4)


def _rgb(c: Sequence[float]) -> RGB:
    return (round4(c[0]), round4(c[1]), round4(c[2]))


def _jitter(rng: np.random.Generator, c: Sequence[float], amount: float) -> RGB:
    return _rgb(np.asarray(c) * (1.0 + rng.uniform(-amount, amount, 3)))


# Skin-tone gains relative to the photo's pale skin, from pale (0) to deep brown (1).
_SKIN_TONES = np.array([
    (1.03, 1.03, 1.04), (1.00, 0.95, 0.92), (0.92, 0.84, 0.76), (0.84, 0.71, 0.58),
    (0.70, 0.55, 0.43), (0.55, 0.41, 0.32), (0.42, 0.31, 0.25), (0.33, 0.24, 0.20)])
_HAIR_GAINS = ((1.0, 1.0, 1.0), (1.35, 1.25, 1.05), (0.55, 0.48, 0.45), (0.28, 0.26, 0.27),
               (1.25, 0.75, 0.55), (0.75, 0.62, 0.55))
_PHOTO_SKIN = np.array([236, 197, 179]) / 255.0


def _skin_gain(tone: float, rng: np.random.Generator | None = None) -> RGB:
    x = np.clip(tone, 0.0, 1.0) * (len(_SKIN_TONES) - 1)
    i = min(int(x), len(_SKIN_TONES) - 2)
    g = _SKIN_TONES[i] * (1 - (x - i)) + _SKIN_TONES[i + 1] * (x - i)
    if rng is not None:
        g = g * (1.0 + rng.uniform(-0.03, 0.03, 3))
    return _rgb(g)


def _lip_colour(skin_gain: Sequence[float], rng: np.random.Generator | None = None) -> RGB:
    skin = _PHOTO_SKIN * np.asarray(skin_gain)
    lip = skin * np.array([0.86, 0.56, 0.60])
    if rng is not None:
        if rng.random() < 0.15:  # lipstick
            lip = np.array([0.62, 0.10, 0.18]) * rng.uniform(0.8, 1.1)
        else:
            lip = lip * (1.0 + rng.uniform(-0.08, 0.08, 3))
    return _rgb(np.clip(lip, 0.0, 1.0))


def _hand_picked() -> tuple[Appearance, ...]:
    """Appearances 0-7: spread over skin tone, hair, clothes, background, size and lighting."""
    def make(tone, hair, hue, sat, flip, aspect, size, pos, bg, cols, angle, seed, light_a,
             light_s, bright, temp, motion, mouth):
        skin = _skin_gain(tone)
        return Appearance(skin_gain=skin, hair_gain=_HAIR_GAINS[hair], clothes_hue=hue,
                          clothes_saturation=sat, flip=flip, face_aspect=aspect, face_size=size,
                          position=pos, background=bg, background_colours=cols,
                          background_angle=angle, background_seed=seed, light_angle=light_a,
                          light_strength=light_s, brightness=bright, temperature=temp,
                          motion=motion, motion_seed=1000 + seed, lip_colour=_lip_colour(skin),
                          mouth_size=mouth)
    return (
        make(0.05, 0, 0.0, 1.0, False, 1.00, 0.40, (0.0, 0.0), "solid",
             ((0.52, 0.62, 0.74), (0.3, 0.35, 0.45)), 90.0, 1, 30.0, 0.10, 1.0, 0.0, 0.6, 1.0),
        make(0.85, 3, 200.0, 0.8, True, 0.92, 0.36, (0.04, 0.02), "brick",
             ((0.25, 0.12, 0.10), (0.85, 0.55, 0.45)), 0.0, 2, 200.0, 0.25, 1.05, 0.4, 0.8,
             1.05),
        make(0.45, 2, 110.0, 0.9, False, 1.10, 0.41, (-0.04, -0.02), "gradient",
             ((0.95, 0.85, 0.55), (0.55, 0.30, 0.20)), 45.0, 3, 120.0, 0.20, 0.95, 0.6, 1.0,
             0.95),
        make(0.65, 3, -60.0, 0.6, True, 1.02, 0.34, (-0.03, 0.03), "grass",
             ((0.05, 0.20, 0.05), (0.55, 0.80, 0.35)), 0.0, 4, 300.0, 0.15, 1.0, -0.3, 0.5,
             1.10),
        make(0.20, 4, 160.0, 1.1, False, 0.88, 0.38, (0.05, -0.03), "coffee",
             ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), 0.0, 5, 60.0, 0.30, 1.08, -0.6, 0.9, 0.92),
        make(1.00, 3, 40.0, 0.5, True, 1.13, 0.42, (0.0, 0.04), "gravel",
             ((0.15, 0.15, 0.30), (0.75, 0.80, 0.95)), 0.0, 6, 250.0, 0.10, 1.12, 0.2, 0.7,
             1.0),
        make(0.30, 5, -120.0, 1.2, False, 0.95, 0.36, (-0.05, 0.0), "noise",
             ((0.60, 0.20, 0.45), (0.15, 0.45, 0.55)), 0.0, 7, 160.0, 0.25, 0.92, 0.8, 0.8,
             1.08),
        make(0.72, 1, 90.0, 0.4, True, 1.06, 0.42, (0.03, -0.04), "gradient",
             ((0.10, 0.12, 0.16), (0.50, 0.55, 0.60)), 200.0, 8, 90.0, 0.20, 1.0, -0.9, 1.0,
             0.9),
    )


_HAND_PICKED = _hand_picked()


def appearance(index: int) -> Appearance:
    """The look number ``index`` (any int >= 0): 0-7 hand-picked and clearly distinct,
    the rest drawn at random from a generator seeded by the index (deterministic)."""
    index = int(index)
    if index < 0:
        raise ConfigError(f"appearance index must be >= 0, got {index}")
    if index < len(_HAND_PICKED):
        return _HAND_PICKED[index]
    return Appearance.random(np.random.default_rng([0xA77E, index]))


# ---------------------------------------------------------------------------------------------
# the person layer: the source photo recoloured and lit for one look (cached)


@functools.lru_cache(maxsize=32)
def person_layer(app: Appearance) -> np.ndarray:
    """The recoloured, lit person in source coordinates: (512, 512, 4) uint8,
    RGB premultiplied by alpha, alpha in channel 3."""
    src = source_photo()
    # skin and hair masks add up to at most one: blend the gains, so the seam between
    # them gets neither a halo nor a dark line
    gain = (1.0 + src.skin[..., None] * (np.asarray(app.skin_gain, np.float32) - 1.0)
            + src.hair[..., None] * (np.asarray(app.hair_gain, np.float32) - 1.0))
    rgb = src.rgb * gain
    if app.clothes_hue or app.clothes_saturation != 1.0:
        hsv = cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = np.mod(hsv[..., 0] + app.clothes_hue, 360.0)
        hsv[..., 1] = np.clip(hsv[..., 1] * app.clothes_saturation, 0.0, 1.0)
        shifted = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        c = src.clothes[..., None]
        rgb = rgb * (1.0 - c) + shifted * c
    rgb = rgb * _light_map(app, SOURCE_SIZE, FACE_CENTRE, FACE_WIDTH * 1.3)[..., None]
    rgb = rgb * temperature_tint(app)
    rgba = np.empty((SOURCE_SIZE[1], SOURCE_SIZE[0], 4), np.float32)
    rgba[..., :3] = np.clip(rgb, 0.0, 1.0) * src.alpha[..., None]
    rgba[..., 3] = src.alpha
    return np.round(rgba * 255.0).astype(np.uint8)


def _light_map(app: Appearance, size: tuple[int, int], centre: Sequence[float],
               radius: float) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = math.radians(app.light_angle)
    proj = ((xx - centre[0]) * math.cos(a) + (yy - centre[1]) * math.sin(a)) / radius
    return (app.brightness * (1.0 + app.light_strength * np.clip(proj, -1.5, 1.5))).astype(
        np.float32)


def temperature_tint(app: Appearance) -> np.ndarray:
    t = app.temperature
    return np.array([1.0 + 0.07 * t, 1.0, 1.0 - 0.09 * t], np.float32)



# ---------------------------------------------------------------------------------------------
# backgrounds


@functools.lru_cache(maxsize=8)
def _texture(name: str) -> np.ndarray:
    from skimage import data as skdata

    img = getattr(skdata, name)()
    return img.astype(np.float32) / 255.0


def draw_background(app: Appearance, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB background of ``size`` = (W, H), lit like the scene."""
    w, h = size
    rng = np.random.default_rng([0xB6, app.background_seed])
    c0 = np.asarray(app.background_colours[0], np.float32)
    c1 = np.asarray(app.background_colours[1], np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = math.radians(app.background_angle)
    ramp = ((xx - w / 2) * math.cos(a) + (yy - h / 2) * math.sin(a)) / max(w, h) + 0.5
    ramp = np.clip(ramp, 0.0, 1.0)[..., None]
    kind = app.background
    if kind == "solid":
        img = c0 * (1.0 - 0.12 * ramp)
    elif kind == "gradient":
        img = c0 * (1.0 - ramp) + c1 * ramp
    elif kind in ("brick", "grass", "gravel"):
        tex = _texture(kind)
        g = _crop_resize(tex, size, rng, zoom=float(rng.uniform(0.5, 1.0)))
        g = cv2.GaussianBlur(g, (0, 0), 1.2)
        img = c0 * (1.0 - g[..., None]) + c1 * g[..., None]
    elif kind == "coffee":
        img = _crop_resize(_texture("coffee"), size, rng, zoom=float(rng.uniform(0.5, 0.9)))
        img = cv2.GaussianBlur(img, (0, 0), 2.0)
    else:  # noise: smooth coloured blobs
        coarse = rng.random((4, 4, 1)).astype(np.float32)
        fine = rng.random((16, 16, 1)).astype(np.float32)
        g = (0.7 * cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
             + 0.3 * cv2.resize(fine, (w, h), interpolation=cv2.INTER_CUBIC))
        g = np.clip(g, 0.0, 1.0)[..., None]
        img = c0 * (1.0 - g) + c1 * g
    img = img * (0.9 + 0.1 * app.brightness) * temperature_tint(app)
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def _crop_resize(img: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                 zoom: float) -> np.ndarray:
    w, h = size
    ih, iw = img.shape[:2]
    scale = zoom * min(iw / w, ih / h)
    cw, ch = max(8, int(w * scale)), max(8, int(h * scale))
    x0 = int(rng.integers(0, iw - cw + 1))
    y0 = int(rng.integers(0, ih - ch + 1))
    return cv2.resize(np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw]), (w, h),
                      interpolation=cv2.INTER_LINEAR)
