"""Synthetic talking-head clips with exact lip-sync ground truth.

One photo (scikit-image's astronaut, shipped in its wheel) becomes many distinct people:
an :class:`Appearance` recolours skin, hair and clothes, flips, stretches, places and
lights the person, puts them in front of a new background and moves the head slightly.
The real lips are painted out once; every frame draws a new mouth whose opening and
width follow :func:`synclip.voice.mouth_track` of the same phone segments that
:func:`synclip.voice.synthesize` speaks, so mouth and voice agree by construction.

Files of a clip ``NAME`` (see :func:`make_clip`): ``videos/NAME.mp4`` (H.264 + AAC),
``audios/NAME.wav`` (16 kHz mono) and ``truth/NAME.json``.

Sign convention (syncnet_python's): ``offset_frames = K > 0`` means the audio leads the
video by K frames: the audio at time t carries the sound the mouth makes at t + K/25, so
the sound of video frame v is in the audio at frame v - K.

Timing: video frame v covers ``[v/25, (v+1)/25)`` and shows the mouth at its middle,
``(v + 0.5)/25`` (truth key ``mouth_phase``), the instant audio samples
``[640 v, 640 (v+1))`` are centred on; phone times in the truth are video times.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from . import voice
from .audio import SAMPLE_RATE_HZ, VIDEO_FPS
from .errors import ConfigError
from .voice import Segment, Speaker

# ---------------------------------------------------------------------------------------------
# Measurements of skimage.data.astronaut() (512 x 512), taken once during development with
# mediapipe 0.10.21 and stored here so that nothing runs a model at import time:
# * landmarks: mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=True,
#   refine_landmarks=True) on the RGB image, pixel = landmark * 512;
# * face box: mediapipe.solutions.face_detection.FaceDetection(model_selection=0) relative
#   bounding box * 512 (model_selection=1 gives 173.7, 67.8, 277.6, 171.7);
# * person outline: mediapipe.solutions.selfie_segmentation (model 0) mask > 0.5, largest
#   contour, cv2.approxPolyDP(eps=2 px); the helmet on the table (bottom right) is cut off
#   by hand along the edge of the suit.
# tests/test_synth.py re-measures the mouth and the face box.
SOURCE_SIZE = (512, 512)  # (width, height)
#: Midpoint of the inner-lip landmarks 13 and 14: where the lips meet when closed.
MOUTH_CENTRE = (223.3, 146.7)
#: Distance between the mouth corners, landmarks 61 (201.8, 139.2) and 291 (245.0, 141.0).
MOUTH_WIDTH = 43.2
#: BlazeFace (model 0) box (x0, y0, x1, y1): the face box that the truth files report.
FACE_BOX = (177.6, 82.9, 272.9, 178.2)
#: Chin (landmark 152) and nose tip (landmark 1).
CHIN = (221.3, 177.4)
NOSE_TIP = (223.4, 130.0)
#: Top of the hair (from the person outline).
HEAD_TOP_Y = 15.0
#: Lower edge of the fringe across the forehead, read by eye off a 6x zoom of the photo.
HAIRLINE = ((178, 90), (182, 86), (186, 82), (193, 80), (200, 79), (210, 78), (220, 78),
            (230, 79), (240, 80), (248, 81), (255, 81), (260, 81), (264, 82), (270, 88))
#: Face oval, landmarks 10, 338, ..., 109 (mediapipe FACEMESH_FACE_OVAL in order).
FACE_OVAL = (
    (226, 72), (239, 73), (250, 75), (259, 78), (265, 84), (268, 91), (270, 98), (271, 107),
    (270, 115), (269, 124), (268, 134), (265, 144), (261, 153), (256, 159), (249, 165),
    (244, 170), (238, 174), (230, 177), (221, 177), (212, 176), (205, 172), (200, 167),
    (195, 162), (189, 155), (185, 148), (182, 139), (180, 129), (179, 119), (179, 110),
    (180, 101), (181, 93), (183, 86), (187, 79), (193, 75), (203, 72), (214, 71))
#: Outer lip contour, landmarks 61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321,
#: 405, 314, 17, 84, 181, 91, 146: painted out (inpainted) before any mouth is drawn.
LIPS_OUTER = (
    (201.8, 139.2), (204.0, 139.0), (207.2, 139.0), (211.2, 139.1), (217.1, 139.2),
    (223.6, 140.5), (230.2, 139.7), (236.1, 140.0), (240.0, 140.2), (242.9, 140.5),
    (245.0, 141.0), (242.5, 145.0), (239.2, 148.9), (234.7, 152.2), (229.2, 154.2),
    (222.7, 154.6), (216.2, 153.5), (210.8, 151.1), (206.7, 147.4), (203.9, 143.4))
PERSON_OUTLINE = (
    (198, 24), (188, 35), (164, 50), (154, 64), (156, 102), (180, 130), (183, 151), (180, 154),
    (164, 154), (141, 163), (137, 162), (118, 187), (114, 204), (97, 217), (85, 231), (72, 238),
    (44, 283), (27, 342), (23, 381), (17, 395), (8, 401), (10, 415), (5, 419), (4, 426),
    (0, 427), (0, 511), (372, 511), (372, 345), (367, 339), (366, 309), (369, 291),
    (356, 296), (339, 260), (307, 234), (291, 204), (273, 187), (262, 182), (257, 174),
    (258, 163), (267, 145), (293, 115), (301, 96), (299, 68), (289, 43), (275, 30), (238, 15))

FACE_CENTRE = ((FACE_BOX[0] + FACE_BOX[2]) / 2, (FACE_BOX[1] + FACE_BOX[3]) / 2)
FACE_WIDTH = FACE_BOX[2] - FACE_BOX[0]

DEFAULT_FRAME_SIZE = (320, 320)  # (width, height) of a one-face clip
DEFAULT_FRAME_SIZE_2 = (640, 320)  # of a two-face clip: two 320 x 320 cells side by side
#: Segments extend this far beyond both ends of a clip, so audio shifted by up to
#: +-20 frames is still speech (larger offsets reach into silence).
MARGIN_S = 0.8
BACKGROUNDS = ("solid", "gradient", "brick", "grass", "gravel", "coffee", "noise")

_REF_CELL = 320.0  # motion amplitudes are in pixels of a 320-pixel-high cell
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

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
            clothes_hue=_r(rng.uniform(-180.0, 180.0)),
            clothes_saturation=_r(rng.uniform(0.3, 1.2)),
            flip=bool(rng.random() < 0.5),
            face_aspect=_r(rng.uniform(0.87, 1.13)),
            face_size=_r(rng.uniform(0.31, 0.42)),
            position=(_r(rng.uniform(-0.06, 0.06)), _r(rng.uniform(-0.05, 0.05))),
            background=kind,
            background_colours=(_rgb(c0), _rgb(c1)),
            background_angle=_r(rng.uniform(0.0, 360.0)),
            background_seed=int(rng.integers(0, 2**31)),
            light_angle=_r(rng.uniform(0.0, 360.0)),
            light_strength=_r(rng.uniform(0.0, 0.3)),
            brightness=_r(rng.uniform(0.85, 1.12)),
            temperature=_r(rng.uniform(-1.0, 1.0)),
            motion=_r(rng.uniform(0.3, 1.0)),
            motion_seed=int(rng.integers(0, 2**31)),
            lip_colour=_lip_colour(skin, rng),
            mouth_size=_r(rng.uniform(0.88, 1.12)),
        )

    def to_dict(self) -> dict:
        """Plain JSON types (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


def _r(x: float) -> float:
    return round(float(x), 4)


def _rgb(c: Sequence[float]) -> RGB:
    return (_r(c[0]), _r(c[1]), _r(c[2]))


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
# the source photo: painted-out lips, skin / hair / clothes / person masks (computed once)


@dataclass(frozen=True)
class _Source:
    rgb: np.ndarray  # (512, 512, 3) float32 in [0, 1], lips inpainted
    skin: np.ndarray  # (512, 512) float32 soft masks in [0, 1]
    hair: np.ndarray
    clothes: np.ndarray
    alpha: np.ndarray


def _poly_mask(points: Sequence[Sequence[float]], size: tuple[int, int] = SOURCE_SIZE,
               ) -> np.ndarray:
    m = np.zeros((size[1], size[0]), np.uint8)
    pts = np.round(np.asarray(points, np.float64) * 16).astype(np.int32)
    cv2.fillPoly(m, [pts], 255, cv2.LINE_AA, 4)
    return m


@functools.lru_cache(maxsize=1)
def _source() -> _Source:
    from skimage import data as skdata

    img = skdata.astronaut()
    h, w = img.shape[:2]
    if (w, h) != SOURCE_SIZE:
        raise RuntimeError(f"unexpected astronaut image size {w}x{h}")
    # paint out the real (smiling, open) lips
    lips = _poly_mask(LIPS_OUTER)
    lips = cv2.dilate((lips > 0).astype(np.uint8) * 255,
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    img = cv2.inpaint(img, lips, 6, cv2.INPAINT_TELEA)
    rgb = img.astype(np.float32) / 255.0

    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)  # H 0-180, S, V 0-255
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]
    # Skin, inside the face oval and the neck: below the hairline on the forehead; at the
    # temples only pixels as light and unsaturated as skin; on the neck only skin hues
    # (not the black collar or the purple ring); elsewhere anything not black.  In the
    # eyes, everything but the eye whites and irises.  Specular highlights are skin.
    hairline = np.interp(np.arange(w), [p[0] for p in HAIRLINE], [p[1] for p in HAIRLINE])
    forehead_hair = (rows < hairline[None, :]) & (cols >= HAIRLINE[0][0]) & (
        cols <= HAIRLINE[-1][0])
    temples = (rows < 150) & ((cols < 188) | (cols > 262))
    temple_skin = np.clip((130.0 - sat) / 15.0, 0, 1) * np.clip((val - 115.0) / 20.0, 0, 1)
    skin_hue = (((hue <= 24) | (hue >= 165)) * np.clip((val - 40.0) / 25.0, 0, 1))
    skin_colour = np.where(rows >= 150, skin_hue, (val >= 45).astype(np.float32))
    skin_colour = np.where(temples, temple_skin, skin_colour)
    skin_colour = np.where(forehead_hair, 0.0, skin_colour)
    # whatever the hairline says, light unsaturated skin hues near the hair are skin
    clear_skin = (((hue <= 14) | (hue >= 170)) & (sat < 100) & (val > 165)).astype(np.float32)
    skin_colour = np.where(forehead_hair | temples, np.maximum(skin_colour, clear_skin),
                           skin_colour)
    eyes = np.zeros((h, w), np.uint8)
    for (x0, y0), (x1, y1) in (((195.2, 100.9), (213.3, 103.7)),
                               ((237.0, 104.9), (255.8, 104.3))):
        cv2.ellipse(eyes, (round((x0 + x1) / 2), round((y0 + y1) / 2)),
                    (round(abs(x1 - x0) / 2) + 3, 6), 0, 0, 360, 1, -1)
    eyeball = (eyes > 0) & (((sat < 50) & (val > 110) & (rows < 106)) | (val < 100))
    skin_colour = np.where(eyes > 0, (~eyeball).astype(np.float32), skin_colour)
    oval = _poly_mask(FACE_OVAL).astype(np.float32) / 255.0
    oval = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    neck = _poly_mask(((186, 140), (262, 140), (258, 176), (250, 192), (195, 192),
                       (186, 180))).astype(np.float32) / 255.0
    region = np.maximum(oval, neck)
    skin = cv2.GaussianBlur(skin_colour.astype(np.float32), (0, 0), 1.0) * region
    skin = np.maximum(skin, cv2.GaussianBlur(lips.astype(np.float32) / 255.0, (0, 0), 2.0))
    skin = np.clip(skin, 0.0, 1.0)

    alpha = _poly_mask(PERSON_OUTLINE).astype(np.float32) / 255.0
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
    head = (((cols - 226) / 80.0) ** 2 + ((rows - 95) / 88.0) ** 2 <= 1.0).astype(np.float32)
    head = cv2.GaussianBlur(head, (0, 0), 4.0)
    # hair: the rest of the head above the jaw, so that every head pixel gets the skin
    # gain, the hair gain or a mix adding up to one (the eyeballs keep their colours)
    eyeball_soft = cv2.GaussianBlur(eyeball.astype(np.float32), (0, 0), 0.8)
    above_jaw = np.clip((155.0 - rows) / 10.0, 0.0, 1.0)
    hair = head * alpha * (1.0 - skin) * (1.0 - eyeball_soft) * above_jaw
    clothes = np.clip(alpha - head, 0.0, 1.0) * (1.0 - skin)
    return _Source(rgb=rgb, skin=skin, hair=hair, clothes=clothes, alpha=alpha)


@functools.lru_cache(maxsize=32)
def _person_layer(app: Appearance) -> np.ndarray:
    """The recoloured, lit person in source coordinates: (512, 512, 4) uint8,
    RGB premultiplied by alpha, alpha in channel 3."""
    src = _source()
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
    rgb = rgb * _temperature(app)
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


def _temperature(app: Appearance) -> np.ndarray:
    t = app.temperature
    return np.array([1.0 + 0.07 * t, 1.0, 1.0 - 0.09 * t], np.float32)


# ---------------------------------------------------------------------------------------------
# backgrounds


@functools.lru_cache(maxsize=8)
def _texture(name: str) -> np.ndarray:
    from skimage import data as skdata

    img = getattr(skdata, name)()
    return img.astype(np.float32) / 255.0


def _background(app: Appearance, size: tuple[int, int]) -> np.ndarray:
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
    img = img * (0.9 + 0.1 * app.brightness) * _temperature(app)
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


# ---------------------------------------------------------------------------------------------
# one face: placement, head motion, mouth drawing


def _motion_curves(app: Appearance, num_frames: int, cell_h: int,
                   rng: np.random.Generator | None) -> np.ndarray:
    """(num_frames, 4): dx px, dy px, scale factor - 1, roll degrees, as smooth curves."""
    if rng is None:
        rng = np.random.default_rng([0x40D, app.motion_seed])
    t = np.arange(num_frames) / float(VIDEO_FPS)
    px = 4.0 * cell_h / _REF_CELL * app.motion
    out = np.empty((num_frames, 4))
    for j, amp in enumerate((px, px, 0.03 * app.motion, 3.0 * app.motion)):
        f = rng.uniform(0.08, 0.45, 3)
        ph = rng.uniform(0, 2 * np.pi, 3)
        a = rng.uniform(0.4, 1.0, 3)
        a /= a.sum()
        out[:, j] = amp * (a[:, None] * np.sin(2 * np.pi * f[:, None] * t + ph[:, None])).sum(0)
    return out


class _Face:
    """One person in a cell (a sub-rectangle of the frame) with per-frame transforms."""

    def __init__(self, app: Appearance, cell: tuple[int, int, int, int], num_frames: int,
                 rng: np.random.Generator | None = None):
        self.app = app
        self.cx0, self.cy0, self.cw, self.ch = cell
        s = app.face_size * self.ch / FACE_WIDTH
        self.sx = s * math.sqrt(app.face_aspect)
        self.sy = s / math.sqrt(app.face_aspect)
        fx = -1.0 if app.flip else 1.0
        cx = self.cw * (0.5 + app.position[0])
        # keep the whole head (hair included) in the cell: a cut-off head top makes
        # BlazeFace's full-range model miss large faces
        cy = max(self.ch * (0.46 + app.position[1]),
                 0.05 * self.ch + self.sy * (FACE_CENTRE[1] - HEAD_TOP_Y))
        # source -> cell, before head motion
        self.base = np.array([[fx * self.sx, 0.0, cx - fx * self.sx * FACE_CENTRE[0]],
                              [0.0, self.sy, cy - self.sy * FACE_CENTRE[1]]])
        self.face_centre_cell = (cx, cy)
        self.motion = _motion_curves(app, num_frames, self.ch, rng)
        self.num_frames = num_frames
        self.layer = _person_layer(app)
        # colours of the mouth, lit like the skin around it
        proj_x = (MOUTH_CENTRE[0] - FACE_CENTRE[0]) / (FACE_WIDTH * 1.3)
        proj_y = (MOUTH_CENTRE[1] - FACE_CENTRE[1]) / (FACE_WIDTH * 1.3)
        a = math.radians(app.light_angle)
        light = app.brightness * (1.0 + app.light_strength * (proj_x * math.cos(a)
                                                              + proj_y * math.sin(a)))
        tint = _temperature(app) * light
        self.lip = _u8(np.asarray(app.lip_colour) * tint)
        self.lip_upper = _u8(np.asarray(app.lip_colour) * tint * 0.85)
        self.lip_line = _u8(np.asarray(app.lip_colour) * tint * 0.42)
        self.lip_edge = _u8(np.asarray(app.lip_colour) * tint * 0.8)
        self.lip_hi = _u8(np.minimum(np.asarray(app.lip_colour) * 1.1 + 0.02, 1.0) * tint)
        self.cavity = _u8(np.array([0.10, 0.03, 0.035]) * tint)
        self.tongue = _u8(np.array([0.50, 0.22, 0.25]) * tint)
        self.teeth = _u8(np.array([0.86, 0.84, 0.78]) * tint)

    def matrix(self, k: int) -> np.ndarray:
        """2x3 source -> cell affine of frame ``k`` (head motion about the face centre)."""
        dx, dy, ds, roll = self.motion[min(k, self.num_frames - 1)]
        cx, cy = self.face_centre_cell
        m = cv2.getRotationMatrix2D((cx, cy), -roll, 1.0 + ds)
        m[0, 2] += dx
        m[1, 2] += dy
        full = np.vstack([m, [0, 0, 1]]) @ np.vstack([self.base, [0, 0, 1]])
        return full[:2]

    def geometry(self, k: int) -> tuple[list[float], list[float]]:
        """Face box (x0, y0, x1, y1) and mouth centre (x, y) of frame ``k``, frame pixels."""
        m = self.matrix(k)
        x0, y0, x1, y1 = FACE_BOX
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]]) @ m.T
        mouth = np.array([MOUTH_CENTRE[0], MOUTH_CENTRE[1], 1.0]) @ m.T
        box = [corners[:, 0].min() + self.cx0, corners[:, 1].min() + self.cy0,
               corners[:, 0].max() + self.cx0, corners[:, 1].max() + self.cy0]
        return box, [mouth[0] + self.cx0, mouth[1] + self.cy0]

    def draw(self, frame: np.ndarray, k: int, opening: float, width: float) -> None:
        """Composite this person over ``frame`` (the background, modified in place) and
        draw the mouth of frame ``k``."""
        m = self.matrix(k)
        cell = frame[self.cy0:self.cy0 + self.ch, self.cx0:self.cx0 + self.cw]
        warped = cv2.warpAffine(self.layer, m, (self.cw, self.ch), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        alpha = warped[..., 3]
        inv = cv2.merge([255 - alpha] * 3)
        cell[...] = cv2.add(warped[..., :3], cv2.multiply(cell, inv, scale=1.0 / 255.0))
        self._draw_mouth(cell, m, opening, width)

    def _draw_mouth(self, img: np.ndarray, m: np.ndarray, opening: float, width: float) -> None:
        opening = float(np.clip(opening, 0.0, 1.0))
        width = float(np.clip(width, 0.0, 1.0))
        # local mouth frame: unit vectors of the source x / y axes in the cell
        ux = m[:, 0] * (-1.0 if self.app.flip else 1.0)  # keeps "right" = image right
        uy = m[:, 1]
        centre = m @ np.array([MOUTH_CENTRE[0], MOUTH_CENTRE[1], 1.0])
        sx = float(np.hypot(*m[:, 0]))
        w0 = MOUTH_WIDTH * self.app.mouth_size  # mouth width in source pixels
        hw = 0.5 * w0 * (0.62 + 0.5 * width)  # half width of the lips
        hwi = hw * 0.86  # half width of the opening
        cav = opening * 0.5 * w0  # height of the opening
        up, down = 0.3 * cav, 0.7 * cav  # the jaw carries the lower lip further
        tu, tl = 0.12 * w0, 0.16 * w0  # lip thickness

        # jaw drop: pull the chin down with the lower lip (before the mouth is drawn)
        jaw_px = down * 0.8 * float(np.hypot(*m[:, 1]))
        if jaw_px > 0.25:
            self._jaw(img, m, jaw_px, w0 * sx)

        n = 25
        x = np.linspace(-1.0, 1.0, n)
        e = np.sqrt(np.clip(1.0 - x * x, 0.0, 1.0))
        # outer edges of the lips (x in source px relative to the mouth centre)
        xo = x * hw
        bow = 1.0 - 0.28 * np.exp(-(x / 0.12) ** 2)  # cupid's bow dip in the middle
        top = -up * _inner(xo, hwi) - tu * (0.35 + 0.65 * e) * bow
        bottom = down * _inner(xo, hwi) + tl * (0.3 + 0.7 * e)
        # inner edges (the opening)
        xi = x * hwi
        inner_top = -up * e
        inner_bottom = down * e

        def pts(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
            p = centre[None, :] + xs[:, None] * ux[None, :] + ys[:, None] * uy[None, :]
            return np.round(p * 16.0).astype(np.int32)

        def fill(poly: np.ndarray, colour: tuple[int, int, int]) -> None:
            cv2.fillPoly(img, [poly], colour, cv2.LINE_AA, 4)

        left, right, zero = np.array([-hw]), np.array([hw]), np.zeros(1)
        # both lips as one shape, then the (darker) upper lip over it
        outer = np.concatenate([pts(xo, top), pts(xo[::-1], bottom[::-1])])
        fill(outer, self.lip)
        upper = np.concatenate([pts(xo, top), pts(right, zero),
                                pts(xi[::-1], inner_top[::-1]), pts(left, zero)])
        fill(upper, self.lip_upper)
        # highlight on the lower lip
        hx = x * hw * 0.45
        hl_c = down + tl * 0.55
        hl = np.concatenate([pts(hx, hl_c - 0.16 * tl * e), pts(hx[::-1], hl_c + 0.12 * tl * e)])
        fill(hl, self.lip_hi)
        # a darker border around the lips, and the line where they meet (seen when closed)
        cv2.polylines(img, [outer], True, self.lip_edge, 1, cv2.LINE_AA, 4)
        line = pts(np.concatenate([[-hw], xi, [hw]]), np.zeros(n + 2))
        thick = max(1, int(round(0.035 * w0 * sx)))
        cv2.polylines(img, [line], False, self.lip_line, thick, cv2.LINE_AA, 4)
        if cav * sx > 0.15:
            cavity = np.concatenate([pts(xi, inner_top), pts(xi[::-1], inner_bottom[::-1])])
            fill(cavity, self.cavity)
            if opening > 0.45:  # tongue: a low bump on the floor of a wide opening
                t = min((opening - 0.45) / 0.4, 1.0) * 0.3 * down
                tx = xi * 0.72
                floor = down * _inner(tx, hwi) * 0.97
                bump = t * np.sqrt(np.clip(1.0 - (tx / (0.72 * hwi)) ** 2, 0.0, 1.0))
                fill(np.concatenate([pts(tx, floor - bump), pts(tx[::-1], floor[::-1])]),
                     self.tongue)
            if opening > 0.28:  # upper teeth: a light band under the upper lip
                th = min((opening - 0.28) / 0.35, 1.0) * min(0.35 * cav, 0.11 * w0)
                tx = xi * 0.8
                tt = -up * np.sqrt(np.clip(1.0 - (tx / hwi) ** 2, 0.0, 1.0))
                teeth = np.concatenate([pts(tx, tt), pts(tx[::-1], (tt + th * e)[::-1])])
                fill(teeth, self.teeth)

    def _jaw(self, img: np.ndarray, m: np.ndarray, jaw_px: float, mouth_px: float) -> None:
        """Move the chin region down by ``jaw_px`` (smoothly fading out at the sides and
        below the chin) with cv2.remap on a small window."""
        mouth = m @ np.array([MOUTH_CENTRE[0], MOUTH_CENTRE[1], 1.0])
        chin = m @ np.array([CHIN[0], CHIN[1], 1.0])
        half_w = 1.05 * mouth_px
        top = mouth[1] - 0.1 * mouth_px
        full = mouth[1] + 0.3 * mouth_px
        chin_y = max(chin[1], full + 1.0)
        bottom = chin_y + 0.6 * mouth_px
        h, w = img.shape[:2]
        x0 = int(max(0, math.floor(mouth[0] - half_w)))
        x1 = int(min(w, math.ceil(mouth[0] + half_w)))
        y0, y1 = int(max(0, math.floor(top))), int(min(h, math.ceil(bottom)))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return
        xs = np.arange(x0, x1, dtype=np.float32)
        ys = np.arange(y0, y1, dtype=np.float32)
        hx = 0.5 + 0.5 * np.cos(np.pi * np.clip((xs - mouth[0]) / half_w, -1.0, 1.0))
        vy = np.interp(ys, [top, full, chin_y, bottom], [0.0, 1.0, 1.0, 0.0]).astype(np.float32)
        d = jaw_px * vy[:, None] * hx[None, :]
        map_x = np.broadcast_to(xs[None, :], d.shape).astype(np.float32)
        map_y = (ys[:, None] - d).astype(np.float32)
        roi = img[y0:y1, x0:x1]
        # sample from the whole image so the window edges read real pixels
        roi[...] = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)


def _inner(x: np.ndarray, hwi: float) -> np.ndarray:
    return np.sqrt(np.clip(1.0 - (x / hwi) ** 2, 0.0, 1.0))


def _u8(c: np.ndarray) -> tuple[int, int, int]:
    c = np.clip(np.asarray(c, np.float64) * 255.0, 0, 255)
    return (int(round(c[0])), int(round(c[1])), int(round(c[2])))


def _check_frame_size(frame_size: Sequence[int], faces: int = 1) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in frame_size)
    except (TypeError, ValueError):
        raise ConfigError(f"frame_size must be (width, height), got {frame_size!r}") from None
    if w % 2 or h % 2 or h < 96 or w < 96 * faces:
        raise ConfigError(f"frame_size {w}x{h} is unusable",
                          fix=f"use even numbers, height >= 96 and width >= {96 * faces}")
    return w, h


def render_frames(app: Appearance, opening: Sequence[float], width: Sequence[float],
                  frame_size: Sequence[int] = DEFAULT_FRAME_SIZE,
                  rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Frames of one person whose mouth follows ``opening`` and ``width`` (per frame, [0, 1]).

    Yields (H, W, 3) uint8 RGB arrays, ``frame_size`` = (W, H) (even numbers).  Head motion
    comes from ``app.motion_seed`` unless ``rng`` is given; :func:`face_geometry` with the
    same arguments gives the face boxes and mouth centres of these frames.
    """
    w, h = _check_frame_size(frame_size)
    opening = np.asarray(opening, np.float64)
    width = np.asarray(width, np.float64)
    if opening.shape != width.shape or opening.ndim != 1:
        raise ValueError("opening and width must be 1-D arrays of the same length")
    face = _Face(app, (0, 0, w, h), len(opening), rng)
    bg = _background(app, (w, h))
    for k in range(len(opening)):
        frame = bg.copy()
        face.draw(frame, k, opening[k], width[k])
        yield frame


def face_geometry(app: Appearance, num_frames: int,
                  frame_size: Sequence[int] = DEFAULT_FRAME_SIZE,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Face boxes ``(num_frames, 4)`` (x0, y0, x1, y1) and mouth centres ``(num_frames, 2)``
    in frame pixels, of the frames :func:`render_frames` draws with the same arguments."""
    w, h = _check_frame_size(frame_size)
    face = _Face(app, (0, 0, w, h), int(num_frames), rng)
    geo = [face.geometry(k) for k in range(int(num_frames))]
    return (np.array([g[0] for g in geo], np.float64).reshape(-1, 4),
            np.array([g[1] for g in geo], np.float64).reshape(-1, 2))


def _render_scene(faces: Sequence[_Face], tracks: Sequence[tuple[np.ndarray, np.ndarray]],
                  background: np.ndarray, num_frames: int) -> Iterator[np.ndarray]:
    for k in range(num_frames):
        frame = background.copy()
        for face, (o, w) in zip(faces, tracks):
            face.draw(frame, k, float(o[k]), float(w[k]))
        yield frame


# ---------------------------------------------------------------------------------------------
# sentences, audio, clips


def _sentence(sentence_seed: int, seconds: float) -> list[Segment]:
    """The sentence of ``sentence_seed`` for a clip of ``seconds``, in video time, covering
    ``[-MARGIN_S, seconds + MARGIN_S]``."""
    rng = np.random.default_rng([0x5E7, int(sentence_seed)])
    segs = voice.make_sentence(rng, seconds + 2 * MARGIN_S)
    return voice.shift_segments(segs, -MARGIN_S)


def voice_for(sentence_seed: int) -> Speaker:
    """The voice that speaks the sentence of ``sentence_seed`` by default."""
    return Speaker.random(np.random.default_rng([0x70C, int(sentence_seed)]))


def _audio(segments: Sequence[Segment], speaker: Speaker, sentence_seed: int, seconds: float,
           offset_frames: int) -> np.ndarray:
    rng = np.random.default_rng([0xA0D, int(sentence_seed)])
    return voice.synthesize(segments, speaker, seconds, sample_rate=SAMPLE_RATE_HZ, rng=rng,
                            time_shift_s=offset_frames / VIDEO_FPS)


def make_audio(sentence_seed: int, seconds: float = 4.0, speaker: Speaker | None = None,
               ) -> tuple[np.ndarray, list[Segment]]:
    """New speech to dub with: (float32 16 kHz mono audio, its phones clipped to
    ``[0, seconds]``).  Equal to the audio of ``make_clip(..., sentence_seed=sentence_seed,
    offset_frames=0)`` (when ``speaker`` is None, the clip's voice)."""
    seconds = _check_seconds(seconds)
    segs = _sentence(sentence_seed, seconds)
    speaker = voice_for(sentence_seed) if speaker is None else speaker
    audio = _audio(segs, speaker, sentence_seed, seconds, 0)
    return audio, voice.clip_segments(segs, 0.0, seconds)


def silent_audio(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Pure silence as the voice renders a pause: a -74 dBFS noise floor, float32 16 kHz."""
    seconds = _check_seconds(seconds)
    segs = [Segment(voice.PAUSE_SYMBOL, 0.0, seconds)]
    return voice.synthesize(segs, Speaker(120.0, 1.0, 0.0, 1.0), seconds,
                            rng=np.random.default_rng([0x511, int(seed)]))


def _check_seconds(seconds: float) -> float:
    seconds = float(seconds)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(f"seconds must be a positive number, got {seconds}")
    return seconds


def _check_name(name: str) -> str:
    if not _NAME_RE.match(str(name)):
        raise ConfigError(f"clip name {name!r} is not usable as a file name",
                          fix="use letters, digits, '_', '-' and '.'")
    return str(name)


def _round_list(x, nd: int = 4):
    return np.round(np.asarray(x, np.float64), nd).tolist()


def _write_json(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _out_dirs(out_dir: str | Path) -> tuple[Path, Path, Path]:
    out = Path(out_dir)
    dirs = (out / "videos", out / "audios", out / "truth")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def _write_clip(out_dir: str | Path, name: str, frames: Iterator[np.ndarray],
                audio: np.ndarray, truth: dict) -> dict:
    from . import media

    videos, audios, truths = _out_dirs(out_dir)
    media.write_video(videos / f"{name}.mp4", frames, audio, fps=VIDEO_FPS,
                      sample_rate=SAMPLE_RATE_HZ)
    media.write_wav(audios / f"{name}.wav", audio, sample_rate=SAMPLE_RATE_HZ)
    _write_json(truths / f"{name}.json", truth)
    return truth


def clip_content(*, seconds: float = 4.0, offset_frames: int = 0, faces: int = 1,
                 appearance_index: int | None = None, sentence_seed: int | None = None,
                 seed: int = 0, frame_size: Sequence[int] | None = None, name: str = "clip",
                 ) -> tuple[Iterator[np.ndarray], np.ndarray, dict]:
    """Everything :func:`make_clip` writes, in memory: (frame iterator, audio, truth dict).
    Same arguments as :func:`make_clip`."""
    seconds = _check_seconds(seconds)
    offset_frames = int(offset_frames)
    if faces not in (1, 2):
        raise ConfigError(f"faces must be 1 or 2, got {faces}")
    seed = int(seed)
    appearance_index = seed if appearance_index is None else int(appearance_index)
    sentence_seed = seed if sentence_seed is None else int(sentence_seed)
    if frame_size is None:
        frame_size = DEFAULT_FRAME_SIZE if faces == 1 else DEFAULT_FRAME_SIZE_2
    fw, fh = _check_frame_size(frame_size, faces)
    num_frames = int(round(seconds * VIDEO_FPS))

    segs = _sentence(sentence_seed, seconds)
    speaker_voice = voice_for(sentence_seed)
    audio = _audio(segs, speaker_voice, sentence_seed, seconds, offset_frames)
    opening, width = voice.mouth_track(segs, num_frames, fps=VIDEO_FPS)
    # the truth file keeps 4 decimals: render exactly what it says
    opening, width = np.round(opening, 4), np.round(width, 4)

    if faces == 1:
        speaker_face = 0
        indices = [appearance_index]
        seeds = [sentence_seed]
        tracks = [(opening, width)]
        cells = [(0, 0, fw, fh)]
    else:
        rng = np.random.default_rng([0xC11, seed])
        speaker_face = int(rng.integers(2))
        other_index = appearance_index + 1 + int(rng.integers(0, 10_000))
        other_seed = sentence_seed + 1 + int(rng.integers(0, 1_000_000))
        o2, w2 = voice.mouth_track(_sentence(other_seed, seconds), num_frames, fps=VIDEO_FPS)
        other = (np.round(o2, 4), np.round(w2, 4))
        half = (fw // 2) // 2 * 2
        cells = [(0, 0, half, fh), (half, 0, fw - half, fh)]
        if speaker_face == 0:
            indices, seeds, tracks = ([appearance_index, other_index],
                                      [sentence_seed, other_seed], [(opening, width), other])
        else:
            indices, seeds, tracks = ([other_index, appearance_index],
                                      [other_seed, sentence_seed], [other, (opening, width)])
    apps = [appearance(i) for i in indices]
    face_objs = [_Face(a, c, num_frames) for a, c in zip(apps, cells)]
    background = _background(apps[0], (fw, fh))
    geo = [[f.geometry(k) for k in range(num_frames)] for f in face_objs]

    phones = voice.clip_segments(segs, 0.0, seconds)
    truth = {
        "name": name,
        "seconds": _r(seconds),
        "fps": VIDEO_FPS,
        "sample_rate": SAMPLE_RATE_HZ,
        "num_frames": num_frames,
        "num_samples": int(len(audio)),
        "frame_size": [fw, fh],
        "offset_frames": offset_frames,
        "faces": faces,
        "speaker": speaker_face,
        "appearance_index": appearance_index,
        "appearance_indices": indices,
        "sentence_seed": sentence_seed,
        "sentence_seeds": seeds,
        "seed": seed,
        "voice": {k: _r(v) for k, v in asdict(speaker_voice).items()},
        "appearances": [a.to_dict() for a in apps],
        "phones": [{"symbol": p.symbol, "start_s": _r(p.start_s), "end_s": _r(p.end_s)}
                   for p in phones],
        "mouth_phase": 0.5,
        "mouth_opening": _round_list(opening),
        "mouth_width": _round_list(width),
        "mouth_openings": [_round_list(t[0]) for t in tracks],
        "mouth_widths": [_round_list(t[1]) for t in tracks],
        "face_boxes": [[_round_list(g[0], 2) for g in face_geo] for face_geo in geo],
        "mouth_centres": [[_round_list(g[1], 2) for g in face_geo] for face_geo in geo],
    }
    frames = _render_scene(face_objs, tracks, background, num_frames)
    return frames, audio, truth


def make_clip(out_dir: str | Path, name: str, *, seconds: float = 4.0, offset_frames: int = 0,
              faces: int = 1, appearance_index: int | None = None,
              sentence_seed: int | None = None, seed: int = 0,
              frame_size: Sequence[int] | None = None) -> dict:
    """Write one synthetic clip and return its truth dict.

    Files: ``out_dir/videos/NAME.mp4`` (H.264 + AAC), ``out_dir/audios/NAME.wav`` (16 kHz
    mono, the same audio) and ``out_dir/truth/NAME.json``.  ``offset_frames`` = K > 0: the
    audio leads the video by K frames.  The look comes from ``appearance_index`` (default
    ``seed``), the sentence and voice from ``sentence_seed`` (default ``seed``); head motion
    belongs to the look, so the same look with another sentence differs only in the mouth.
    ``faces=2``: two people side by side (default frame 640 x 320), both mouths move, only
    face ``truth["speaker"]`` speaks the audio; the other face's look and sentence come
    from ``seed``.  Frame size defaults to 320 x 320 (one face).
    """
    name = _check_name(name)
    frames, audio, truth = clip_content(seconds=seconds, offset_frames=offset_frames,
                                        faces=faces, appearance_index=appearance_index,
                                        sentence_seed=sentence_seed, seed=seed,
                                        frame_size=frame_size, name=name)
    return _write_clip(out_dir, name, frames, audio, truth)


def silence_clip(out_dir: str | Path, name: str, *, seconds: float = 4.0,
                 appearance_index: int = 0, seed: int = 0,
                 frame_size: Sequence[int] | None = None) -> dict:
    """A clip of a person keeping their mouth closed over near-silent audio (one face)."""
    name = _check_name(name)
    seconds = _check_seconds(seconds)
    fw, fh = _check_frame_size(frame_size or DEFAULT_FRAME_SIZE)
    num_frames = int(round(seconds * VIDEO_FPS))
    segs = [Segment(voice.PAUSE_SYMBOL, 0.0, seconds)]
    opening, width = voice.mouth_track(segs, num_frames, fps=VIDEO_FPS)
    audio = silent_audio(seconds, seed)
    app = appearance(appearance_index)
    face = _Face(app, (0, 0, fw, fh), num_frames)
    geo = [face.geometry(k) for k in range(num_frames)]
    truth = {
        "name": name, "seconds": _r(seconds), "fps": VIDEO_FPS, "sample_rate": SAMPLE_RATE_HZ,
        "num_frames": num_frames, "num_samples": int(len(audio)), "frame_size": [fw, fh],
        "offset_frames": 0, "faces": 1, "speaker": 0, "appearance_index": int(appearance_index),
        "appearance_indices": [int(appearance_index)], "sentence_seed": None,
        "sentence_seeds": [None], "seed": int(seed), "voice": None,
        "appearances": [app.to_dict()],
        "phones": [{"symbol": voice.PAUSE_SYMBOL, "start_s": 0.0, "end_s": _r(seconds)}],
        "mouth_phase": 0.5,
        "mouth_opening": _round_list(opening), "mouth_width": _round_list(width),
        "mouth_openings": [_round_list(opening)], "mouth_widths": [_round_list(width)],
        "face_boxes": [[_round_list(g[0], 2) for g in geo]],
        "mouth_centres": [[_round_list(g[1], 2) for g in geo]],
    }
    frames = _render_scene([face], [(opening, width)], _background(app, (fw, fh)), num_frames)
    return _write_clip(out_dir, name, frames, audio, truth)


def make_dataset(out_dir: str | Path, clips: int, *, seconds: float = 4.0,
                 offset_frames: int | Sequence[int] = 0, faces: int = 1, seed: int = 0,
                 appearance_indices: Sequence[int] | None = None,
                 progress: Callable[[int, int], None] | None = None, prefix: str = "synth",
                 frame_size: Sequence[int] | None = None) -> list[dict]:
    """Write ``clips`` clips named ``{prefix}_0000``, ``{prefix}_0001``, ... into
    ``out_dir/videos``, ``out_dir/audios`` and ``out_dir/truth``; return their truth dicts.

    Clip i uses seed ``seed * 100000 + i`` for its sentence (and, with ``faces=2``, its
    partner); its look is ``appearance_indices[i % len(appearance_indices)]`` when given,
    else appearance ``seed * 100000 + i`` (so seed 0 starts with the 8 hand-picked looks and
    every clip has its own).  ``offset_frames`` may be one int or a sequence cycled over
    the clips.  ``progress(n_done, n_total)`` is called after each clip.
    """
    clips = int(clips)
    if clips < 0:
        raise ConfigError(f"clips must be >= 0, got {clips}")
    _check_name(prefix)
    if appearance_indices is not None:
        appearance_indices = [int(i) for i in appearance_indices]
        if not appearance_indices:
            raise ConfigError("appearance_indices is empty", fix="give at least one index")
    offsets = [int(offset_frames)] if np.ndim(offset_frames) == 0 else [
        int(k) for k in offset_frames]  # type: ignore[union-attr]
    if not offsets:
        raise ConfigError("offset_frames is empty", fix="give at least one offset")
    _out_dirs(out_dir)
    truths = []
    for i in range(clips):
        clip_seed = int(seed) * 100_000 + i
        app_index = (appearance_indices[i % len(appearance_indices)]
                     if appearance_indices is not None else clip_seed)
        truths.append(make_clip(out_dir, f"{prefix}_{i:04d}", seconds=seconds,
                                offset_frames=offsets[i % len(offsets)], faces=faces,
                                appearance_index=app_index, sentence_seed=clip_seed,
                                seed=clip_seed, frame_size=frame_size))
        if progress is not None:
            progress(i + 1, clips)
    return truths
